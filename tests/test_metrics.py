"""Independent tests of the equivariance/invariance metrics, roll traversals and the TVAE model."""
import math
from dataclasses import replace

import pytest
import torch
from hypothesis import given, settings, strategies as st

from tvae_nb.table1 import table1_setup
from tvae_nb.metrics import (capsules, equivariance_error, evaluate, evaluate_floor, invariance_error, roll_predictions,
                             roll_traversal)
from tvae_nb.tvae import TVAEConfig, make_model
from tvae_nb.topography import capsule_energy


def naive_eeq(t, centered=False, shift=True):
    B, S, C, D = t.shape
    total = 0.0
    for b in range(B):
        for c in range(C):
            caps = []
            for l in range(S):
                v = t[b, l, c].double()
                if centered: v = v - v.mean()
                caps.append(v / v.norm())
            for s in range(1, S):
                for l in range(S):
                    a = torch.roll(caps[l], s) if shift else caps[l]
                    total += (a - caps[(l + s) % S]).abs().sum().item()
    return 0.5 * total / B


@settings(max_examples=15, deadline=None)
@given(B=st.integers(1, 3), S=st.integers(2, 6), C=st.integers(1, 3), D=st.integers(2, 6), centered=st.booleans(),
       seed=st.integers(0, 1000))
def test_metrics_match_naive_loops(B, S, C, D, centered, seed):
    t = torch.randn(B, S, C, D, generator=torch.Generator().manual_seed(seed))
    assert math.isclose(equivariance_error(t, centered), naive_eeq(t, centered), rel_tol=1e-4, abs_tol=1e-4)
    assert math.isclose(invariance_error(t, centered), naive_eeq(t, centered, shift=False), rel_tol=1e-4, abs_tol=1e-4)


def test_perfectly_equivariant_code_scores_zero_and_wrong_direction_does_not():
    base = torch.randn(4, 3, 8)
    eq = torch.stack([torch.roll(base, l, -1) for l in range(8)], 1)          # (B, S, C, D): +1 per frame
    rev = torch.stack([torch.roll(base, -l, -1) for l in range(8)], 1)
    rnd = torch.randn(4, 8, 3, 8)
    assert equivariance_error(eq) < 1e-4 and equivariance_error(eq, True) < 1e-4
    assert equivariance_error(rev, True) > 0.5 * equivariance_error(rnd, True)


def test_flat_capsules_fool_plain_but_not_centered():
    flat = 1 + 1e-3 * torch.randn(4, 8, 3, 8)
    rnd = torch.randn(4, 8, 3, 8)
    assert equivariance_error(flat) < 0.01 * equivariance_error(rnd)
    assert equivariance_error(flat, True) > 0.5 * equivariance_error(rnd, True)


def test_invariant_code():
    inv = torch.randn(2, 1, 3, 6).expand(2, 5, 3, 6)
    assert invariance_error(inv) < 1e-4 and equivariance_error(inv, True) > 1


@pytest.mark.parametrize("bad,match", [(torch.randn(2, 6, 18), r"t must be a tensor of shape \(B, S, C, D\).*got \(2, 6, 18\)"),
                                       (torch.randn(2, 1, 3, 6), r"at least 2 frames \(S >= 2\); got shape \(2, 1, 3, 6\)"),
                                       ([1, 2], r"t must be a tensor of shape \(B, S, C, D\).*got list")])
def test_metric_input_errors(bad, match):
    for f in (equivariance_error, invariance_error):
        with pytest.raises(ValueError, match=match):
            f(bad)


class RollingToy(torch.nn.Module):
    """A model whose code of frame k is exactly frame 0's code rolled by k, decoding through a fixed dictionary."""
    def __init__(self, C=2, D=6):
        super().__init__()
        self.cfg = TVAEConfig(n_caps=C, cap_dim=D, seq_len=D, L=1, K=1, hidden=(8, 8))
        g = torch.Generator().manual_seed(0)
        self.atoms = torch.randn(C * D, 1 * 6 * 6, generator=g)
    def decode(self, t):
        return (t @ self.atoms).reshape(*t.shape[:-1], 1, 6, 6) * 3
    def encode_static(self, x0):
        return x0.new_zeros(len(x0), self.cfg.n) + self.code0
    def sequence(self, B=3):
        g = torch.Generator().manual_seed(1)
        self.code0 = torch.randn(self.cfg.n, generator=g)
        C, D = self.cfg.n_caps, self.cfg.cap_dim
        codes = torch.stack([torch.roll(self.code0.reshape(C, D), k, -1).reshape(-1) for k in range(D)])
        return torch.sigmoid(self.decode(codes))[None].expand(B, D, 1, 6, 6).contiguous()


