"""Run every notebook as a pytest test, so that pytest's summary counts them.

Each notebook runs top to bottom through `nbdev.test.test_nb` in a fresh Python process, with nbdev's skip flags
(`notest`, `slow`) and `TVAE_NB_FAST=1` unless the caller set `TVAE_NB_FAST` explicitly. It runs on a copy inside
`site/ci/_build/`, given its generated API reference (`add_api_reference`), with its outputs saved, and the executed
copy is rendered to `site/ci/NAME.html` (the same code as `tools/render_pages.py`), so `tests/test_pages.py` can check every page in a browser without running them again.
The sources in `nbs/` are never modified.
"""
import importlib.util, os, shutil, subprocess, sys, time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow       # every notebook, top to bottom

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "site" / "ci"
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").glob("*.ipynb") if not p.name.startswith("_"))

_spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
render_pages = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(render_pages)


@pytest.fixture(scope="session")
def build_dir():
    build = SITE / "_build"
    if build.exists(): shutil.rmtree(build)
    shutil.copytree(ROOT / "nbs", build / "nbs", ignore=shutil.ignore_patterns(".ipynb_checkpoints", "_proc", "runs"))
    for old in SITE.glob("*.html"): old.unlink()
    return build / "nbs"


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook(nb, build_dir):
    env = dict(os.environ)
    env.setdefault("TVAE_NB_FAST", "1")
    env.setdefault("MPLBACKEND", "Agg")
    copy = build_dir / nb.name
    render_pages.add_api_reference(copy)           # as tools/render_pages.py does: the page gets its generated reference
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", render_pages.RUNNER, str(copy), "1"], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    secs = time.time() - t0
    if res.returncode != 0:
        pytest.fail(f"{nb.name} failed after {secs:.0f} s:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}", pytrace=False)
    render_pages.to_html(copy, SITE / f"{nb.stem}.html")
    print(f"{nb.name}: {secs:.1f} s")
