"""The evaluation protocol: nulls, estimators, flat capsules and both log-likelihood estimators.

Synthetic codes with known answers, independent of the notebooks: i.i.d. noise has no structure (ratio to its null
about 1), a code that rolls exactly with the frame's phase is perfectly equivariant (ratio about 0), and a code that is
the same in every frame is perfectly invariant (equivariance ratio about 1, invariance ratio about 0).
"""
import math

import pytest
import torch

from tvae_nb.metrics import (FLAT_LIMIT, capsules, equivariance_error, equivariance_metrics, flat_fraction,
                             invariance_error, mix_sequences, shuffle_frames, time_permutations)
from tvae_nb.tvae import TVAEConfig, make_model
from tvae_nb.vae import VAE, log_px_estimates, importance_log_px


class CodeModel(torch.nn.Module):
    "Frame (b, l) of x holds (digit id, phase); its code is a fixed rule of those; `sample=True` adds posterior noise."
    def __init__(self, rule, C=3, D=8, noise=0.02):
        super().__init__()
        self.rule, self.noise_sd = rule, noise
        self.cfg = TVAEConfig(n_caps=C, cap_dim=D, seq_len=D)
        g = torch.Generator().manual_seed(11)
        self.base = torch.randn(200, C, D, generator=g)
        self.table = torch.randn(200, D, C, D, generator=g)

    def encode(self, x, sample=False):
        digit, phase = x[..., 0].long(), x[..., 1].long()
        t = self.rule(self, digit, phase)                                   # (B, S, C, D)
        if sample: t = t + self.noise_sd * torch.randn_like(t)
        return t.flatten(-2)


def loop_rolled(m, digit, phase):
    "Each frame is its digit's pattern rolled by the frame's phase, built with a plain loop."
    B, S = digit.shape
    return torch.stack([torch.stack([torch.roll(m.base[digit[b, l]], int(phase[b, l]), -1) for l in range(S)])
                        for b in range(B)])


RULES = {"noise": lambda m, d, p: m.table[d, p], "rolling": loop_rolled, "invariant": lambda m, d, p: m.base[d],
         "flat": lambda m, d, p: torch.ones_like(m.base[d]) * (1 + d[..., None, None].float())}


