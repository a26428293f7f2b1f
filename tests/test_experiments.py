"""Independent tests of tvae_nb.recipes, tvae_nb.checkpoint and tvae_nb.runner: registry, outputs, bit-exact resume, DDP on 2 CPU processes, errors."""
import json, os, shutil, subprocess, sys, textwrap
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tvae_nb import __version__
from tvae_nb.cli import main
from tvae_nb.data import load_mnist
from tvae_nb.samplers import SequenceSampler
from tvae_nb.recipes import BUDGETS, EXPERIMENTS, ExperimentConfig, make_experiment
from tvae_nb.checkpoint import CHECKPOINT, load_checkpoint, save_checkpoint
from tvae_nb.runner import RunLimit, rank_seed, run_experiment
from tvae_nb.checkpoint import _envelope
from tvae_nb.train import TrainConfig, kl_warmup, make_optimizer
from tvae_nb.tvae import TVAEConfig, make_model

from conftest import tiny_experiment

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]


tiny = tiny_experiment          # a registry config shrunk to a few seconds of CPU (conftest.py)


def params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ---------------------------------------------------------------- registry
def test_registry_every_entry_every_budget():
    assert len(EXPERIMENTS) >= 15
    for name in EXPERIMENTS:
        for b in BUDGETS:
            cfg = make_experiment(name, b)
            assert cfg.name == name and cfg.budget == b and cfg.description
            assert ExperimentConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_paper_settings():
    cfg = make_experiment("table1-tvae-partial", "paper")
    t, m = cfg.train, cfg.model
    assert (t.optimizer, t.lr, t.momentum, t.batch_size, t.steps) == ("sgd", 1e-4 / 18, 0.9, 8, 600_000)   # per-frame lr 1e-4
    assert (m.n_caps, m.cap_dim, m.seq_len, m.K, m.mu_init, m.hidden, m.shift) == (18, 18, 18, 3, 30.0, None, True)
    assert cfg.val_fraction == 0.2 and cfg.to_dict()["val_fraction"] == 0.2    # 100 epochs of the 48,000 digits kept
    assert make_experiment("table1-bubble", "paper").model.shift is False
    assert make_experiment("table1-vae", "paper").model.model == "vae"
    torus = make_experiment("fig3-torus-mnist", "paper")
    assert torus.model.topography == "torus"
    assert (torus.train.batch_size, torus.train.steps, torus.model.mu_init, torus.val_fraction) == (128, 93_750, 10.0, 0.2)
    for name, L, K in [("table2-bubble", 5, 5), ("table2-tvae-short", 5, 1), ("table2-tvae-partial", 10, 1),
                       ("table2-tvae-full", 15, 1)]:
        c = make_experiment(name, "paper")
        assert (c.model.L, c.model.K, c.train.steps, c.val_fraction) == (L, K, 632_800, 0.0), name


# the fields of ExperimentConfig.to_dict() before val_fraction existed: what the config.json of every earlier run holds
OLD_KEYS = {"name", "description", "budget", "model", "train", "dataset", "transform", "seq_len", "n_eval", "n_is",
            "eval_seed", "eval_every", "checkpoint_every", "n_is_final"}


def test_the_course_budgets_hold_nothing_out_and_keep_their_config_json():
    "fast, quick and long train on every digit, and their to_dict() has no new key: earlier run folders still match."
    for name in EXPERIMENTS:
        for b in ("fast", "quick", "long"):
            cfg = make_experiment(name, b)
            assert cfg.val_fraction == 0.0 and set(cfg.to_dict()) == OLD_KEYS, (name, b)
            assert ExperimentConfig.from_dict(cfg.to_dict()) == cfg


def test_an_earlier_run_folder_resumes(tmp_path):
    "A config.json written before val_fraction existed (no such key) is this config's: the run resumes and finishes."
    cfg = tiny(steps=8)
    run_experiment(cfg, tmp_path, progress=False, limit=RunLimit(steps=4))
    conf = json.loads((tmp_path / "config.json").read_text())
    assert set(conf["experiment"]) == OLD_KEYS and conf["experiment"] == cfg.to_dict()
    res = run_experiment(cfg, tmp_path, progress=False, resume=True)
    assert res.finished and res.step == 8


