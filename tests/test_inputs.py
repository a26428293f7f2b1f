"""Every bad input that issue 16 found silently accepted, or answered with a traceback, gets one clear line.

Each case names the argument, the value and what is allowed, as a ValueError (library) or as exit code 2 with one
line on stderr (`tvae-nb`). The number of cases is printed by `test_count` (`pytest -s`).
"""
import math
from pathlib import Path

import pytest
import torch

from tvae_nb.cli import main
from tvae_nb.data import load_mnist, make_sequences, perspective_warp, spin_homography, transform_params
from tvae_nb.dsprites import FACTORS, SEQ_FACTORS, capcorr_by_factor
from tvae_nb.recipes import ExperimentConfig, make_experiment
from tvae_nb.topography import CapsuleTopography
from tvae_nb.train import GradClip, TimeLimit, TrainConfig, make_optimizer, train
from tvae_nb.tvae import TVAEConfig, make_model
from tvae_nb.vae import VAE, Loss, importance_log_px

NAN, INF = float("nan"), float("inf")
IMG = torch.rand(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
SMALL = TVAEConfig(n_caps=2, cap_dim=3, seq_len=3, L=3, hidden=(8, 8))


class _M(torch.nn.Module):
    def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))


class _S:
    def sample(self): return None


def _loss(m, b, w, scale=1.0):
    "A loss that keeps the loss contract: a named tuple with `.loss`."
    return Loss(m.w.sum() * scale, m.w.sum(), m.w.sum())


def _train(**kw):
    return train(_M(), _S(), _loss, **{"steps": 1, **kw})


def _no_network_mnist(tmp_path):
    "torchvision's MNIST in an empty folder with every download mirror unreachable."
    import torchvision.datasets as ds
    old = ds.MNIST.mirrors
    ds.MNIST.mirrors = ["http://127.0.0.1:9/"]
    try: load_mnist("train", source="torchvision", root=tmp_path / "none", verbose=False)
    finally: ds.MNIST.mirrors = old


