"""`tvae-nb table1 --budget fast` end to end: the command CI runs, its JSON schema and its PNGs."""
import json, math, os, shutil, subprocess, sys
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
    numbers = {"log_px", "log_px_paper", "elbo", "kl_z", "kl_u", "flat", "flat_det", "roll_mse", "no_roll_mse"}
    for est in ("", "_det"):                     # both estimators, plain and centered, with nulls, floors and ratios
        for c in ("", "_c"):
            for m in ("E_eq", "E_inv"):
                numbers |= {f"{m}{est}{c}", f"{m}{est}{c}_null", f"{m}{est}{c}_floor"}
    counts = {"active_z", "active_u", "used_z", "used_u", "steps"}
    for row in res["rows"]:
        assert numbers | counts | {"model", "L", "K", "shift"} <= set(row), sorted(numbers - set(row))
        for k in numbers:
            assert isinstance(row[k], float) and math.isfinite(row[k]), (row["model"], k, row[k])
        for k in counts: assert isinstance(row[k], int) and row[k] >= 0
        for k in [k for k in row if k.endswith("_ratio")]:
            null = row[k[:-len("_ratio")] + "_null"]
            if row[k] is not None: assert math.isclose(row[k], row[k[:-len("_ratio")]] / null, rel_tol=1e-9)
            else: assert row["flat"] >= 0.99 or row["flat_det"] >= 0.99 or null == 0
        assert row["log_px_paper"] >= row["log_px"]                       # the paper code's estimate is biased up
    vae = res["rows"][0]
    assert vae["L"] is None and vae["K"] is None and vae["shift"] is False
    bubble = next(r for r in res["rows"] if "Bubble" in r["model"])
    assert bubble["shift"] is False and bubble["L"] > 1
    assert len(list(tmp_path.glob("traversal_*.png"))) == 5
    assert "E_eq_c" in r.stdout and "null" in r.stdout and "Bubble" in r.stdout    # the printed table


def test_table1_bad_budget_is_a_clear_error(tmp_path):
    r = subprocess.run(_cli() + ["table1", "--budget", "huge", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "budget" in r.stderr and "huge" in r.stderr
