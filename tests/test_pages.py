"""Render a few course pages (fast mode) with tools/render_pages.py and check them in headless Chromium.

Skipped when /usr/bin/chromium is absent (Debian: `apt-get install -y chromium`). A screenshot of each page is saved
to site/screenshots/NAME.png.
"""
import importlib.util, os, re, shutil, subprocess, tempfile
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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
    rp = importlib.util.module_from_spec(spec); spec.loader.exec_module(rp)
    out = tmp_path_factory.mktemp("site")
    res = rp.render([ROOT / "nbs" / f"{n}.ipynb" for n in PAGES], out, fast=True, threads=2, verbose=False)
    return out, res


def test_index_lists_pages(site):
    out, res = site
    dom = _chromium("--dump-dom", (out / "index.html").as_uri())
    for name in PAGES: assert f'href="{name}.html"' in dom


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders(site, name):
    out, res = site
    assert res[name]["ok"], f"{name} failed to run:\n{res[name]['error']}"
    dom = _chromium("--dump-dom", (out / f"{name}.html").as_uri())
    assert "<h1" in dom
    imgs = re.findall(r'<img[^>]+src="data:image/png;base64,', dom)
    if PAGES[name]: assert len(imgs) > 0, f"{name}: no PNG figures in the rendered page"
    for bad in ("Traceback (most recent call last)", "output_error", "ansi-red-fg\">Error", "jp-RenderedText\" data-mime-type=\"application/vnd.jupyter.stderr\">Traceback"):
        assert bad not in dom, f"{name}: the page shows an error ({bad!r})"
    shots = ROOT / "site" / "screenshots"; shots.mkdir(parents=True, exist_ok=True)
    shot = shots / f"{name}.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,2000", "--hide-scrollbars", (out / f"{name}.html").as_uri())
    assert shot.exists() and shot.stat().st_size > 10_000
