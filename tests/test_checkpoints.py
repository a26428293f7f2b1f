"""Checkpoints are verified: sha256 on load (flipped bits refused, never resumed from), fsync before the rename,
orphaned temporary files removed, exploded states never saved, wrong format / architecture / ranks refused clearly."""
import json, os, shutil
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from tvae_nb.recipes import make_experiment
from tvae_nb.checkpoint import CHECKPOINT, CHECKPOINT_FORMAT, _envelope, load_checkpoint, save_checkpoint
from tvae_nb.runner import RunLimit, run_experiment

from conftest import tiny_experiment

torch.set_num_threads(1)


def tiny(steps=6, every=3, **train):
    "A run of a few steps, checkpointed every 3."
    return tiny_experiment(steps=steps, every=every, n_caps=2, cap_dim=4, seq_len=4, L=3, hidden=(16, 16), n_eval=4,
                           **{"kl_warmup": 0, **train})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("ck") / "run"
    cfg = tiny()
    res = run_experiment(cfg, out, progress=False, limit=RunLimit(steps=3))
    return cfg, out, res


def copy_run(out, dst):
    shutil.copytree(out, dst); return dst


def test_checkpoint_stores_a_sha256_of_its_payload(run):
    cfg, out, _ = run
    outer = torch.load(out / CHECKPOINT, weights_only=True)
    assert outer["format"] == CHECKPOINT_FORMAT == 2 and len(outer["sha256"]) == 64
    import hashlib
    assert hashlib.sha256(outer["payload"].numpy().tobytes()).hexdigest() == outer["sha256"]
    assert load_checkpoint(out / CHECKPOINT, cfg)["step"] == 3


@pytest.mark.parametrize("where", [0.3, 0.5, 0.7, 0.9])
def test_a_flipped_bit_is_refused_and_never_resumed_from(run, tmp_path, where):
    cfg, out, _ = run
    dst = copy_run(out, tmp_path / "r")
    b = bytearray((dst / CHECKPOINT).read_bytes())
    b[int(len(b) * where)] ^= 0x04
    (dst / CHECKPOINT).write_bytes(bytes(b))
    with pytest.raises(ValueError, match="corrupted"): load_checkpoint(dst / CHECKPOINT, cfg)
    before = (dst / CHECKPOINT).read_bytes()
    with pytest.raises(ValueError, match="corrupted"): run_experiment(cfg, dst, resume=True, progress=False)
    assert (dst / CHECKPOINT).read_bytes() == before                           # nothing was trained or overwritten


def test_fsync_before_rename(run, tmp_path, monkeypatch):
    cfg, out, res = run
    calls = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (calls.append("replace"), real_replace(a, b))[1])
    opt = torch.optim.SGD(res.model.parameters(), lr=0.1)
    save_checkpoint(tmp_path / CHECKPOINT, cfg, res.model, opt, res.history, 3, [{"rng": {}, "sampler": {}}])
    assert calls[:2] == ["fsync", "replace"] and calls.count("fsync") >= 1
    assert load_checkpoint(tmp_path / CHECKPOINT, cfg)["step"] == 3


def test_orphaned_temporary_files_are_removed(run, tmp_path):
    cfg, out, _ = run
    dst = copy_run(out, tmp_path / "r")
    orphan = dst / f".{CHECKPOINT}.tmp-424242"
    orphan.write_bytes(b"a crash between torch.save and os.replace")
    res = run_experiment(cfg, dst, resume=True, progress=False)
    assert res.finished and not orphan.exists()
    assert not [p.name for p in dst.iterdir() if p.name.startswith(".")]


def test_exploding_state_is_not_checkpointed(tmp_path, capsys):
    "With checkpoint_every=1 and an absurd learning rate, the exploded step-1 weights never become a checkpoint."
    cfg = tiny(steps=3, every=1, lr=1e6, optimizer="sgd", momentum=0.0)
    out = tmp_path / "boom"
    try: run_experiment(cfg, out, progress=False)
    except FloatingPointError: pass                                            # the loss went non-finite: also fine
    text = capsys.readouterr().out
    assert "not checkpointing step 1" in text, text
    if (out / CHECKPOINT).exists():                                            # whatever was saved is a sane state
        ck = load_checkpoint(out / CHECKPOINT, cfg)
        assert all(torch.isfinite(v).all() for v in ck["model"].values())
        assert ck["step"] == 0 or "not checkpointing step %d" % ck["step"] not in text


def test_healthy_run_checkpoints_every_time(tmp_path, capsys):
    cfg = tiny(steps=4, every=1)
    run_experiment(cfg, tmp_path / "ok", progress=False)
    assert "not checkpointing" not in capsys.readouterr().out
    assert load_checkpoint(tmp_path / "ok" / CHECKPOINT, cfg)["step"] == 4


def _rewrite(path, edit):
    "Hand-edit a checkpoint and store it with a valid checksum (what a careful forger would do)."
    d = load_checkpoint(path); edit(d); torch.save(_envelope(d), path)


def test_wrong_architecture_gets_a_clear_error(run, tmp_path):
    cfg, out, _ = run
    dst = copy_run(out, tmp_path / "r")
    def edit(d):
        k = next(k for k in d["model"] if k.endswith("weight"))
        d["model"][k] = torch.zeros(3, 3)
    _rewrite(dst / CHECKPOINT, edit)
    with pytest.raises(ValueError, match=r"does not fit this run's model, optimiser or sampler.*--overwrite"):
        run_experiment(cfg, dst, resume=True, progress=False)


def test_empty_ranks_gets_a_clear_error(run, tmp_path):
    cfg, out, _ = run
    dst = copy_run(out, tmp_path / "r")
    _rewrite(dst / CHECKPOINT, lambda d: d.update(ranks=[]))
    with pytest.raises(ValueError, match=r"ranks must hold one RNG and sampler state per process \(world_size=1\), got 0"):
        run_experiment(cfg, dst, resume=True, progress=False)


def test_wrong_format_gets_a_clear_error(run, tmp_path):
    cfg, out, _ = run
    torch.save({"format": 1, "sha256": "0" * 64, "payload": torch.zeros(4, dtype=torch.uint8)}, tmp_path / "f1.pt")
    with pytest.raises(ValueError, match="has format 1; this tvae_nb reads format 2"): load_checkpoint(tmp_path / "f1.pt")
    old_style = load_checkpoint(out / CHECKPOINT)                               # a format-1 file: the bare dict
    torch.save(old_style, tmp_path / "bare.pt")
    with pytest.raises(ValueError, match=r"not a tvae-nb experiment checkpoint \(missing \['payload', 'sha256'\]\)"):
        load_checkpoint(tmp_path / "bare.pt")


def test_a_live_writers_temporary_file_is_left_alone(tmp_path):
    "Only orphans of dead writers are removed: a save never deletes another live process's file mid-save."
    import subprocess, sys
    from tvae_nb.checkpoint import _orphans
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        mine = tmp_path / f".{CHECKPOINT}.tmp-{live.pid}"; mine.write_bytes(b"being written")
        dead = tmp_path / f".{CHECKPOINT}.tmp-424242"; dead.write_bytes(b"left by a crash")
        assert _orphans(tmp_path / CHECKPOINT) == [dead]
    finally: live.kill(); live.wait()
    assert mine in _orphans(tmp_path / CHECKPOINT)                  # once its writer is gone, it is an orphan