def test_a_held_out_split_trains_on_what_it_keeps(tmp_path):
    "val_fraction 0.2 on the embedded 4,000 digits: 3,200 trained on, recorded in config.json; a new key, a new config."
    cfg = replace(tiny(steps=4), val_fraction=0.2)
    run_experiment(cfg, tmp_path, progress=False, source="embedded")
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["experiment"]["val_fraction"] == 0.2 and conf["data"] == {"source": "embedded", "train_examples": 3200}
    with pytest.raises(ValueError, match="val_fraction"):
        run_experiment(replace(cfg, val_fraction=0.0), tmp_path, progress=False, resume=True, source="embedded")


def test_long_budget_is_quick_trained_longer():
    from tvae_nb.recipes import LONG_FACTOR
    for name in EXPERIMENTS:
        q, l = make_experiment(name, "quick"), make_experiment(name, "long")
        assert l.train == replace(q.train, steps=LONG_FACTOR * q.train.steps), name
        assert replace(l, budget="quick", train=q.train, eval_every=q.eval_every, checkpoint_every=q.checkpoint_every) == q, name
        if name.startswith("table1-"):                          # Table 1's long runs are evaluated at the quick step count
            assert q.train.steps % l.eval_every == 0, name


def test_longer_run_passes_through_the_shorter_one(tmp_path):
    "Constant learning rate, evaluations on their own RNG: a run of 2n steps evaluated at n is the run of n steps."
    short, long_ = tiny(steps=8), replace(tiny(steps=16), eval_every=4)
    run_experiment(short, tmp_path / "s", progress=False)
    run_experiment(long_, tmp_path / "l", progress=False)
    read = lambda d: {r["step"]: r for r in map(json.loads, (tmp_path / d / "metrics.jsonl").read_text().splitlines())}
    s, l = read("s"), read("l")
    assert sorted(l) == [4, 8, 12, 16]
    assert s[8] == l[8]


# ---------------------------------------------------------------- a run and its outputs
def test_run_writes_outputs(tmp_path):
    cfg = tiny(steps=8)
    res = run_experiment(cfg, tmp_path / "r", progress=False)
    out = tmp_path / "r"
    assert res.finished and res.step == 8
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "metrics.jsonl", CHECKPOINT, "loss.png", "reconstructions.png"} <= names
    conf = json.loads((out / "config.json").read_text())
    assert conf["version"] == __version__ and conf["experiment"] == cfg.to_dict()
    lines = [json.loads(l) for l in (out / "metrics.jsonl").read_text().splitlines()]
    assert [l["step"] for l in lines] == [4, 8]
    counts = {"step", "active_z", "active_u", "used_z", "used_u"}           # counts stay ints, a flagged ratio is None
    assert all(isinstance(v, int) for k, v in lines[-1].items() if k in counts)
    assert all(isinstance(v, float) or (v is None and k.endswith("_ratio")) for k, v in lines[-1].items() if k not in counts)
    ck = load_checkpoint(out / CHECKPOINT)
    assert ck["experiment"] == cfg.name and ck["version"] == __version__ and ck["step"] == 8
    assert not [p for p in out.iterdir() if p.name.startswith(".")]          # no temp files left behind


@pytest.mark.parametrize("optimizer,stop,sched", [("adam", 5, {}), ("sgd", 8, {}),
                                                  ("adam", 7, dict(free_bits_anneal=0.5, kl_warmup_u=10))])
def test_resume_is_bit_exact(tmp_path, optimizer, stop, sched):
    "Also with free bits that fall during the run and a warm-up of u of its own: the schedule resumes with the step."
    cfg = tiny(steps=12, optimizer=optimizer, lr=1e-3 if optimizer == "adam" else 1e-4, **sched)
    full = run_experiment(cfg, tmp_path / "a", progress=False)
    part = run_experiment(cfg, tmp_path / "b", progress=False, limit=RunLimit(steps=stop))
    assert not part.finished and part.step == stop
    torch.manual_seed(999); torch.randn(10)                                   # disturb the global RNG in between
    resumed = run_experiment(cfg, tmp_path / "b", progress=False, resume=True)
    assert resumed.finished
    assert resumed.history.values["loss"] == full.history.values["loss"]
    assert resumed.history.steps == list(range(12))
    pa, pb = params(full.model), params(resumed.model)
    assert pa.keys() == pb.keys() and all(torch.equal(pa[k], pb[k]) for k in pa)
    assert (tmp_path / "a" / "metrics.jsonl").read_text() == (tmp_path / "b" / "metrics.jsonl").read_text()


