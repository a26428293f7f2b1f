"""Check the rendered course pages in headless Chromium, offline, as a reader sees them.

tests/test_notebooks.py runs every notebook and renders it to site/ci/NAME.html; this file checks those pages (run it
after, or together with, test_notebooks.py: `pytest tests/test_notebooks.py tests/test_pages.py`). Run alone, it
renders the few pages in PAGES itself. To check pages made by `tools/render_pages.py --out DIR`, set
`TVAE_NB_SITE=DIR`. Skipped when Chromium is absent (Debian: `apt-get install -y chromium`).

Each page is opened from `file://` with every host name mapped to an unresolvable address, and Chromium's own
network log (`--log-net-log`) records every request the page makes: any request to a host (http, https, ws, ...)
fails the page, because a page that needs a CDN is blank or raw offline. The DOM is dumped after MathJax has run
(`--virtual-time-budget`) and must show typeset math (MathJax's end-of-startup mark, one rendered frame per formula,
no TeX errors), no raw TeX (`$$`, `\\begin`, `$...$`, TeX commands) in the visible text, figures where the notebook
draws them, and no error output. A screenshot of each page is kept in `SITE/screenshots/NAME.png`.
The `test_check_fails_*` tests show that the check fails on small synthetic pages with raw TeX or a CDN request.
"""
import html.parser, importlib.util, json, os, re, shutil, subprocess, tempfile
from pathlib import Path
from typing import NamedTuple

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = {"01_data": True, "02_vae": True, "12_widgets": True, "index": False}   # rendered when run alone
BUDGET_MS = 30_000                # virtual time for scripts (MathJax) before the DOM is dumped or the screenshot taken
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless Chromium not installed")

_spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
rp = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(rp)

NOTEBOOKS = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
CI_SITE = Path(os.environ.get("TVAE_NB_SITE", ROOT / "site" / "ci")).resolve()    # pages made by test_notebooks.py
PLOTS = ("plt.", "plot_sequences(", "imshow(", "Image(filename")       # a notebook with these must show figures
ERRORS = ("Traceback (most recent call last)", "output_error", "ansi-red-fg\">Error",
          "jp-RenderedText\" data-mime-type=\"application/vnd.jupyter.stderr\">Traceback")


# ---------------------------------------------------------------------------------------------------------------- browser
def _chromium(*args, timeout=180) -> subprocess.CompletedProcess:
    "Run headless Chromium offline: a fresh profile, no background traffic, every host name unresolvable."
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        return subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                               "--disable-background-networking", "--disable-component-update", "--disable-sync",
                               "--disable-default-apps", "--disable-extensions", "--host-resolver-rules=MAP * ~NOTFOUND",
                               f"--virtual-time-budget={BUDGET_MS}", f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=timeout)
    finally: shutil.rmtree(profile, ignore_errors=True)


def page_requests(netlog: Path) -> list[str]:
    "URLs of the requests that the page made (not Chromium's own), from a `--log-net-log` file; file:// is not logged."
    text = netlog.read_text()
    try: log = json.loads(text)
    except json.JSONDecodeError: log = json.loads(text.rstrip().rstrip(",") + "]}")   # a log cut short at exit
    start = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for e in log["events"]:
        p = e.get("params", {})
        if e["type"] != start or "url" not in p: continue
        initiator, nik = str(p.get("initiator", "")), str(p.get("network_isolation_key", ""))
        if initiator == "null" or initiator.startswith("file:") or "file://" in nik:   # made on behalf of a file:// page
            urls.append(p["url"])
    return urls


class Loaded(NamedTuple):
    dom: str              # the DOM after scripts ran
    requests: list        # URLs the page requested other than local files


def load(page: Path) -> Loaded:
    "Open `page` from file:// in headless Chromium; return its DOM after scripts ran and the requests it made."
    with tempfile.TemporaryDirectory() as tmp:
        net = Path(tmp) / "net.json"
        r = _chromium("--dump-dom", f"--log-net-log={net}", Path(page).resolve().as_uri())
        assert "<html" in r.stdout, f"Chromium dumped no DOM for {page}:\n{r.stderr[-2000:]}"
        return Loaded(r.stdout, page_requests(net) if net.exists() else ["(no network log written)"])


