"""`benchmarks/gpu_check.py` at tiny sizes on the CPU, so that the script a lent GPU runs cannot rot: it writes one JSON
file with the benchmarks, each row's measured step rate at --budget paper and the projection from it."""
import json, math, subprocess, sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow       # benchmarks in --smoke mode and two short paper-budget runs: about 40 s

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_check_runs_and_projects_from_the_measured_rate(tmp_path):
    out = tmp_path / "gpu.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "cpu", "--tiny",
                        "--out", str(out)], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-2000:])
    res = json.loads(out.read_text())
    assert res["device"] == "cpu" and res["tiny"] and "error" not in res["benchmarks"]
    assert {"a", "b", "meta"} <= set(res["benchmarks"]["results"])
    assert list(res["rows"]) == ["VAE", "TVAE partial L"]
    for row in res["rows"].values():
        assert row["steps"] > 0 and row["train_seconds"] > 0 and "--budget paper" in row["command"]
        assert row["paper_steps"] == 600_000                        # the paper budget's steps, from the registry
        assert math.isclose(row["steps_per_s"], row["steps"] / row["train_seconds"], rel_tol=0.02)
        assert math.isclose(row["projected_hours"], row["paper_steps"] / row["steps_per_s"] / 3600, rel_tol=0.02)
    assert math.isclose(res["table1_projected_hours_one_after_another"],
                        sum(r["projected_hours"] for r in res["rows"].values()), abs_tol=0.02)
    assert "wrote" in r.stdout and "steps/s" in r.stdout


def test_gpu_check_refuses_a_device_that_is_not_there(tmp_path):
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--device", "tpu", "--tiny",
                        "--out", str(tmp_path / "g.json")], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert r.returncode != 0 and "device" in r.stderr and not (tmp_path / "g.json").exists()
