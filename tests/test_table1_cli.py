"""`tvae-nb table1 --budget fast` end to end: the command CI runs, its JSON schema and its PNGs."""
import json, os, shutil, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _cli():
    exe = Path(sys.executable).parent / "tvae-nb"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tvae_nb.cli"]


def test_table1_fast_end_to_end(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    r = subprocess.run(_cli() + ["table1", "--budget", "fast", "--out", str(tmp_path), "--seed", "0"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((tmp_path / "table1.json").read_text())
    assert res["budget"] == "fast" and res["transform"] == "rotation" and res["seconds"] > 0
    names = [row["model"] for row in res["rows"]]
    assert len(names) == 5 and "VAE" in names[0] and any("Bubble" in n for n in names) and sum("TVAE" in n for n in names) == 3
    keys = {"model", "log_px", "E_eq", "E_eq_centered", "E_eq_floor", "E_eq_centered_floor", "L", "K", "shift"}
    for row in res["rows"]:
        assert keys <= set(row)
        for k in ("log_px", "E_eq", "E_eq_centered", "E_eq_floor", "E_eq_centered_floor"):
            assert isinstance(row[k], float) and row[k] == row[k]          # a number, not NaN
    vae = res["rows"][0]
    assert vae["L"] is None and vae["K"] is None and vae["shift"] is False
    bubble = next(r for r in res["rows"] if "Bubble" in r["model"])
    assert bubble["shift"] is False and bubble["L"] > 1
    assert len(list(tmp_path.glob("traversal_*.png"))) == 5
    assert "E_eq" in r.stdout and "Bubble" in r.stdout                    # the printed table


def test_table1_bad_budget_is_a_clear_error(tmp_path):
    r = subprocess.run(_cli() + ["table1", "--budget", "huge", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "budget" in r.stderr and "huge" in r.stderr