def screenshot(page: Path, png: Path) -> Path:
    "Save a 1200 x 2000 screenshot of the top of `page` after its scripts ran."
    png.parent.mkdir(parents=True, exist_ok=True)
    _chromium(f"--screenshot={png}", "--window-size=1200,2000", "--hide-scrollbars", Path(page).resolve().as_uri())
    return png


# ---------------------------------------------------------------------------------------------------------- the checks
class _Text(html.parser.HTMLParser):
    "The visible prose of a page: text outside scripts, styles, code and MathJax's rendered output."
    SKIP = {"script", "style", "pre", "code", "textarea", "math"}
    VOID = {"br", "img", "hr", "meta", "link", "input", "wbr", "col", "area", "base", "source"}

    def __init__(self):
        super().__init__(); self.stack, self.parts = [], []

    def handle_starttag(self, tag, attrs):
        if tag in self.VOID: return
        cls = dict(attrs).get("class") or ""
        self.stack.append(tag in self.SKIP or "MathJax" in cls or "MJX" in cls or bool(self.stack and self.stack[-1]))

    def handle_endtag(self, tag):
        if tag not in self.VOID and self.stack: self.stack.pop()

    def handle_data(self, data):
        if not (self.stack and self.stack[-1]): self.parts.append(data)


def visible_text(dom: str) -> str:
    t = _Text(); t.feed(dom); t.close()
    return "".join(t.parts)


RAW_TEX = [("$$", re.compile(r"\$\$")), ("\\begin", re.compile(r"\\begin\b")),
           ("$...$", re.compile(r"\$[^\s$][^$\n]*\$")), ("TeX command", re.compile(r"\\[A-Za-z]{2,}"))]


def page_problems(dom: str, requests: list, math: bool, figures: bool, page: Path | None = None) -> list:
    "What is wrong with a page as a reader sees it offline (empty when nothing is); `page` locates relative images."
    problems = [f"request to a host other than the local file: {u}" for u in requests]
    for src in re.findall(r'<img[^>]+src="([^"]+)"', dom):
        if not src.startswith("data:") and not (page and (Path(page).parent / src).exists()):
            problems.append(f"image not found: {src[:100]}")
    text = visible_text(dom)
    for name, pat in RAW_TEX:
        m = pat.search(text)
        if m: problems.append(f"raw TeX left on the page ({name}): ...{text[max(0, m.start() - 60):m.end() + 60]!r}...")
    formulas = len(re.findall(r'<script type="math/tex', dom))
    frames = len(re.findall(r'id="MathJax-Element-\d+-Frame"', dom))
    if math:
        if 'data-mathjax="typeset"' not in dom: problems.append("MathJax did not finish typesetting the page")
        if formulas == 0 or frames < formulas: problems.append(f"math not typeset: {frames} rendered of {formulas} formulas")
    err = re.search(r'class="[^"]*\b(MathJax_Error|noError|merror)\b|Math Processing Error', dom)
    if err: problems.append(f"MathJax reports an error ({err[0]})")
    if figures and not re.search(r'<img[^>]+src="data:image/png;base64,', dom): problems.append("no PNG figures")
    for bad in ERRORS:
        if bad in dom: problems.append(f"the page shows an error ({bad!r})")
    return problems


def has_math(name: str) -> bool:
    "Whether notebook `name`'s markdown has TeX (then its page must show typeset math)."
    nb = json.loads((ROOT / "nbs" / f"{name}.ipynb").read_text())
    md = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    md = re.sub(r"```.*?```|`[^`\n]*`", "", md, flags=re.S)               # code is not math
    return bool(re.search(r"\$[^$\s][^$]*\$", md))


def show_doc_cells(name: str) -> int:
    "How many entries the API reference of notebook `name` gets when its page is rendered (`rp.api_entries`)."
    return len(rp.api_entries(ROOT / "nbs" / f"{name}.ipynb"))