def test_runner_trains_what_fit_trains(tmp_path):
    "One assembly of a run: `run_experiment` and `fit` on the same config give the same weights (scheduled free bits too)."
    from tvae_nb.evaluation import make_sampler
    from tvae_nb.train import fit
    cfg = tiny(steps=8, free_bits_anneal=0.5, kl_warmup_u=6)
    res = run_experiment(cfg, tmp_path / "a", progress=False)
    model = make_model(cfg.model, seed=cfg.train.seed)
    fit(model, make_sampler(cfg), cfg.train, progress=False)
    pa, pb = params(res.model), params(model)
    assert all(torch.equal(pa[k], pb[k]) for k in pa)
    plain = make_model(cfg.model, seed=cfg.train.seed)
    fit(plain, make_sampler(cfg), replace(cfg.train, free_bits_anneal=0.0, kl_warmup_u=None), progress=False)
    assert not all(torch.equal(pa[k], v) for k, v in params(plain).items())        # the schedule did something


# ---------------------------------------------------------------- DDP on two CPU processes
DDP_SCRIPT = textwrap.dedent("""
    import os, sys, torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests!r})
    from test_experiments import tiny
    from tvae_nb.runner import run_experiment
    cfg = tiny(steps=5)
    res = run_experiment(cfg, {out!r}, device="cpu", progress=False)
    torch.save(res.model.state_dict(), os.path.join({out!r}, f"params-rank{{os.environ['RANK']}}.pt"))
""")


