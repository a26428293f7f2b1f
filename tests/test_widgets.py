"""Drive the three explorers headlessly: set their controls from code and check what they show."""
import os
os.environ.setdefault("MPLBACKEND", "Agg")
import pytest
import torch
import ipywidgets as widgets

from tvae_nb.data import make_sequences, TRANSFORMS
from tvae_nb.tvae import class_map, TVAEConfig, make_model
from tvae_nb.widgets import roll_explorer, topography_explorer, sequence_viewer, ShiftToy, RollExplorer


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(0)
    x = torch.zeros(6, 1, 28, 28)
    for i in range(6): x[i, 0, 4 + i:20, 6 + 2 * i:10 + 2 * i] = 1.0                  # asymmetric bars
    return (x + 0.1 * torch.rand(6, 1, 28, 28, generator=g)).clamp(0, 1)             # bars on faint noise


def test_roll_explorer_on_exactly_equivariant_toy(images):
    x = ShiftToy.sequences(images[:3], 7)                                          # (3, 7, 1, 28, 28)
    rx = roll_explorer(ShiftToy(), x)
    assert isinstance(rx, widgets.VBox) and isinstance(rx, RollExplorer)
    rx.seq.value = 1
    pngs = {}
    for k in range(7):
        rx.k.value = k
        v = rx.view
        assert v.error < 1e-3, (k, v.error)                                         # the right k: exact
        wrong = [j for j in range(7) if j != k]
        assert all(v.errors[j] > v.error + 1 for j in wrong)                        # any wrong k: larger
        assert torch.equal(v.true, x[1, k])
        pngs[k] = rx.image.value
        assert f"k = {k}" in rx.info.value and f"closest to frame {k}" in rx.info.value
    assert len(set(pngs.values())) == 7                                             # the image changes with k


def test_roll_explorer_runs_on_a_tvae():
    cfg = TVAEConfig(n_caps=2, cap_dim=4, seq_len=4, L=3, K=3, mu_init=10.0, hidden=(16, 16))
    x = torch.rand(2, 4, 1, 28, 28)
    rx = roll_explorer(make_model(cfg, seed=0), x)
    rx.k.value = 2
    assert rx.view.pred.shape == (1, 28, 28) and rx.view.errors.shape == (4,)


def test_topography_explorer_follows_class_map():
    side, N = 4, 400
    g = torch.Generator().manual_seed(1)
    labels = torch.randint(0, 10, (N,), generator=g)
    planted = torch.arange(side * side) % 10
    acts = (planted[None] == labels[:, None]).float() + 0.2 * torch.randn(N, side * side, generator=g)
    imgs = torch.rand(N, 1, 28, 28, generator=g)
    cm = class_map(acts, labels)
    tx = topography_explorer(acts, labels, imgs, n_top=5)
    seen = set()
    for r in range(side):
        for c in range(side):
            tx.row.value, tx.col.value = r, c
            v = tx.view
            assert v.unit == r * side + c
            assert v.preferred == int(cm.preferred[r, c]) == int(planted[r * side + c])
            assert torch.equal(v.tuning, cm.tuning[:, r * side + c])
            assert len(v.top) == 5 and (labels[v.top] == v.preferred).all()
            assert f"prefers class {v.preferred}" in tx.info.value
            seen.add(tx.image.value)
    assert len(seen) == side * side


def test_sequence_viewer(images):
    sv = sequence_viewer(images)
    for t in ("rotation", "scale"):
        sv.transform.value = t
        for p in (0, 3, 17):
            sv.phase.value = p
            ref = make_sequences(images[:1], t, 18, start=p)[0]
            assert torch.equal(sv.view.frames[0], ref[0]) and torch.equal(sv.view.frames, ref)
    sv.digit.value, sv.phase.value = 2, 4
    before = (sv.view.frames.clone(), sv.image.value)
    sv.transform.value = "wobble"
    assert not torch.equal(sv.view.frames, before[0]) and sv.image.value != before[1]
    assert set(sv.transform.options) == set(TRANSFORMS)
    sv.seq_len.value = 5
    assert sv.phase.max == 4 and sv.view.frames.shape[0] == 5 and sv.view.phases.tolist() == [4, 0, 1, 2, 3]