def draws_figures(name: str) -> bool:
    "Whether notebook `name`'s code makes figures (then its page must show them)."
    nb = json.loads((ROOT / "nbs" / f"{name}.ipynb").read_text())
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return any(p in src for p in PLOTS)


# ------------------------------------------------------------------------------------- the check fails where it must
@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    "A folder with the vendored MathJax, for small hand-written pages."
    out = tmp_path_factory.mktemp("synthetic")
    rp.vendor_mathjax(out)
    return out


HEAD = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
        + rp.OFFLINE_TEMPLATE.split("{%- block html_head_js_mathjax -%}")[1].split("{%- endblock")[0]
        .replace("{{ resources.mathjax_url }}", f"_static/mathjax/MathJax.js?config={rp.MATHJAX_CONFIG}"))
FIG = '<img src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAfbLI3wAAAABJRU5ErkJggg==">'


def _page(folder: Path, name: str, head: str, body: str) -> Path:
    p = folder / name
    p.write_text(f"{head}</head><body><h1>t</h1>{body}</body></html>", encoding="utf-8")
    return p


def test_check_passes_on_a_good_page(synthetic):
    page = _page(synthetic, "good.html", HEAD, f"<p>The KL is $\\frac{{1}}{{2}}\\sum_j \\mu_j^2$ and</p>"
                                                f"<p>$$\\begin{{aligned}} a &= b \\end{{aligned}}$$</p>{FIG}")
    got = load(page)
    assert got.requests == []
    assert page_problems(got.dom, got.requests, math=True, figures=True) == []


def test_check_fails_on_raw_tex(synthetic):
    "MathJax absent (as when it should come from a CDN offline): the formulas stay raw and the check says so."
    page = _page(synthetic, "raw.html", "<!DOCTYPE html><html><head>", f"<p>The KL is $\\frac{{1}}{{2}}\\sum_j \\mu_j^2$</p>"
                                                                      f"<p>$$\\begin{{aligned}} a &= b \\end{{aligned}}$$</p>{FIG}")
    got = load(page)
    problems = page_problems(got.dom, got.requests, math=True, figures=True)
    for expected in ("raw TeX left on the page ($$)", "raw TeX left on the page (\\begin)", "raw TeX left on the page ($...$)",
                     "MathJax did not finish", "math not typeset"):
        assert any(p.startswith(expected) for p in problems), (expected, problems)
    assert not any(p.startswith("request") for p in problems)


def test_check_fails_on_missing_image(synthetic):
    "An image the page refers to but that is not there (a relative path the renderer did not embed) fails the check."
    page = _page(synthetic, "img.html", HEAD, '<p>$x$</p><img src="results/figure.png">')
    got = load(page)
    assert page_problems(got.dom, got.requests, math=True, figures=False, page=page) == ["image not found: results/figure.png"]


@pytest.mark.parametrize("how", ["script tag", "fetch from script"])
def test_check_fails_on_cdn_request(synthetic, how):
    "A page that is otherwise fine but asks a CDN for a script (in its HTML, or only at run time) fails the check."
    url = "https://cdn.jsdelivr.net/npm/requirejs@2.3.6/require.min.js"
    extra = f'<script src="{url}"></script>' if how == "script tag" else f'<script>fetch("{url}").catch(() => 0)</script>'
    page = _page(synthetic, "cdn.html", HEAD + extra, f"<p>$x^2$</p>{FIG}")
    got = load(page)
    assert got.requests == [url]
    assert page_problems(got.dom, got.requests, math=True, figures=True) == [f"request to a host other than the local file: {url}"]


