"""Check the rendered course pages in headless Chromium: each page shows its figures and no cell shows an error.

tests/test_notebooks.py runs every notebook and renders it to site/ci/NAME.html; this file checks those pages (run it
after, or together with, test_notebooks.py: `pytest tests/test_notebooks.py tests/test_pages.py`). Run alone, it
renders the few pages in PAGES itself. Skipped when /usr/bin/chromium is absent (Debian: `apt-get install -y
chromium`). A screenshot of each page is saved to site/screenshots/NAME.png.
"""
import importlib.util, json, os, re, shutil, subprocess, tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
PAGES = {"01_data": True, "12_widgets": True, "instructor_guide": False}     # name -> must have figures
pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="headless Chromium (/usr/bin/chromium) not installed")


def _chromium(*args, timeout=120) -> str:
    profile = tempfile.mkdtemp(prefix="chromium-")
    try:
        r = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                            "--disable-background-networking", "--disable-component-update", "--disable-sync",
                            f"--user-data-dir={profile}", *args], capture_output=True, text=True, timeout=timeout)
        return r.stdout
    finally: shutil.rmtree(profile, ignore_errors=True)


NOTEBOOKS = sorted(p.stem for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))
CI_SITE = ROOT / "site" / "ci"
PLOTS = ("plt.", "plot_sequences(", "imshow(", "Image(filename")       # a notebook with these must show figures


def draws_figures(name: str) -> bool:
    "Whether notebook `name`'s code makes figures (then its page must show them)."
    nb = json.loads((ROOT / "nbs" / f"{name}.ipynb").read_text())
    src = "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    return any(p in src for p in PLOTS)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
    rp = importlib.util.module_from_spec(spec); spec.loader.exec_module(rp)
    built = {n: {"ok": True, "page": f"{n}.html", "title": rp.title_of(ROOT / "nbs" / f"{n}.ipynb"), "seconds": 0}
             for n in NOTEBOOKS if (CI_SITE / f"{n}.html").exists()}
    if built:                                            # pages rendered by tests/test_notebooks.py in this run
        rp.write_index(CI_SITE, built)
        return CI_SITE, built
    out = tmp_path_factory.mktemp("site")
    res = rp.render([ROOT / "nbs" / f"{n}.ipynb" for n in PAGES], out, fast=True, threads=2, verbose=False)
    return out, res


def test_index_lists_pages(site):
    out, res = site
    dom = _chromium("--dump-dom", (out / "index.html").as_uri())
    for name in res: assert f'href="{name}.html"' in dom


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_page_renders(site, name):
    out, res = site
    if name not in res: pytest.skip(f"{name}.html was not rendered in this run (run tests/test_notebooks.py first)")
    assert res[name]["ok"], f"{name} failed to run:\n{res[name]['error']}"
    dom = _chromium("--dump-dom", (out / f"{name}.html").as_uri())
    assert "<h1" in dom
    imgs = re.findall(r'<img[^>]+src="data:image/png;base64,', dom)
    if draws_figures(name): assert len(imgs) > 0, f"{name}: no PNG figures in the rendered page"
    for bad in ("Traceback (most recent call last)", "output_error", "ansi-red-fg\">Error", "jp-RenderedText\" data-mime-type=\"application/vnd.jupyter.stderr\">Traceback"):
        assert bad not in dom, f"{name}: the page shows an error ({bad!r})"
    shots = ROOT / "site" / "screenshots"; shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{name}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars", (out / f"{name}.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