def sequences(B=96, S=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    phase = (torch.arange(S) + torch.randint(0, S, (B, 1), generator=g)) % S
    return torch.stack([torch.arange(B)[:, None].expand(B, S), phase], -1)   # (B, S, 2)


@pytest.fixture(scope="module")
def results():
    x = sequences()
    return {name: equivariance_metrics(CodeModel(rule), x) for name, rule in RULES.items()}


@pytest.mark.parametrize("est", ["", "_det"])
@pytest.mark.parametrize("c", ["", "_c"])
def test_noise_scores_one_against_its_null(results, est, c):
    assert abs(results["noise"][f"E_eq{est}{c}_ratio"] - 1) <= 0.1
    assert abs(results["noise"][f"E_inv{est}{c}_ratio"] - 1) <= 0.1


@pytest.mark.parametrize("est", ["", "_det"])
@pytest.mark.parametrize("c", ["", "_c"])
def test_rolling_code_scores_near_zero(results, est, c):
    assert results["rolling"][f"E_eq{est}{c}_ratio"] <= 0.05
    assert results["rolling"][f"E_inv{est}{c}_ratio"] > 0.5              # it is not invariant


@pytest.mark.parametrize("est", ["", "_det"])
@pytest.mark.parametrize("c", ["", "_c"])
def test_invariant_code(results, est, c):
    assert abs(results["invariant"][f"E_eq{est}{c}_ratio"] - 1) <= 0.1
    assert results["invariant"][f"E_inv{est}{c}_ratio"] <= 0.05


def test_all_flat_code_is_flagged_not_scored(results):
    r = results["flat"]
    assert r["flat_det"] == 1.0 and r["flat_det"] >= FLAT_LIMIT
    assert r["E_eq_det"] == 0.0 and r["E_eq_det_c"] == 0.0                  # the raw metric alone would say "perfect"
    assert all(r[k] is None for k in r if k.endswith("_ratio") and "_det" in k)


def test_sample_estimator_is_seeded_and_differs_from_deterministic():
    m, x = CodeModel(RULES["rolling"], noise=0.5), sequences(8)
    a, b = capsules(m, x, "sample", seed=3), capsules(m, x, "sample", seed=3)
    assert torch.equal(a, b) and not torch.equal(a, capsules(m, x, "sample", seed=4))
    assert not torch.allclose(a, capsules(m, x, "deterministic"))
    with pytest.raises(ValueError, match="estimator must be one of"):
        capsules(m, x, "posterior-mean")


def test_noisier_samples_raise_the_sample_ratio_only():
    "Posterior noise hides structure from one sample but not from the deterministic code."
    x = sequences()
    quiet, loud = (equivariance_metrics(CodeModel(loop_rolled, noise=s), x) for s in (0.02, 2.0))
    assert loud["E_eq_c_ratio"] > quiet["E_eq_c_ratio"] + 0.3
    assert math.isclose(loud["E_eq_det_c_ratio"], quiet["E_eq_det_c_ratio"])


def test_nulls():
    x = sequences(10, 6)
    sh = shuffle_frames(x, 0)
    for b in range(10):
        assert sorted(map(tuple, sh[b].tolist())) == sorted(map(tuple, x[b].tolist()))   # same frames
        assert not torch.equal(sh[b], x[b])                                                # other order
    assert torch.equal(shuffle_frames(x, 0), sh) and not torch.equal(shuffle_frames(x, 1), sh)
    perm = time_permutations(50, 2, 0)
    assert (perm == torch.tensor([1, 0])).all()                # with 2 frames the only non-identity order
    mx = mix_sequences(x, 0)
    for b in range(10):
        assert len(set(mx[b, :, 0].tolist())) == 6             # every frame from a different sequence
    assert torch.equal(mx[..., 1], x[mx[..., 0].long(), torch.arange(6)][..., 1])           # at its own phase
    few = mix_sequences(x[:3], 0)                               # fewer sequences than frames: they repeat ...
    assert all((few[b, 1:, 0] != few[b, :-1, 0]).all() for b in range(3))   # ... but never in consecutive frames
    with pytest.raises(ValueError, match="B >= 2"):
        mix_sequences(x[:1])


def test_flat_fraction_and_bad_latents():
    assert flat_fraction(torch.zeros(2, 3, 4, 5)) == 1.0
    assert flat_fraction(torch.randn(2, 3, 4, 5)) == 0.0
    assert equivariance_error(torch.ones(2, 3, 1, 4), centered=True) == 0.0   # why the flat fraction is needed
    for bad in (torch.full((2, 3, 1, 4), float("nan")), torch.full((2, 3, 1, 4), float("inf"))):
        with pytest.raises(ValueError, match="NaN or infinite"):
            equivariance_error(bad)
        with pytest.raises(ValueError, match="NaN or infinite"):
            invariance_error(bad)


# ------------------------------------------------------------------ both log-likelihood estimators
def _models():
    torch.manual_seed(0)
    vae = VAE(n=4, hidden_enc=(16, 16), hidden_dec=(16, 16))
    tvae = make_model(TVAEConfig(n_caps=2, cap_dim=4, seq_len=4, L=3, K=3, hidden=(16, 16), mu_init=2.0), seed=0)
    return vae, tvae


@pytest.mark.parametrize("K", [1, 7, 30])
def test_paper_estimator_is_correct_plus_log_K_for_one_frame(K):
    vae, _ = _models()
    tvae1 = make_model(TVAEConfig(n_caps=2, cap_dim=4, seq_len=1, L=1, K=3, hidden=(16, 16), mu_init=2.0), seed=0)
    for m, x in ((vae, torch.rand(6, 1, 28, 28)), (tvae1, torch.rand(6, 1, 28, 28))):
        torch.manual_seed(2)
        e = log_px_estimates(m, x, n_samples=K, chunk=4)
        torch.testing.assert_close(e.paper, e.log_px + math.log(K), rtol=0, atol=1e-3)


@pytest.mark.parametrize("K", [1, 7, 30])
def test_paper_estimator_is_never_below_the_correct_one(K):
    vae, tvae = _models()
    for m in (vae, tvae):
        torch.manual_seed(3)
        e = log_px_estimates(m, torch.rand(6, 4, 1, 28, 28), n_samples=K)
        assert (e.paper >= e.log_px + math.log(K) - 1e-3).all()


def test_correct_estimator_is_importance_log_px():
    _, tvae = _models()
    x = torch.rand(3, 4, 1, 28, 28)
    torch.manual_seed(4); a = log_px_estimates(tvae, x, n_samples=9, chunk=4).log_px
    torch.manual_seed(4); b = importance_log_px(tvae, x, n_samples=9, chunk=4)
    torch.testing.assert_close(a, b)


def test_paper_estimator_bias_on_an_exact_case():
    "Two independent frames whose per-frame weights are known: the per-frame logsumexp without -log K is biased."
    class Exact(torch.nn.Module):
        def log_weights(self, x, n_samples, per_frame=False):
            K = n_samples
            lw = torch.tensor([[0.0, 2.0], [2.0, 0.0]])[:K, None, :]          # (K, B=1, S=2): sample k good on frame k
            return lw if per_frame else lw.sum(-1)
    e = log_px_estimates(Exact(), torch.zeros(1), n_samples=2)
    assert math.isclose(e.log_px.item(), 2.0)                                     # logmeanexp(2, 2) = 2
    assert math.isclose(e.paper.item(), 2 * math.log(1 + math.exp(2.0)), rel_tol=1e-6)   # 4.25: each frame its best


class _FactorisedGaussian(torch.nn.Module):
    """S independent frames, z_l ~ N(0, 1), x_l | z_l ~ N(a z_l, s^2): p(x) = prod_l N(x_l; 0, a^2 + s^2) exactly.
    The proposal is the true posterior widened by `ps`, so the importance weights are not constant."""
    def __init__(self, a=2.0, s=0.5, ps=2.0): super().__init__(); self.a, self.s, self.ps = a, s, ps
    def exact(self, x): return torch.distributions.Normal(0., math.sqrt(self.a**2 + self.s**2)).log_prob(x).sum(-1)   # (B,)
    def log_weights(self, x, n_samples, per_frame=False):
        v = self.a**2 + self.s**2
        qm, qs = self.a * x / v, self.ps * math.sqrt(self.s**2 / v)                        # (B, S)
        z = qm + qs * torch.randn(n_samples, *x.shape, dtype=x.dtype)                      # (N, B, S)
        N = torch.distributions.Normal
        lw = N(self.a * z, self.s).log_prob(x) + N(0., 1.).log_prob(z) - N(qm, qs).log_prob(z)   # (N, B, S)
        return lw if per_frame else lw.sum(-1)


def test_both_estimators_weights_average_to_the_true_likelihood():
    "Unbiased in p: with many samples, the mean joint weight is p(x_1:S) and each frame's mean weight is p(x_l)."
    torch.manual_seed(0)
    m = _FactorisedGaussian()
    x = torch.tensor([[0.3, -1.0, 1.5]], dtype=torch.float64)                             # (B=1, S=3)
    e = log_px_estimates(m, x, n_samples=200_000, chunk=50_000)
    exact = m.exact(x)
    torch.testing.assert_close(e.log_px, exact, rtol=0, atol=0.05)      # joint
    torch.testing.assert_close(e.per_frame, exact, rtol=0, atol=0.02)   # per frame


def test_per_frame_estimate_is_closer_to_the_truth_on_average():
    "Over many seeds at a small N, the per-frame log-estimate is on average closer to log p(x) than the joint one."
    m = _FactorisedGaussian()
    x = torch.randn(1, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64) * 2   # (B=1, S=6)
    exact = m.exact(x).item()
    err_joint, err_frame = [], []
    for seed in range(200):
        torch.manual_seed(seed)
        e = log_px_estimates(m, x, n_samples=10)
        err_joint.append(abs(e.log_px.item() - exact)); err_frame.append(abs(e.per_frame.item() - exact))
    mj, mf = sum(err_joint) / len(err_joint), sum(err_frame) / len(err_frame)
    assert mf < 0.7 * mj, (mf, mj)
    # and both stay below the truth on average (Jensen), the joint one further
    assert mf > 0 and mj > mf
