"""The rendered pages form a site (no browser needed): every page has the chapter list, previous / next links, a table of
its sections, no In/Out prompts and the search box; `search.js` indexes every section; every local link resolves, to a
page that exists and to an id on it. Checked on a small synthetic site, and on the CI pages (`site/ci/`, written by
tests/test_notebooks.py) when they are there."""
import html.parser, importlib.util, json, os, re
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
rp = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rp)
pytest.importorskip("nbconvert"); pytest.importorskip("jupyter_server_mathjax")


class _Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(); self.hrefs, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"): self.ids.add(a["id"])
        if tag == "a" and a.get("name"): self.ids.add(a["name"])
        for k in ("href", "src"):
            if a.get(k) and tag in ("a", "script", "link"): self.hrefs.append(a[k])


def _parse(page: Path) -> _Links:
    p = _Links(); p.feed(page.read_text(encoding="utf-8")); return p


def broken_links(site: Path) -> list[str]:
    "Local links of every page of `site` whose file or anchor does not exist."
    parsed, bad = {}, []
    get = lambda f: parsed.setdefault(f, _parse(f))
    for page in sorted(site.glob("*.html")):
        for href in get(page).hrefs:
            u = urlsplit(href)
            if u.scheme or href.startswith(("//", "mailto:", "data:", "javascript:")): continue
            target = (page.parent / unquote(u.path)).resolve() if u.path else page
            if not target.exists(): bad.append(f"{page.name}: {href} (no such file)"); continue
            ids = get(target).ids if target.suffix == ".html" else None       # a browser tries the fragment as written, then decoded
            if u.fragment and ids is not None and u.fragment not in ids and unquote(u.fragment) not in ids:
                bad.append(f"{page.name}: {href} (no id {u.fragment!r} there)")
    return bad


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    import nbformat
    d = tmp_path_factory.mktemp("site_src"); out = d / "site"
    pages = {"index": "# Course\n> front\n\n## Chapters\n\nSee [data](01_data.ipynb) and [the VAE](02_vae.ipynb#the-elbo).",
             "01_data": "# Data\n> s\n\n## Rotating digits\n\nMNIST rotated.\n\n### A detail\n\ntext",
             "02_vae": "# The VAE\n> s\n\n## The ELBO\n\nThe evidence lower bound, $x^2$.\n\n## Summary\n\nback to [data](01_data.ipynb#rotating-digits)"}
    res = {}
    for stem, md in pages.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(md), nbformat.v4.new_code_cell(
            "1 + 1", execution_count=1, outputs=[nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)])])
        nbformat.write(nb, d / f"{stem}.ipynb")
        rp.to_html(d / f"{stem}.ipynb", out / f"{stem}.html")
        res[stem] = {"ok": True, "page": f"{stem}.html", "title": rp.title_of(d / f"{stem}.ipynb"), "seconds": 1.0}
    rp.write_index(out, res)
    rp.write_index(out, res)                                            # a second run replaces, never doubles, the site
    return out, res


def test_every_page_has_the_chapter_list_prev_next_toc_and_search(synthetic):
    out, res = synthetic
    order = ["index", "01_data", "02_vae"]
    for k, stem in enumerate(order):
        src = (out / f"{stem}.html").read_text()
        assert src.count('id="tvae-nav"') == 1 and src.count("<!-- tvae-site -->") == 3
        for other in order: assert f'href="{other}.html"' in src
        assert f'href="{stem}.html" aria-current="page"' in src
        if k: assert f'href="{order[k - 1]}.html" rel="prev"' in src
        else: assert 'rel="prev"' not in src
        if k + 1 < len(order): assert f'href="{order[k + 1]}.html" rel="next"' in src
        else: assert 'rel="next"' not in src
        assert 'id="tvae-search"' in src and '<script src="search.js"></script>' in src
        assert "class=\"jp-InputPrompt" not in src and "class=\"jp-OutputPrompt" not in src and "In&nbsp;[" not in src and "[1]:" not in src
    assert '<a href="#Rotating-digits">Rotating digits</a>' in (out / "01_data.html").read_text()
    assert '<a href="#A-detail">A detail</a>' in (out / "01_data.html").read_text()


def test_search_index_holds_every_section(synthetic):
    out, _ = synthetic
    js = (out / "search.js").read_text()
    index = json.loads(js.split("window.TVAE_SEARCH = ", 1)[1].split(";\n", 1)[0])
    assert {(e["p"], e["i"]) for e in index} >= {("01_data.html", "Rotating-digits"), ("02_vae.html", "The-ELBO"),
                                                 ("02_vae.html", "Summary")}
    assert any("evidence lower bound" in e["x"] for e in index)


def test_styled_index_lists_the_pages(synthetic):
    out, _ = synthetic
    src = (out / "pages.html").read_text()
    assert "<style>" in src and src.count("<tr><td><a href=") == 3


def test_links_resolve_on_the_synthetic_site(synthetic):
    out, _ = synthetic
    assert broken_links(out) == []


def test_the_link_check_finds_a_broken_link(synthetic, tmp_path):
    import shutil
    out, _ = synthetic
    bad = tmp_path / "bad"; shutil.copytree(out, bad)
    p = bad / "02_vae.html"; p.write_text(p.read_text().replace('href="01_data.html#rotating-digits"', 'href="01_data.html#nowhere"'))
    (bad / "index.html").write_text((bad / "index.html").read_text().replace('href="01_data.html"', 'href="03_missing.html"', 1))
    found = broken_links(bad)
    assert any("no id 'nowhere'" in b for b in found) and any("03_missing.html (no such file)" in b for b in found)


CI_SITE = Path(os.environ.get("TVAE_NB_SITE", ROOT / "site" / "ci"))


@pytest.mark.skipif(not (CI_SITE / "index.html").exists(), reason="no rendered CI pages (run tests/test_notebooks.py first)")
def test_links_resolve_on_the_ci_pages():
    built = {p.stem: {"ok": True, "page": p.name, "title": rp.title_of(ROOT / "nbs" / f"{p.stem}.ipynb"), "seconds": 0}
             for p in CI_SITE.glob("*.html") if (ROOT / "nbs" / f"{p.stem}.ipynb").exists()}
    rp.write_index(CI_SITE, built)
    assert broken_links(CI_SITE) == []


def test_code_fold_folds_the_code_and_keeps_its_output(tmp_path):
    "`#| code-fold: true` (plumbing such as table formatting): the code sits in a closed <details>, its output shows."
    import nbformat
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Fold\n> s"),
                nbformat.v4.new_code_cell("#| code-fold: true\nrows = format_rows(x)  # plumbing",
                                          outputs=[nbformat.v4.new_output("stream", name="stdout", text="RESULT-LINE\n")]),
                nbformat.v4.new_code_cell("lesson = 1", outputs=[])]
    src = tmp_path / "fold.ipynb"; nbformat.write(nb, src)
    page = rp.to_html(src, tmp_path / "site" / "fold.html").read_text()
    folded = re.search(r'<details class="tvae-fold">(.*?)</details>', page, re.S)
    assert folded and "format_rows" in folded[1] and "code-fold" not in page       # the code, folded; no directive
    assert page.count("format_rows") == 1 and "RESULT-LINE" in page                # not shown twice; the output kept
    assert page.index("</details>") < page.index("RESULT-LINE")                    # the fold above its output
    assert "lesson" in page and page.count("<details") == 1                        # other cells untouched
