"""The training step never waits for the host: no `.item()`, `float()` or `bool()` of a tensor inside forward, loss or
the step, for the course's models through `fit` (the non-finite guard reads the losses every `GUARD_EVERY` steps).

A host sync shows up on any device as torch's `aten._local_scalar_dense` (the op behind `.item()`, `float(t)` and
`bool(t)`); a `TorchDispatchMode` counts those calls during training. On a GPU each one makes the CPU wait until the
device has caught up; on this CPU they are cheap, but they are counted the same way.
"""
from dataclasses import replace

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from tvae_nb.evaluation import make_sampler
from tvae_nb.recipes import make_experiment
from tvae_nb.train import GUARD_EVERY, History, NonFiniteGuard, NonFiniteLossError, fit, train
from tvae_nb.tvae import make_model
from tvae_nb.vae import Loss


class CountSyncs(TorchDispatchMode):
    "Count the ops that read a tensor's value on the host."
    def __init__(self):
        super().__init__(); self.n = 0
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func is torch.ops.aten._local_scalar_dense.default: self.n += 1
        return func(*args, **(kwargs or {}))


def _small(name: str):
    cfg = make_experiment(name, "fast")
    m = replace(cfg.model, n_caps=4, cap_dim=6, seq_len=6, L=min(cfg.model.L, 5), hidden=(32, 32))
    return replace(cfg, model=m, seq_len=6, train=replace(cfg.train, steps=GUARD_EVERY + 7, kl_warmup=10))


@pytest.mark.parametrize("name", ["table1-vae", "table1-vae-fb", "table1-tvae-partial", "table1-bubble"])
def test_training_reads_no_tensor_on_the_host(name):
    cfg = _small(name)
    model, sampler = make_model(cfg.model, seed=0), make_sampler(cfg)
    with CountSyncs() as c: h = fit(model, sampler, cfg.train, progress=False)
    assert len(h.values["loss"]) == cfg.train.steps
    assert c.n == 0, f"{name}: {c.n} host reads in {cfg.train.steps} steps"


def test_the_count_sees_a_sync():
    "The counter is not blind: a loss function that reads its value once a step is counted once a step."
    cfg = _small("table1-tvae-partial")
    model, sampler = make_model(cfg.model, seed=0), make_sampler(cfg)
    def reads(m, b, w):
        terms = m.loss(b.x, w); terms.loss.item(); return terms
    with CountSyncs() as c: train(model, sampler, reads, steps=5, callbacks=[])
    assert c.n == 5


class _One(torch.nn.Module):
    def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))


class _Steps:
    def sample(self): return None


def _nan_from(step: int):
    "A loss that is finite until `step`, then NaN."
    calls = []
    def loss(m, b, w):
        calls.append(1)
        s = m.w.sum() * (float("nan") if len(calls) > step else 1.0)
        return Loss(s, s, s)
    return loss


def test_every_step_the_guard_stops_before_the_weights():
    m = _One()
    with pytest.raises(NonFiniteLossError, match="loss is nan at step 7 "):
        train(m, _Steps(), _nan_from(7), steps=20, optimizer=torch.optim.SGD(m.parameters(), lr=0.1), callbacks=[NonFiniteGuard()])
    assert torch.isfinite(m.w).all()


def test_every_n_steps_the_guard_names_the_first_nan_step():
    h = History()
    m = _One()
    with pytest.raises(NonFiniteLossError, match=r"loss is nan at step 7 \(last finite value: \[") as e:
        train(m, _Steps(), _nan_from(7), steps=20, optimizer=torch.optim.SGD(m.parameters(), lr=0.1),
              callbacks=[NonFiniteGuard(every=5)], history=h)
    last = float(str(e.value).split("[")[1].split("]")[0])
    assert last == pytest.approx(1.0 - 6 * 0.1)              # the loss of step 6: w after six steps of gradient 1
    assert len(h.steps) == 10                                 # it read the losses at step 10
    with pytest.raises(NonFiniteLossError, match="at step 2 "):  # and at the end of a run shorter than `every`
        train(_One(), _Steps(), _nan_from(2), steps=3, callbacks=[NonFiniteGuard(every=5)])


def test_a_history_reads_the_device_once_per_flush():
    "Values recorded on the device are the floats `float(t)` gives, in order, whenever they are read."
    h, ref = History(), []
    for i in range(7):
        t = torch.randn(3)
        h.record(i, Loss(t[0], t[1], t[2])); ref.append([float(v) for v in t])
        if i == 3: assert h.values["loss"] == [r[0] for r in ref]          # a read in the middle
    assert h.values["kl"] == [r[2] for r in ref] and h.steps == list(range(7))
    assert History(h.steps, h.values) == History(list(range(7)), {k: list(v) for k, v in h.values.items()})
