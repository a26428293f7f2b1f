"""`tvae-nb table1 --budget fast` end to end: the command CI runs, its JSON schema and its PNGs; `--jobs 1` and the
default (parallel processes) give the same numbers bit for bit, and an interrupted table resumes to the same numbers."""
import json, math, os, shutil, subprocess, sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow       # tables in subprocesses: 10 to 25 s each

ROOT = Path(__file__).resolve().parents[1]
TIMING = {"train_seconds", "eval_seconds", "final_eval_seconds"}   # wall-clock: the only row values that may differ between runs


def _cli():
    exe = Path(sys.executable).parent / "tvae-nb"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "tvae_nb.cli"]


def _table1(out, *args):
    env = dict(os.environ, OMP_NUM_THREADS="2", MPLBACKEND="Agg")
    r = subprocess.run(_cli() + ["table1", "--budget", "fast", "--out", str(out), "--seed", "0", *args],
                       capture_output=True, text=True, env=env, cwd=out.parent, timeout=900)
    print(r.stdout[-3000:])
    assert r.returncode == 0, r.stderr[-3000:]
    return r, json.loads((out / "table1.json").read_text())


def _numbers(res):
    return [{k: v for k, v in row.items() if k not in TIMING} for row in res["rows"]]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    "The fast table in 2 processes (the default at --budget fast is 1: spawning costs more than it saves there)."
    out = tmp_path_factory.mktemp("t1") / "default"
    return out, *_table1(out, "--jobs", "2")


def test_table1_fast_end_to_end(default_run):
    tmp_path, r, res = default_run
    assert res["budget"] == "fast" and res["transform"] == "rotation" and res["seconds"] > 0
    names = [row["model"] for row in res["rows"]]
    assert names[:2] == ["VAE", "VAE + free bits"] and len(names) == 7 and any("Bubble" in n for n in names)
    assert sum("TVAE" in n for n in names) == 4
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
        assert row["log_px_paper"] >= row["log_px_joint"]                 # the paper code's estimate is biased up
        # each row's log p(x) is its tightest valid estimator, at the recorded N, with its N-curve
        indep = row["L"] in (None, 1)
        assert row["log_px_estimator"] == ("per frame" if indep else "joint")
        assert row["log_px"] == (row["log_px_frame"] if indep else row["log_px_joint"])
        assert row["n_is"] == row["log_px_curve"]["ns"][-1] and row["log_px_curve"]["ns"][0] == 1
        assert math.isclose(row["log_px_paper"], row["log_px_frame"] + math.log(row["n_is"]), rel_tol=1e-9)
    vae = res["rows"][0]
    assert vae["L"] is None and vae["K"] is None and vae["shift"] is False
    bubble = next(r for r in res["rows"] if "Bubble" in r["model"])
    assert bubble["shift"] is False and bubble["L"] > 1
    assert len(list(tmp_path.glob("traversal_*.png"))) == 7
    assert {p.name for p in tmp_path.iterdir() if p.is_dir()} == {"table1-vae", "table1-vae-fb", "table1-tvae-L1", "table1-bubble",
                                                                 "table1-tvae-short", "table1-tvae-partial", "table1-tvae-full"}
    assert all((tmp_path / d / "checkpoint.pt").is_file() for d in ("table1-vae", "table1-tvae-full"))
    assert "E_eq_c" in r.stdout and "null" in r.stdout and "Bubble" in r.stdout    # the printed table
    from tvae_nb.table1 import table1_models
    models = table1_models(tmp_path)                 # the rows' trained models, from their checkpoints
    assert list(models) == names and not any(m.training for m in models.values())
    assert all(models[row["model"]].cfg.L == row["L"] for row in res["rows"] if row["L"] is not None)