def test_offline_page_from_a_notebook(tmp_path):
    "to_html on a tiny executed notebook: math typeset from the local copy, the widget becomes a note and its figure."
    import base64, nbformat
    png = FIG.split("base64,")[1][:-2]
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# T\n> s\n\nThe ELBO $\\mathbb{E}_q[\\log p(x|z)] - \\mathrm{KL}(q\\|p)$, and\n\n"
                                      "$$\\mathrm{KL} = \\tfrac12 \\sum_j (\\mu_j^2 + \\sigma_j^2 - 1 - \\log \\sigma_j^2)$$\n\n"
                                      "See [the VAE](02_vae.ipynb#api-reference)."),
        nbformat.v4.new_code_cell("explorer", outputs=[nbformat.v4.new_output(
            "execute_result", {rp.WIDGET_MIME: {"model_id": "abc", "version_major": 2, "version_minor": 0},
                               "text/plain": "VBox()", "image/png": png}, execution_count=1)])])
    nbformat.write(nb, tmp_path / "nb.ipynb")
    page = rp.to_html(tmp_path / "nb.ipynb", tmp_path / "site" / "nb.html")
    src = page.read_text()
    assert 'href="02_vae.html#api-reference"' in src and rp.WIDGET_MIME not in src and "tvae-widget-note" in src
    assert base64.b64decode(png)[:4] == b"\x89PNG" and f"base64,{png}" in src
    got = load(page)
    assert page_problems(got.dom, got.requests, math=True, figures=True) == []
    assert len(re.findall(r'id="MathJax-Element-\d+-Frame"', got.dom)) == 2


# ------------------------------------------------------------------------------------------------------ the real pages
@pytest.fixture(scope="module")
def site(tmp_path_factory):
    built = {n: {"ok": True, "page": f"{n}.html", "title": rp.title_of(ROOT / "nbs" / f"{n}.ipynb"), "seconds": 0}
             for n in NOTEBOOKS if (CI_SITE / f"{n}.html").exists()}
    if built:                                            # pages rendered by tests/test_notebooks.py in this run
        rp.write_index(CI_SITE, built)
        return CI_SITE, built
    out = tmp_path_factory.mktemp("site")
    res = rp.render([ROOT / "nbs" / f"{n}.ipynb" for n in PAGES], out, fast=True, threads=2, verbose=False)
    return out, res


def test_pages_list(site):
    out, res = site
    dom = load(out / "pages.html").dom
    for name in res: assert f'href="{name}.html"' in dom


API_NOTEBOOKS = [p.stem for p in sorted((ROOT / "nbs").glob("*.ipynb")) if "#| default_exp" in p.read_text()]


def test_index_links_chapters_and_api(site):
    "The front page links every chapter, and the API reference section of every notebook that exports a module."
    out, res = site
    if "index" not in res: pytest.skip("index.html was not rendered in this run")
    dom = load(out / "index.html").dom
    for name in NOTEBOOKS:
        if name != "index": assert f'href="{name}.html"' in dom, f"the front page does not link {name}"
    for name in API_NOTEBOOKS:
        assert f'href="{name}.html#api-reference"' in dom, f"the front page does not link {name}'s API reference"
        if name in res: assert 'id="api-reference"' in (out / f"{name}.html").read_text(), f"{name} has no API reference"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_page_renders(site, name):
    out, res = site
    if name not in res: pytest.skip(f"{name}.html was not rendered in this run (run tests/test_notebooks.py first)")
    assert res[name]["ok"], f"{name} failed to run:\n{res[name]['error']}"
    got = load(out / f"{name}.html")
    assert "<h1" in got.dom
    problems = page_problems(got.dom, got.requests, math=has_math(name), figures=draws_figures(name), page=out / f"{name}.html")
    assert not problems, f"{name}:\n" + "\n".join(problems)
    docs = show_doc_cells(name)
    if docs:                                             # the API reference: one rendered entry per show_doc, no inputs
        api = got.dom.split('id="api-reference"', 1)
        assert len(api) == 2, f"{name}: no API reference section"
        assert len(re.findall(r"<h3 id=", api[1])) >= docs and "show_doc(" not in api[1], f"{name}: show_doc output missing"
    shot = screenshot(out / f"{name}.html", out / "screenshots" / f"{name}.png")
    assert shot.exists() and shot.stat().st_size > 10_000