@pytest.mark.slow
def test_ddp_two_cpu_processes_match_single_process(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists(): pytest.skip("torchrun not installed next to this python")
    out = tmp_path / "ddp"
    script = tmp_path / "ddp_job.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), out=str(out)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TVAE_NB_FAST": "1"}
    r = subprocess.run([str(torchrun), "--standalone", "--nproc_per_node=2", str(script)], env=env,
                       capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-5000:]
    p0 = torch.load(out / "params-rank0.pt", weights_only=True)
    p1 = torch.load(out / "params-rank1.pt", weights_only=True)
    assert all(torch.equal(p0[k], p1[k]) for k in p0)                        # ranks stay in sync
    assert (out / CHECKPOINT).exists() and load_checkpoint(out / CHECKPOINT)["world_size"] == 2

    # the single-process equivalent: the union of both ranks' batches, the mean of their losses
    cfg, tc = tiny(steps=5), tiny(steps=5).train
    xtr, ytr = load_mnist("train", verbose=False)
    model = make_model(cfg.model, seed=tc.seed)
    samplers = [SequenceSampler(xtr, ytr, cfg.transform, cfg.seq_len, tc.batch_size, seed=tc.seed, rank=r) for r in (0, 1)]
    rngs = []
    for r in (0, 1):
        torch.manual_seed(rank_seed(tc.seed, r)); rngs.append(torch.get_rng_state())
    opt = make_optimizer(model.parameters(), tc.optimizer, tc.lr, tc.momentum)
    sched = kl_warmup(tc.kl_warmup)
    for step in range(tc.steps):
        losses = []
        for r in (0, 1):
            batch = samplers[r].sample()
            torch.set_rng_state(rngs[r])
            losses.append(model.loss(batch.x, sched(step), **tc.loss_options()).loss)   # free bits, as the run
            rngs[r] = torch.get_rng_state()
        opt.zero_grad(); (sum(losses) / 2).backward(); opt.step()
    ref = model.state_dict()
    for k in p0: torch.testing.assert_close(p0[k], ref[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: {m}")


def test_python_dash_m_cli():
    r = subprocess.run([sys.executable, "-m", "tvae_nb.cli", "list"], capture_output=True, text=True, timeout=120,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0 and "table1-tvae-partial" in r.stdout and "fig3-torus-mnist" in r.stdout


# ---------------------------------------------------------------- bad input: clear errors
@pytest.mark.parametrize("make,msg", [
    (lambda: make_experiment("table9-tvae"), "table1-tvae-partial"),                     # unknown name lists valid ones
    (lambda: make_experiment("table1-vae", "medium"), "budget='medium'"),
    (lambda: make_experiment("table1-vae", "fast", seed=-1), "seed=-1"),
    (lambda: make_experiment("table1-vae", "fast", steps=-5), "steps"),
    (lambda: replace(tiny(), model=replace(tiny().model, L=7)), "L <= seq_len"),
    (lambda: TVAEConfig(seq_len=6, L=0), "L=0"),
    (lambda: TVAEConfig(topography="torus", n_caps=6, cap_dim=6, seq_len=1, K=4), "odd"),
    (lambda: TVAEConfig(n_caps=4, cap_dim=2, K=3), "K <= cap_dim"),
    (lambda: replace(tiny(), seq_len=12), "model's seq_len"),
    (lambda: replace(tiny(), seq_len=1, model=replace(tiny().model, seq_len=1, L=1)), "seq_len"),
    (lambda: replace(tiny(), transform="shear"), "transform"),
    (lambda: replace(tiny(), transform="hue"), "x_shape"),
    (lambda: replace(tiny(), dataset="cifar"), "dataset"),
    (lambda: replace(tiny(), eval_every=0), "eval_every"),
    (lambda: TrainConfig(steps=-1), "steps"),
    (lambda: TrainConfig(lr=0), "lr"),
    (lambda: TrainConfig(optimizer="lion"), "'adam' or 'sgd'"),
    (lambda: run_experiment(tiny(), "/tmp/tvae-nb-unused", device="tpu"), "tpu"),
    (lambda: run_experiment(tiny(), "/tmp/tvae-nb-unused", limit=RunLimit(steps=-1)), "limit.steps"),
    (lambda: ExperimentConfig.from_dict({"name": "x", "colour": 1}), "unknown ExperimentConfig fields"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_bad_config(make, msg):
    with pytest.raises(ValueError, match=None) as e: make()
    assert msg in str(e.value), str(e.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_cpu_machine(tmp_path):
    with pytest.raises(ValueError, match="not available"): run_experiment(tiny(), tmp_path, device="cuda")


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("done") / "run"
    cfg = tiny(steps=4)
    run_experiment(cfg, out, progress=False)
    return cfg, out


def test_out_dir_errors(finished_run, tmp_path):
    cfg, out = finished_run
    with pytest.raises(ValueError, match="no checkpoint"): run_experiment(cfg, tmp_path / "empty", resume=True)
    with pytest.raises(ValueError, match="holds a run of experiment 'table1-tvae-partial'"):
        run_experiment(replace(cfg, name="table1-vae-x"), out)
    with pytest.raises(ValueError, match="train.seed"): run_experiment(replace(cfg, train=replace(cfg.train, seed=3)), out)
    with pytest.raises(ValueError, match="--resume"): run_experiment(cfg, out)


def _copy(out, tmp_path):
    dst = tmp_path / "copy"; shutil.copytree(out, dst); return dst


def test_checkpoint_errors(finished_run, tmp_path):
    cfg, out = finished_run
    ck = out / CHECKPOINT
    with pytest.raises(ValueError, match="belongs to experiment"): load_checkpoint(ck, replace(cfg, name="other"))
    with pytest.raises(ValueError, match="another config"):
        load_checkpoint(ck, replace(cfg, train=replace(cfg.train, lr=0.5)))
    d = load_checkpoint(ck); d["version"] = "0.0.1"
    torch.save(_envelope(d), tmp_path / "old.pt")                             # a valid checksum, an old version
    with pytest.raises(ValueError, match="written by tvae_nb 0.0.1"): load_checkpoint(tmp_path / "old.pt", cfg)
    (tmp_path / "bad.pt").write_bytes(ck.read_bytes()[:200])
    with pytest.raises(ValueError, match="corrupted"): load_checkpoint(tmp_path / "bad.pt", cfg)
    (tmp_path / "junk.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="corrupted"): load_checkpoint(tmp_path / "junk.pt", cfg)
    torch.save({"a": torch.zeros(1)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a tvae-nb experiment checkpoint"): load_checkpoint(tmp_path / "other.pt", cfg)
    # a corrupted checkpoint inside a run folder: --resume says so
    dst = _copy(out, tmp_path)
    (dst / CHECKPOINT).write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="corrupted"): run_experiment(cfg, dst, resume=True)


# ---------------------------------------------------------------- the command line
@pytest.mark.parametrize("argv,msg", [
    (["run", "table7"], "expected one of"),
    (["run", "table1-vae", "--budget", "huge"], "budget='huge'"),
    (["run", "table1-vae", "--device", "tpu"], "device='tpu'"),
    (["run", "table2-vae", "--budget", "galaxy"], "budget='galaxy'"),
    (["table1", "--transform", "shear"], "--transform='shear'"),
    (["table1", "--budget", "huge"], "--budget='huge'"),
])
def test_cli_errors_exit_2(argv, msg, capsys, tmp_path):
    assert main(argv + (["--out", str(tmp_path / "o")] if argv[0] == "run" else [])) == 2
    err = capsys.readouterr().err
    assert msg in err and err.count("\n") == 1 and err.startswith(f"tvae-nb {argv[0]}: error:"), err


def test_cli_resume_without_checkpoint(capsys, tmp_path):
    assert main(["run", "table1-vae", "--budget", "fast", "--out", str(tmp_path), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize("flag", ["--seed", "--steps"])
def test_cli_negative_ints_exit_2(flag, capsys):
    with pytest.raises(SystemExit) as e: main(["run", "table1-vae", flag, "-3"])
    assert e.value.code == 2 and f"argument {flag}" in capsys.readouterr().err


def test_cli_list(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in EXPERIMENTS) and "fast, quick, long, paper" in out


def test_cli_run_then_resume(tmp_path, capsys):
    out = tmp_path / "cli"
    assert main(["run", "table1-vae", "--budget", "fast", "--steps", "6", "--out", str(out), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "table1-vae | budget fast | device cpu" in text
    assert main(["run", "table1-vae", "--budget", "fast", "--steps", "6", "--out", str(out), "--no-progress"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["run", "table1-vae", "--budget", "fast", "--steps", "6", "--out", str(out), "--resume", "--no-progress"]) == 0


@pytest.mark.parametrize("name", ["table2-tvae-partial", "generalisation-rotation-hue", "perspective", "fig3-torus-mnist"])
def test_every_kind_of_experiment_runs_a_few_steps(name, tmp_path):
    "dSprites, one-at-a-time sequences, perspective and the torus all go through the same run_experiment."
    cfg = make_experiment(name, "fast", steps=4)
    cfg = replace(cfg, n_eval=4, n_is=2, eval_every=4, checkpoint_every=4)
    res = run_experiment(cfg, tmp_path / name, progress=False)
    assert res.finished and res.step == 4
    lines = (tmp_path / name / "metrics.jsonl").read_text().splitlines()
    m = json.loads(lines[-1])
    assert m["step"] == 4
    if name.startswith("table2"): assert any(k.startswith("capcorr_") for k in m)


def test_reloaded_run_keeps_its_training_time(tmp_path):
    "A finished run reloaded from its checkpoint reports the training time it took, not the time of the reload."
    cfg = tiny(steps=8)
    first = run_experiment(cfg, tmp_path / "r", progress=False)
    again = run_experiment(cfg, tmp_path / "r", resume=True, progress=False)
    assert first.history.seconds > 0 and again.history.seconds == pytest.approx(first.history.seconds, rel=0, abs=1e-6)


@pytest.mark.slow
def test_sigint_and_sigterm_checkpoint_the_run(tmp_path):
    "Ctrl-C (or SIGTERM) during training ends the step, writes a checkpoint and raises KeyboardInterrupt; --resume goes on."
    import signal, threading
    for sig in (signal.SIGINT, signal.SIGTERM):
        cfg = tiny(steps=200_000)                                  # far more than the second it runs
        out = tmp_path / sig.name
        timer = threading.Timer(5.0, lambda: os.kill(os.getpid(), sig))   # after the set-up
        timer.start()
        with pytest.raises(KeyboardInterrupt, match="checkpoint saved"):
            run_experiment(cfg, out, progress=False)
        timer.join()
        assert signal.getsignal(sig) in (signal.default_int_handler, signal.SIG_DFL)   # handlers put back
        step = load_checkpoint(out / CHECKPOINT, cfg)["step"]
        assert 0 < step < cfg.train.steps
        res = run_experiment(cfg, out, progress=False, resume=True, limit=RunLimit(steps=step + 3))
        assert res.step == step + 3


def test_a_signal_during_set_up_still_leaves_a_resumable_run(tmp_path, monkeypatch):
    "Ctrl-C that arrives after config.json is written but before the first step: a step-0 checkpoint, and --resume trains."
    import signal
    import tvae_nb.runner as ex
    cfg = tiny(steps=50)
    real = ex._open_run_folder
    def open_then_interrupt(*a, **k):                       # the signal lands right after the folder is opened
        real(*a, **k); os.kill(os.getpid(), signal.SIGINT)
    monkeypatch.setattr(ex, "_open_run_folder", open_then_interrupt)
    with pytest.raises(KeyboardInterrupt, match="after step 0 of 50; checkpoint saved"):
        run_experiment(cfg, tmp_path, progress=False)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler    # handler put back
    assert load_checkpoint(tmp_path / CHECKPOINT, cfg)["step"] == 0
    monkeypatch.setattr(ex, "_open_run_folder", real)
    assert run_experiment(cfg, tmp_path, progress=False, resume=True, limit=RunLimit(steps=3)).step == 3


def test_an_evaluation_that_draws_noise_does_not_move_the_training_stream():
    "EvalEvery runs its function inside `evaluating`: a run evaluated every step trains exactly as one never evaluated."
    from tvae_nb.train import EvalEvery, NonFiniteGuard, model_loss, train
    from tvae_nb.data import load_mnist
    from tvae_nb.samplers import SequenceSampler
    cfg = tiny(steps=6)
    x, y = load_mnist("train")
    def run(callbacks):
        model = make_model(cfg.model, seed=0)
        sampler = SequenceSampler(x[:64], y[:64], "rotation", cfg.seq_len, batch_size=4, seed=0)
        return train(model, sampler, model_loss, steps=6, seed=0, callbacks=[NonFiniteGuard(), *callbacks]).values["loss"]
    noisy = EvalEvery(lambda m: {"draw": torch.randn(1000).sum().item()}, 1)     # an evaluation that consumes noise
    assert run([noisy]) == run([])


def test_a_second_ctrl_c_while_the_run_stops_cannot_cut_the_checkpoint(tmp_path, monkeypatch):
    "Ctrl-C reaches a table's worker twice (the terminal's, then the table's): the second, as `fit` returns, still finds the handler."
    import signal
    import tvae_nb.runner as ex
    cfg, real = tiny(steps=50), ex.fit
    def fit_then_signal(*a, **k):
        os.kill(os.getpid(), signal.SIGINT)                  # the first: the run stops after its next step
        h = real(*a, **k)
        os.kill(os.getpid(), signal.SIGINT)                  # the second: while the run is about to save
        return h
    monkeypatch.setattr(ex, "fit", fit_then_signal)
    with pytest.raises(KeyboardInterrupt, match="after step 1 of 50; checkpoint saved"):
        run_experiment(cfg, tmp_path, progress=False)
    assert load_checkpoint(tmp_path / CHECKPOINT, cfg)["step"] == 1
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_list_verbose_prints_every_setting_beside_the_paper_code(capsys):
    "`tvae-nb list --verbose --budget paper`: each experiment the paper's code has, every difference flagged with its reason."
    from tvae_nb.cli import main
    from tvae_nb.recipes import PAPER_CODE, paper_code_differences
    assert main(["list", "--verbose", "--budget", "paper"]) == 0
    out = capsys.readouterr().out
    verbose = out[out.index("settings at --budget paper"):]
    assert all(len(l) <= 100 for l in verbose.splitlines())
    for name, ref in PAPER_CODE.items(): assert f"  {name} ({ref['file']})" in verbose
    diffs = paper_code_differences("paper")
    assert verbose.count(" DIFFERS") == len(diffs) > 0
    flat = " ".join(verbose.split())
    for d in diffs: assert " ".join(d["reason"].split()) in flat, d
    assert "L          course 13 (13/36)" in verbose                  # the paper's window notation