def test_jobs_1_and_an_interrupted_table_give_the_same_numbers(default_run, tmp_path):
    "One process, with one model interrupted half way and resumed by the same command: bit-identical rows."
    from tvae_nb.runner import RunLimit, run_experiment
    from tvae_nb.table1 import table1_experiments
    _, _, parallel = default_run
    out = tmp_path / "one"
    cfg = table1_experiments("fast")["TVAE partial L"]
    half = run_experiment(cfg, out / cfg.name, progress=False, limit=RunLimit(steps=cfg.train.steps // 2))   # the interruption
    assert not half.finished
    r, serial = _table1(out, "--jobs", "1")
    assert serial["jobs"] == 1 and parallel["jobs"] == 2
    assert f"steps {cfg.train.steps // 2} -> {cfg.train.steps}" in r.stdout          # resumed, not restarted
    assert _numbers(serial) == _numbers(parallel)                                   # bit for bit (JSON floats)
    r2, again = _table1(out)                                                         # finished: reloaded, not retrained
    assert "already complete" in r2.stdout and " steps 0 -> " not in r2.stdout and _numbers(again) == _numbers(serial)
    assert str(out / "table1.json") in r2.stdout.splitlines()[-3]                   # the last lines say where the files are


def test_a_config_mismatch_is_refused_before_any_worker_starts(default_run, tmp_path):
    import time
    out = tmp_path / "copy"
    shutil.copytree(default_run[0], out)
    t0 = time.time()
    r = subprocess.run(_cli() + ["table1", "--budget", "fast", "--out", str(out), "--seed", "1", "--jobs", "2"],
                       capture_output=True, text=True, cwd=out.parent, timeout=300)
    assert r.returncode == 2 and "train.seed: 0 != 1" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert "MNIST" not in r.stdout and time.time() - t0 < 15                        # refused before anything was built


def test_table1_bad_budget_is_a_clear_error(tmp_path):
    r = subprocess.run(_cli() + ["table1", "--budget", "huge", "--out", str(tmp_path)], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "budget" in r.stderr and "huge" in r.stderr


# ---------------------------------------------------------------- interrupts: Ctrl-C stops, a dead parent leaves no worker
def _start_quick_table(out):
    "`tvae-nb table1 --budget quick` in a session of its own; returns the process once a row has reported progress."
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("TVAE_NB_FAST", None)
    p = subprocess.Popen(_cli() + ["table1", "--budget", "quick", "--jobs", "2", "--out", str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env=env, cwd=out.parent, start_new_session=True)
    lines = []
    for line in p.stdout:                            # wait until training is under way in a worker
        lines.append(line)
        if " step " in line and "of 6500" in line: break
    assert p.poll() is None, "".join(lines)
    return p, lines


def _descendants(pid: int) -> set[int]:
    "Every process below `pid` (Linux /proc)."
    out, todo = set(), [pid]
    while todo:
        q = todo.pop()
        try: kids = Path(f"/proc/{q}/task/{q}/children").read_text().split()
        except OSError: continue
        for k in map(int, kids):
            if k not in out: out.add(k); todo.append(k)
    return out


def _alive(pid: int) -> bool:
    try: stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError: return False
    return stat.split(")")[-1].split()[0] != "Z"                 # a zombie has finished


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
def test_ctrl_c_stops_the_table_and_every_started_row_is_resumable(tmp_path):
    import signal, time
    from tvae_nb.checkpoint import CHECKPOINT, load_checkpoint
    from tvae_nb.table1 import table1_experiments
    out = tmp_path / "t1"
    p, lines = _start_quick_table(out)
    t0 = time.time()
    os.killpg(p.pid, signal.SIGINT)                  # Ctrl-C reaches the whole process group
    rest = p.communicate(timeout=60)[0]
    assert time.time() - t0 < 10, f"took {time.time() - t0:.1f} s to stop"
    assert p.returncode == 130, rest[-2000:]
    assert "interrupted" in rest and "resumes" in rest
    started = [c for c in table1_experiments("quick").values() if (out / c.name / "config.json").exists()]
    assert started
    for cfg in started:                              # each row that started has a checkpoint of its own config
        assert (out / cfg.name / CHECKPOINT).is_file(), (f"{cfg.name} started but has no checkpoint (folder: {sorted(q.name for q in (out / cfg.name).iterdir())}):\n"
                                                         + "".join(lines) + rest[-3000:])
        ck = load_checkpoint(out / cfg.name / CHECKPOINT, cfg)
        assert 0 < ck["step"] < cfg.train.steps
    assert len(started) <= 2                         # no queued row started after the interrupt


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_a_killed_table_leaves_no_worker(tmp_path, sig):
    import signal, time
    out = tmp_path / "t1"
    p, _ = _start_quick_table(out)
    kids = _descendants(p.pid)
    assert kids, "no worker processes found"
    os.kill(p.pid, getattr(signal, sig))             # the parent alone, as a time limit or `kill` would
    p.wait(timeout=60)
    deadline = time.time() + 10
    while time.time() < deadline and any(_alive(k) for k in kids): time.sleep(0.2)
    left = [k for k in kids if _alive(k)]
    for k in left: os.kill(k, signal.SIGKILL)
    assert not left, f"{len(left)} worker(s) still running 10 s after {sig} to the parent"


def test_the_fast_likelihood_path_gives_the_table_of_the_reference_path(default_run, monkeypatch):
    """The table's likelihoods come from the blocked evaluation kernel (`decode_log_lik`); computed again with the
    reference path (the decoder on every sample at once, torch's BCE), every row's values agree within 1e-3 nats."""
    import torch
    import tvae_nb.tvae as T, tvae_nb.vae as V
    from tvae_nb.checkpoint import load_checkpoint
    from tvae_nb.evaluation import eval_batch
    from tvae_nb.table1 import final_log_px, table1_experiments
    from tvae_nb.tvae import make_model
    out, _, res = default_run
    rows = {r["model"]: r for r in res["rows"]}
    calls = []
    def reference(dec, z, x):
        calls.append(z.shape)
        return V.bernoulli_log_lik(dec(z), x.expand(*z.shape[:-1 - (x.ndim - 3)], *x.shape))
    keys = ("log_px", "log_px_joint", "log_px_frame", "log_px_paper", "log_px_rise")
    for row in ("VAE", "TVAE partial L"):
        cfg = table1_experiments("fast")[row]
        model = make_model(cfg.model)
        model.load_state_dict(load_checkpoint(out / cfg.name / "checkpoint.pt", cfg)["model"])
        x = eval_batch(cfg).x
        fast = final_log_px(model, x, cfg)
        for k in keys: assert fast[k] == rows[row][k], (row, k)             # the table holds what the fast path gives
        with monkeypatch.context() as m:
            m.setattr(V, "decode_log_lik", reference); m.setattr(T, "decode_log_lik", reference)
            ref = final_log_px(model, x, cfg)
        assert calls, "the reference path did not run"; calls.clear()
        for k in keys: assert abs(fast[k] - ref[k]) <= 1e-3, (row, k, fast[k], ref[k])
        assert fast["log_px_curve"]["ns"] == ref["log_px_curve"]["ns"]
        for a, b in zip(fast["log_px_curve"]["joint"], ref["log_px_curve"]["joint"]): assert abs(a - b) <= 1e-3


def test_the_paper_budget_never_trains_on_the_embedded_digits_unasked(tmp_path):
    "Without torchvision's MNIST on disk, --budget paper is refused in one line; --source embedded starts and says so."
    env = dict(os.environ, TVAE_NB_DATA=str(tmp_path / "no-mnist"), MPLBACKEND="Agg")
    r = subprocess.run(_cli() + ["table1", "--budget", "paper", "--out", str(tmp_path / "t")], capture_output=True,
                       text=True, env=env, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert len(r.stderr.strip().splitlines()) == 1 and "--source embedded" in r.stderr and "60,000" in r.stderr
    assert not (tmp_path / "t").exists()                                          # refused before anything is made
    out = tmp_path / "r"
    r = subprocess.run(_cli() + ["run", "table1-vae", "--budget", "paper", "--source", "embedded", "--out", str(out),
                                 "--max-seconds", "1", "--no-progress"], capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "data embedded MNIST, 3,200 digits" in r.stdout                       # the paper budget holds out a fifth
    assert json.loads((out / "config.json").read_text())["data"] == {"source": "embedded", "train_examples": 3200}