# (case, callable, message that must appear)
LIBRARY = [
    ("TrainConfig grad_clip=-1", lambda: TrainConfig(grad_clip=-1), "TrainConfig.grad_clip must be a finite positive number, got TrainConfig.grad_clip=-1"),
    ("TrainConfig lr=inf", lambda: TrainConfig(lr=INF), "TrainConfig.lr must be a finite positive number, got TrainConfig.lr=inf"),
    ("TrainConfig lr=nan", lambda: TrainConfig(lr=NAN), "TrainConfig.lr must be a finite positive number"),
    ("TrainConfig seed=2**70", lambda: TrainConfig(seed=2**70), "TrainConfig.seed must be an integer in [0, 4294967295]"),
    ("TrainConfig steps=10**30", lambda: TrainConfig(steps=10**30), "TrainConfig.steps must be an integer in [0, 1000000000]"),
    ("TrainConfig steps=True", lambda: TrainConfig(steps=True), "TrainConfig.steps must be an integer"),
    ("TrainConfig max_seconds=nan", lambda: TrainConfig(max_seconds=NAN), "TrainConfig.max_seconds must be a finite positive"),
    ("TrainConfig kl_warmup=-1", lambda: TrainConfig(kl_warmup=-1), "TrainConfig.kl_warmup must be an integer"),
    ("GradClip(-1)", lambda: GradClip(-1.0), "grad_clip must be a finite positive number, got grad_clip=-1.0"),
    ("make_optimizer lr=inf", lambda: make_optimizer(_M().parameters(), "adam", INF), "lr must be a finite positive number, got lr=inf"),
    ("train TimeLimit(nan)", lambda: TimeLimit(NAN), "max_seconds must be a finite positive number"),
    ("train steps=10**30", lambda: _train(steps=10**30), "steps must be an integer in [0, 1000000000]"),
    ("TVAEConfig shift='false'", lambda: TVAEConfig(shift="false"), "TVAEConfig.shift must be True or False, got TVAEConfig.shift='false'"),
    ("TVAEConfig learn_mu='no'", lambda: TVAEConfig(learn_mu="no"), "TVAEConfig.learn_mu must be True or False"),
    ("TVAEConfig mu_init='30'", lambda: TVAEConfig(mu_init="30"), "TVAEConfig.mu_init must be a finite number, got TVAEConfig.mu_init='30'"),
    ("TVAEConfig mu_init=nan", lambda: TVAEConfig(mu_init=NAN), "TVAEConfig.mu_init must be a finite number"),
    ("TVAEConfig hidden=(-1, 5)", lambda: TVAEConfig(hidden=(-1, 5)), "TVAEConfig.hidden=(-1, 5) is invalid: expected None or two positive ints"),
    ("TVAEConfig x_shape=(28, 28)", lambda: TVAEConfig(x_shape=(28, 28)), "TVAEConfig.x_shape=(28, 28) is invalid"),
    ("TVAEConfig.from_dict shift='false'", lambda: TVAEConfig.from_dict({**SMALL.to_dict(), "shift": "false"}), "shift must be True or False"),
    ("ExperimentConfig.from_dict shift='false'",
     lambda: ExperimentConfig.from_dict({**(d := make_experiment("table1-tvae-partial", "fast").to_dict()),
                                         "model": {**d["model"], "shift": "false"}}), "TVAEConfig.shift must be True or False"),
    ("ExperimentConfig.from_dict unknown train key",
     lambda: ExperimentConfig.from_dict({**(d := make_experiment("table1-vae", "fast").to_dict()),
                                         "train": {**d["train"], "clip": 1.0}}), "unknown TrainConfig fields ['clip']"),
    ("CapsuleTopography shift='no'", lambda: CapsuleTopography(2, 3, 1, 3, shift="no"), "shift must be True or False, got shift='no'"),
    ("transform_params seq_len=1", lambda: transform_params("scale", torch.arange(1), 1), "seq_len must be an integer >= 2, got seq_len=1"),
    ("transform_params seq_len=0", lambda: transform_params("rotation", torch.arange(1), 0), "seq_len must be an integer >= 2, got seq_len=0"),
    ("make_sequences hue_start on a grey transform", lambda: make_sequences(IMG, "scale", 6, hue_start=0), "hue_start is for transforms with a hue"),
    ("spin_homography angle inf", lambda: spin_homography(torch.tensor([float("inf")])), "angle must be a 1-D tensor (N,) of finite angles"),
    ("perspective tilt_axis nan", lambda: perspective_warp(IMG, torch.tensor([0.0, NAN])), "tilt_axis must be a 1-D tensor (N,) of finite angles"),
    ("perspective tilt_axis wrong length", lambda: perspective_warp(IMG, torch.tensor([0.0, 1.0, 2.0])), "tilt_axis must have shape (2,)"),
    ("TVAE.loss x in [0, 5]", lambda: make_model(SMALL, seed=0).loss(5 * torch.rand(2, 3, 1, 28, 28)),
     "x must hold pixel intensities in [0, 1]"),
    ("VAE (SeqVAE).loss x in [0, 5]", lambda: make_model(TVAEConfig(model="vae", n_caps=2, cap_dim=3, seq_len=3, hidden=(8, 8)),
                                                          seed=0).loss(5 * torch.rand(2, 3, 1, 28, 28)), "x must hold pixel intensities in [0, 1]"),
    ("TVAE.log_weights x with NaN", lambda: make_model(SMALL, seed=0).log_weights(torch.full((1, 3, 1, 28, 28), NAN), 2), "and NaN"),
    ("importance_log_px chunk=0", lambda: importance_log_px(VAE(n=2), IMG, n_samples=3, chunk=0), "chunk must be an integer >= 1, got chunk=0"),
    ("importance_log_px chunk=-1", lambda: importance_log_px(VAE(n=2), IMG, n_samples=3, chunk=-1), "chunk must be an integer >= 1, got chunk=-1"),
    ("capcorr_by_factor wrong length", lambda: capcorr_by_factor(torch.randn(4, 5, 2, 5), torch.tensor([1, 2])),
     "factor must be an integer tensor of shape (4,)"),
    ("capcorr_by_factor a list", lambda: capcorr_by_factor(torch.randn(4, 5, 2, 5), [1, 2, 3, 4]), "got list"),
    ("capcorr_by_factor unknown column", lambda: capcorr_by_factor(torch.randn(2, 5, 2, 5), torch.tensor([0, 0])),
     "factor must hold columns of"),
    ("make_experiment seed=2**70", lambda: make_experiment("table1-vae", "fast", seed=2**70), "seed must be an integer in [0, 4294967295]"),
    ("make_experiment lr=inf", lambda: make_experiment("table1-vae", "fast", lr=INF), "lr must be a finite positive number"),
]


@pytest.mark.parametrize("case,fn,msg", LIBRARY, ids=[c[0] for c in LIBRARY])
def test_library_input(case, fn, msg):
    with pytest.raises(ValueError) as e: fn()
    text = str(e.value)
    assert msg in text and "\n" not in text, text


def test_load_mnist_torchvision_without_network(tmp_path):
    with pytest.raises(ValueError) as e: _no_network_mnist(tmp_path)
    text = str(e.value)
    assert text.startswith("source='torchvision': MNIST is not in") and "source='embedded'" in text and "\n" not in text, text


def _file(tmp_path):
    f = tmp_path / "a_file"; f.write_text("x"); return f


# (case, argv builder from tmp_path, message); every one exits 2 with one line on stderr
CLI_VALUE = [
    ("run --out a file", lambda t: ["run", "table1-vae", "--budget", "fast", "--out", str(_file(t))], "is a file, not a folder"),
    ("run --out under a file", lambda t: ["run", "table1-vae", "--budget", "fast", "--out", str(_file(t) / "x")], "is under the file"),
    ("data --out a file", lambda t: ["data", "--out", str(_file(t)), "--source", "embedded"], "is a file, not a folder"),
    ("data --out under a file", lambda t: ["data", "--out", str(_file(t) / "x"), "--source", "embedded"], "is under the file"),
    ("table1 --out a file", lambda t: ["table1", "--budget", "fast", "--out", str(_file(t))], "is a file, not a folder"),
    ("data --n -1", lambda t: ["data", "--out", str(t / "d"), "--n", "-1", "--source", "embedded"], "--n must be an integer in [1, 100], got --n=-1"),
    ("data --n 0", lambda t: ["data", "--out", str(t / "d"), "--n", "0", "--source", "embedded"], "--n must be an integer in [1, 100], got --n=0"),
    ("data --seed 2**70", lambda t: ["data", "--out", str(t / "d"), "--seed", str(2**70), "--source", "embedded"], "--seed must be an integer in"),
]


