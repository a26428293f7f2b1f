"""`html_table`, the course's one result-table helper: its HTML and Markdown forms escape every cell and give back
exactly the cells they were made from (the HTML read by a parser, the Markdown rendered by mistune, nbconvert's own
Markdown renderer), numbers are right-aligned, and Table 1's HTML is built from it while its text stays as it was."""
import html.parser, json
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from tvae_nb.core import Table, html_table
from tvae_nb.table1 import format_table1, table1_blocks, table1_html

ROOT = Path(__file__).resolve().parents[1]
TRICKY = ["<b>bold</b>", "a & b", "&amp;", "x | y", "E_eq_c/null", "_x_", "*star*", "`code`", "[link](u)", "$x$",
          "~~gone~~", "back\\slash", "# heading", "- item", "1. item", "> quote", '"quoted"', "it's", "−125.1", "μ = 30"]


class _Cells(html.parser.HTMLParser):
    "The text of every caption, th and td of an HTML document, in order: [(tag, text, style)]."
    def __init__(self):
        super().__init__(convert_charrefs=True); self.cells, self._open = [], None

    def handle_starttag(self, tag, attrs):
        if tag in ("caption", "th", "td"): self._open = [tag, "", dict(attrs).get("style", "")]

    def handle_data(self, data):
        if self._open: self._open[1] += data

    def handle_endtag(self, tag):
        if self._open and tag == self._open[0]: self.cells.append(tuple(self._open)); self._open = None


def parsed(doc: str) -> list:
    p = _Cells(); p.feed(doc); p.close()
    return p.cells


def html_cells(t: Table):
    "(caption, columns, rows) read back from `t.html()`."
    cells = parsed(t.html())
    cap = [c[1] for c in cells if c[0] == "caption"]
    body = [c[1] for c in cells if c[0] == "td"]
    n = len(t.columns)
    return (cap[0] if cap else None), tuple(c[1] for c in cells if c[0] == "th"), tuple(tuple(body[i:i + n]) for i in range(0, len(body), n))


def markdown_cells(t: Table):
    "(caption, columns, rows) read back from `t.markdown()` rendered to HTML by mistune (a GitHub-style pipe table)."
    mistune = pytest.importorskip("mistune")
    doc = mistune.create_markdown(plugins=["table"])(t.markdown())
    cap = doc.split("<table>")[0].strip() if t.caption is not None else None
    if cap is not None:
        assert cap.startswith("<p>") and cap.endswith("</p>"), cap
        cap = html.unescape(cap[3:-4])
    cells = parsed(doc)
    body = [c[1].strip() for c in cells if c[0] == "td"]
    n = len(t.columns)
    return cap, tuple(c[1].strip() for c in cells if c[0] == "th"), tuple(tuple(body[i:i + n]) for i in range(0, len(body), n))


def test_tricky_cells_are_escaped_and_round_trip():
    rows = [[s, f"{k - 3.5:.1f}"] for k, s in enumerate(TRICKY)]
    t = html_table(["text <th>", "value"], rows, caption="- a caption with <tags>, | and *stars*")
    assert "<b>" not in t.html() and "&lt;b&gt;" in t.html() and "&amp;amp;" in t.html()
    want = (t.caption, t.columns, t.rows)
    assert html_cells(t) == want
    assert markdown_cells(t) == want
    assert t.markdown().splitlines()[2:4] == ["| text \\<th\\> | value |", "|---|---:|"]


@pytest.mark.parametrize("caption", ["1. not a list", "12) nor this", "- nor a bullet", "+ nor this", "# not a heading",
                                     "> not a quote", "***", "---", "= x", "1.5 nats", "<b>"])
def test_a_caption_stays_a_paragraph(caption):
    t = html_table(["a"], [["1"]], caption=caption)
    assert markdown_cells(t) == (caption, ("a",), (("1",),))


def test_numbers_are_right_aligned():
    t = html_table(["model", "log p(x)", "L", "ratio", "shift"],
                   [["VAE", "-125.1", "-", "FLAT", "False"], ["TVAE", "+3.0", "7", "0.47", "True"]])
    assert t.align == "lrrrl"
    styles = {c[1]: c[2] for c in parsed(t.html())}
    assert "text-align:right" in styles["-125.1"] and "text-align:right" in styles["log p(x)"]
    assert "text-align:left" in styles["VAE"] and "text-align:left" in styles["True"]
    assert t.markdown().splitlines()[1] == "|---|---:|---:|---:|---|"
    assert str(t).splitlines() == ["model  log p(x)  L  ratio  shift", "VAE      -125.1  -   FLAT  False",
                                   "TVAE       +3.0  7   0.47  True"]
    assert html_table(["a"], [[1], [2.5]]).rows == (("1",), ("2.5",)) and html_table(["a"], []).align == "l"


def test_bad_tables_are_refused():
    with pytest.raises(ValueError, match="row 1 has 3 cells for 2 columns"): html_table(["a", "b"], [[1, 2], [1, 2, 3]])
    with pytest.raises(ValueError, match="align must be one letter"): html_table(["a", "b"], [[1, 2]], align="l")


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.text(st.characters(codec="utf-8", categories=("L", "N", "P", "S"), include_characters=" "),
                                 min_size=1, max_size=12).map(str.strip).filter(bool), min_size=2, max_size=2),
                min_size=1, max_size=4))
def test_any_printable_cells_round_trip(rows):
    "Letters, digits, punctuation, symbols and inner spaces: the HTML and the Markdown give back the same cells."
    t = html_table(["a", "b"], rows, caption=rows[0][0])
    assert html_cells(t) == (t.caption, t.columns, t.rows)
    assert markdown_cells(t) == (t.caption, t.columns, t.rows)


@pytest.mark.parametrize("path", sorted((ROOT / "nbs" / "results").glob("table1-*/table1.json")), ids=lambda p: p.parent.name)
def test_table1_html_is_its_blocks(path):
    "Each of Table 1's five HTML tables holds its block's caption, columns and cells; the text form has the same cells."
    rows = json.loads(path.read_text())["rows"]
    blocks, page, text = table1_blocks(rows), table1_html(rows), format_table1(rows)
    assert page.count("<table") == 5
    for doc, (caption, cols, cells) in zip(page.split("\n"), blocks):
        t = html_table([c for c, _ in cols], cells, caption)
        assert doc == t.html() and html_cells(t) == (caption, tuple(c for c, _ in cols), tuple(map(tuple, cells)))
        for row in cells: assert all(v in text for v in row)
