"""Run every notebook as a pytest test, so that pytest's summary counts them.

Each notebook runs in a fresh Python process through `nbdev.test.test_nb`, with nbdev's skip flags
(`notest`, `slow`) and `TVAE_NB_FAST=1` unless the caller set `TVAE_NB_FAST` explicitly.
"""
import os, subprocess, sys, time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p for p in (ROOT / "nbs").rglob("*.ipynb")
                   if not p.name.startswith("_") and ".ipynb_checkpoints" not in p.parts)

RUNNER = """
import sys
from nbdev.config import get_config
from nbdev.test import test_nb
cfg = get_config()
ok, secs = test_nb(sys.argv[1], skip_flags=cfg.tst_flags.split(), basepath=str(cfg.config_path),
                   cell_timeout=int(cfg.get('cell_timeout', 600)))
print(f"notebook time: {secs:.1f} s")
sys.exit(0 if ok else 1)
"""


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT / "nbs")))
def test_notebook(nb):
    env = dict(os.environ)
    env.setdefault("TVAE_NB_FAST", "1")
    env.setdefault("MPLBACKEND", "Agg")
    t0 = time.time()
    res = subprocess.run([sys.executable, "-c", RUNNER, str(nb)], cwd=ROOT, env=env,
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.fail(f"{nb.name} failed after {time.time() - t0:.0f} s:\n{res.stdout[-4000:]}\n{res.stderr[-8000:]}",
                    pytrace=False)