@pytest.mark.parametrize("case,argv,msg", CLI_VALUE, ids=[c[0] for c in CLI_VALUE])
def test_cli_input(case, argv, msg, tmp_path, capsys):
    assert main(argv(tmp_path)) == 2
    cap = capsys.readouterr()
    assert msg in cap.err and cap.err.count("\n") == 1 and cap.out == "", cap
    assert not (tmp_path / "d").exists()                                        # nothing was written


def test_cli_out_unwritable(tmp_path, capsys):
    import os
    ro = tmp_path / "ro"; ro.mkdir(); ro.chmod(0o500)
    try:
        if os.access(ro, os.W_OK): pytest.skip("running as root: permissions are not enforced")
        assert main(["run", "table1-vae", "--budget", "fast", "--out", str(ro / "run")]) == 2
        assert "is not writable" in capsys.readouterr().err
    finally: ro.chmod(0o700)


CLI_PARSE = [("--steps", str(10**30), "expected an integer in [0, 1000000000]"),
             ("--seed", str(2**70), "expected an integer in [0, 4294967295]"),
             ("--max-seconds", "nan", "expected a finite number > 0, got nan"),
             ("--max-seconds", "inf", "expected a finite number > 0"),
             ("--lr", "-1", "expected a finite number > 0"), ("--lr", "nan", "expected a finite number > 0"),
             ("--grad-clip", "-1", "expected a finite number > 0"), ("--grad-clip", "abc", "expected a number, got 'abc'")]


@pytest.mark.parametrize("flag,value,msg", CLI_PARSE, ids=[f"{f} {v[:8]}" for f, v, _ in CLI_PARSE])
def test_cli_parse_errors(flag, value, msg, capsys):
    with pytest.raises(SystemExit) as e: main(["run", "table1-vae", flag, value])
    assert e.value.code == 2
    assert f"argument {flag}: {msg}" in capsys.readouterr().err


def test_nonfinite_advice_names_the_cli_flags():
    from tvae_nb.train import NonFiniteLossError
    with pytest.raises(NonFiniteLossError) as e:
        train(_M(), _S(), lambda m, b, w: _loss(m, b, w, NAN), steps=1)
    assert "tvae-nb run --lr" in str(e.value) and "tvae-nb run --grad-clip" in str(e.value)


def test_cli_lr_and_grad_clip_reach_the_run(tmp_path):
    out = tmp_path / "r"
    assert main(["run", "table1-vae", "--budget", "fast", "--steps", "2", "--lr", "0.0005", "--grad-clip", "5",
                 "--out", str(out), "--no-progress"]) == 0
    import json
    train_cfg = json.loads((out / "config.json").read_text())["experiment"]["train"]
    assert train_cfg["lr"] == 0.0005 and train_cfg["grad_clip"] == 5.0


def test_count(capsys):
    n = len(LIBRARY) + 1 + len(CLI_VALUE) + 1 + len(CLI_PARSE)
    with capsys.disabled(): print(f"\n[test_inputs] {n} bad inputs, each with a one-line error that names it")
    assert n >= 50


@pytest.mark.parametrize("env,msg", [
    (dict(WORLD_SIZE="2", RANK="3"), "RANK=3"), (dict(WORLD_SIZE="0"), "WORLD_SIZE=0"),
    (dict(WORLD_SIZE="2", RANK="0", LOCAL_RANK="5"), "LOCAL_RANK=5"), (dict(WORLD_SIZE="two"), "must be integers"),
])
def test_distributed_settings_are_cross_checked(monkeypatch, env, msg):
    from tvae_nb.runner import dist_env
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"): monkeypatch.delenv(k, raising=False)
    for k, v in env.items(): monkeypatch.setenv(k, v)
    with pytest.raises(ValueError, match=msg): dist_env()


@pytest.mark.parametrize("value", ["abc", "ture", "2"])
def test_a_misspelt_fast_switch_is_refused(monkeypatch, value):
    from tvae_nb.core import fast_mode
    monkeypatch.setenv("TVAE_NB_FAST", value)
    with pytest.raises(ValueError, match=f"TVAE_NB_FAST='{value}' is not understood"): fast_mode()


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", ".hidden", "-rf", "x\\y", "name with space"])
def test_experiment_names_cannot_leave_their_folder(name):
    from tvae_nb.recipes import ExperimentConfig, make_experiment
    d = make_experiment("table1-vae", "fast").to_dict()
    with pytest.raises(ValueError, match="ExperimentConfig.name="):
        ExperimentConfig.from_dict({**d, "name": name})
