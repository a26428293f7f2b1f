"""Run every reference-solution notebook in solutions/ (each calls the exercise checkers on its solutions and asserts
they pass), one fresh process each, like tests/test_notebooks.py does for nbs/."""
import importlib.util, os, subprocess, sys, time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow       # every solution notebook, top to bottom

ROOT = Path(__file__).resolve().parents[1]
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
_spec = importlib.util.spec_from_file_location("render_pages", ROOT / "tools" / "render_pages.py")
render_pages = importlib.util.module_from_spec(_spec); _spec.loader.exec_module(render_pages)


def test_there_are_solutions():
    assert len(SOLUTIONS) >= 6


@pytest.mark.parametrize("nb", SOLUTIONS, ids=lambda p: p.name)
def test_solution_notebook(nb):
    env = dict(os.environ); env.setdefault("TVAE_NB_FAST", "1"); env.setdefault("MPLBACKEND", "Agg")
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", render_pages.RUNNER, str(nb), "0"], cwd=ROOT, env=env, capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"{nb.name} failed after {time.time() - t0:.0f} s:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}", pytrace=False)