def test_roll_traversal_prefers_the_right_direction():
    toy = RollingToy()
    x = toy.sequence()
    rt = roll_traversal(toy, x)
    assert rt.mean_roll < 1e-8 < rt.mean_no_roll
    pred_wrong = roll_predictions(toy, x[:, 0], [-1])[:, 0]
    assert (pred_wrong - x[:, 1]).square().sum() > 1e-3


def test_tvae_untrained_metrics_and_floor_match_the_definition():
    "E_eq of `evaluate` and of `evaluate_floor` is the naive E_eq of the deterministic code built from the encoders."
    cfg = TVAEConfig(n_caps=2, cap_dim=6, seq_len=6, L=3, K=3, hidden=(16, 16))
    x = torch.rand(3, 6, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    def by_hand(m):
        with torch.no_grad():
            mz, _ = m.z_encoder(x); mu_, lu = m.u_encoder(x)                          # (B, S, n)
            v = capsule_energy((mu_.square() + lu.exp()).reshape(3, 6, 2, 6), 3, 3, True)
            return (mz.reshape(3, 6, 2, 6) - m.mu) / torch.sqrt(v + 1e-6)             # (B, S, C, D)
    m = make_model(cfg, seed=0)
    t = capsules(m, x)
    assert t.shape == (3, 6, 2, 6) and torch.allclose(t, by_hand(m), atol=1e-5)
    r = evaluate(m, x, n_is=2)
    assert math.isfinite(r["log_px"]) and r["log_px"] < 0
    assert math.isclose(r["E_eq_det"], naive_eeq(by_hand(m)), rel_tol=1e-4)               # the deterministic code
    assert math.isclose(r["E_eq_det_c"], naive_eeq(by_hand(m), centered=True), rel_tol=1e-4)
    floor0, floor1 = evaluate_floor(cfg, x, seed=0), evaluate_floor(cfg, x, seed=1)
    assert math.isclose(floor0["E_eq_det"], naive_eeq(by_hand(make_model(cfg, seed=0))), rel_tol=1e-4)
    assert math.isclose(floor1["E_eq_det"], naive_eeq(by_hand(make_model(cfg, seed=1))), rel_tol=1e-4)
    assert not math.isclose(floor0["E_eq_det"], floor1["E_eq_det"], rel_tol=1e-4)          # the seed is used


def test_tvae_latent_is_the_formula():
    cfg = TVAEConfig(n_caps=2, cap_dim=6, seq_len=5, L=3, K=3, shift=False, mu_init=7.0, hidden=(16, 16))
    m = make_model(cfg, seed=0)
    z, u = torch.randn(4, 5, 12), torch.randn(4, 5, 12)
    v = capsule_energy(u.square().reshape(4, 5, 2, 6), 3, 3, shift=False).reshape(4, 5, 12)
    assert torch.allclose(m.latent(z, u), (z - 7.0) / torch.sqrt(v + 1e-6), atol=1e-5)


# log_weights, the loss, encode and encode_static are pinned against written-out formulas in test_tvae_maths.py


@pytest.mark.parametrize("kw,match", [
    (dict(L=0), "TVAEConfig.L=0"), (dict(topography="torus", n_caps=6, cap_dim=6, seq_len=1, K=2), "TVAEConfig.K=2"),
    (dict(L=19), "L <= seq_len"), (dict(K=19), "K <= cap_dim"), (dict(model="gan"), "model"),
    (dict(topography="sphere"), "topography"), (dict(n_caps=0), "n_caps"), (dict(eps=0.0), "eps"),
])
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        TVAEConfig(**kw)


def test_table1_setup_rows():
    for budget in ("fast", "quick", "paper"):
        s = table1_setup(budget)
        names = list(s["models"])
        assert names[:2] == ["VAE", "VAE + free bits"] and any("Bubble" in n for n in names) and sum("TVAE" in n for n in names) == 4
        assert s["models"]["TVAE short L"].L <= s["models"]["TVAE partial L"].L     # equal only at the tiny fast budget
        if budget != "fast": assert s["models"]["TVAE short L"].L < s["models"]["TVAE partial L"].L
        assert s["models"]["Bubble"].shift is False and s["models"]["TVAE full L"].L >= s["models"]["TVAE full L"].seq_len - 1
    p = table1_setup("paper")
    assert p["train"].optimizer == "sgd" and p["train"].lr == 1e-4 / 18 and p["train"].batch_size == 8   # the per-frame lr 1e-4, per sequence
    assert p["models"]["TVAE partial L"].L == 13 and p["models"]["TVAE full L"].L == 18      # the paper code's windows
