"""Every exercise checker passes a reference solution and fails typical mistakes with a hint."""
import math

import pytest
import torch
import torch.nn.functional as F

from tvae_nb import exercises as ex
from tvae_nb.topography import capsule_energy, ring_energy, student_t_cdf
from tvae_nb.metrics import equivariance_error, invariance_error
from tvae_nb.tvae import neighbour_agreement

# ---- reference solutions (the same as in solutions/*.ipynb) -------------------------------------------------------
def translation(images, S):
    W = images.shape[-1]
    if W % S: raise ValueError("S must divide W")
    return torch.stack([torch.roll(images, l * (W // S), dims=-1) for l in range(S)], 1)

XS = torch.linspace(-10, 10, 20001, dtype=torch.float64)
def sup_distance(nu): return (student_t_cdf(XS, nu) - 0.5 * (1 + torch.erf(XS / math.sqrt(2)))).abs().max().item()
def ring(u2, K): return sum(torch.roll(u2, -k, dims=-1) for k in range(-(K // 2), K // 2 + 1))
def plus(u2):
    x = u2.reshape(*u2.shape[:-1], 6, 6)
    return (x + x.roll(1, -1) + x.roll(-1, -1) + x.roll(1, -2) + x.roll(-1, -2)).reshape(u2.shape)
def impulse(S, D, L, K, s, sign=1):
    u2 = torch.zeros(1, S, 1, D); u2[0, 0, 0, 0] = 1
    v = capsule_energy(u2, L, K, s)[0, :, 0]
    return v if sign == 1 else v.flip(1).roll(1, 1)
def inv_err(t, normalise=True):
    tn = t / t.norm(dim=-1, keepdim=True) if normalise else t
    return 0.5 * sum((torch.roll(tn, s, 1) - tn).abs().sum().item() for s in range(1, t.shape[1])) / t.shape[0]
def eq_err(t, shifts=lambda s: (s, s)):
    tn = t / t.norm(dim=-1, keepdim=True)
    return 0.5 * sum((torch.roll(tn, shifts(s), (1, 3)) - tn).abs().sum().item() for s in range(1, t.shape[1])) / t.shape[0]
def flat(B, S, C, D, noise=1e-4): return torch.ones(B, S, C, D) + noise * torch.randn(B, S, C, D, generator=torch.Generator().manual_seed(0))
def zero_padded_ring(u2, K): return F.conv1d(F.pad(u2[:, None], (K // 2, K // 2)), torch.ones(1, 1, K, dtype=u2.dtype))[:, 0]

REFERENCE = {
    ex.check_clockwise_theta: [[0., 1., 0.], [-1., 0., 0.]],
    ex.check_composed_phase: lambda p, q, S: (p + q) % S,
    ex.check_translation: translation,
    ex.check_kl: lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1),
    ex.check_log_mean_exp: lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0]),
    ex.check_kl_warmup: lambda n: (lambda s: min(1.0, s / n)),
    ex.check_sup_distance: sup_distance,
    ex.check_ring_energy: ring,
    ex.check_plus_energy: plus,
    ex.check_fft_energy: capsule_energy,
    ex.check_latent: lambda z, u, mu, W, eps: (z - mu) / torch.sqrt(W(u ** 2) + eps),
    ex.check_deterministic_code: lambda mz, mu_u, lu, W, mu, eps: (mz - mu) / torch.sqrt(W(mu_u ** 2 + lu.exp()) + eps),
    ex.check_neighbour_agreement: lambda p: 0.5 * ((p == p.roll(1, 0)).float().mean() + (p == p.roll(1, 1)).float().mean()).item(),
    ex.check_impulse_response: impulse,
    ex.check_open_time_energy: ex.open_time_energy_reference,
    ex.check_invariance_error: inv_err,
    ex.check_roll_prediction: lambda t0, k: torch.roll(t0, k, -1),
    ex.check_flat_capsules: flat,
    ex.check_equivariance_error: eq_err,
    ex.check_homography_points: lambda H, p: (lambda h: h[:, :2] / h[:, 2:])(torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H.T),
    ex.check_cycle_angles: lambda S: torch.arange(S) * 360.0 / S,
    ex.check_capsule_offset: lambda a, b: int(torch.fft.irfft(torch.fft.rfft(a).conj() * torch.fft.rfft(b), n=len(a)).argmax()),
    ex.check_pearson: lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1],
    ex.check_atomic_save: lambda obj, path: (torch.save(obj, f"{path}.tmp"), __import__("os").replace(f"{path}.tmp", path)),
    ex.check_rng_roundtrip: (torch.get_rng_state, torch.set_rng_state),
}

# ---- typical mistakes, and a word the hint must contain -------------------------------------------------------------
MISTAKES = [
    (ex.check_kl, lambda mu, lv: -0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1), "wrong sign"),
    (ex.check_kl, lambda mu, lv: (mu ** 2 + lv.exp() - 1 - lv).sum(-1), "factor 2"),
    (ex.check_log_mean_exp, lambda lw: torch.logsumexp(lw, 0), "− log K"),
    (ex.check_log_mean_exp, lambda lw: lw.exp().mean(0).log(), "logsumexp"),
    (ex.check_roll_prediction, lambda t0, k: torch.roll(t0, -k, -1), "wrong way"),
    (ex.check_latent, lambda z, u, mu, W, eps: (z - mu) / torch.sqrt(W(u) + eps), "instead of u²"),
    (ex.check_ring_energy, zero_padded_ring, "zero padding"),
    (ex.check_clockwise_theta, [[0., -1., 0.], [1., 0., 0.]], "counter-clockwise"),
    (ex.check_composed_phase, lambda p, q, S: p + q, "% S"),
    (ex.check_translation, lambda x, S: torch.stack([torch.roll(x, l * (28 // S), dims=-2) for l in range(S)], 1), "vertically"),
    (ex.check_translation, lambda x, S: torch.stack([torch.roll(x, l * (28 // S), dims=-1) for l in range(S)], 1), "ValueError"),
    (ex.check_kl_warmup, lambda n: (lambda s: s / n), "clamp"),
    (ex.check_deterministic_code, lambda mz, mu_u, lu, W, mu, eps: (mz - mu) / torch.sqrt(W(mu_u ** 2) + eps), "E_q[u²]"),
    (ex.check_neighbour_agreement, lambda p: 0.5 * ((p[1:] == p[:-1]).float().mean() + (p[:, 1:] == p[:, :-1]).float().mean()).item(), "wrap-around"),
    (ex.check_impulse_response, lambda S, D, L, K, s: impulse(S, D, L, K, s, sign=-1), "wrong way"),
    (ex.check_open_time_energy, capsule_energy, "still wraps"),
    (ex.check_invariance_error, lambda t: inv_err(t, normalise=False), "normalise"),
    (ex.check_flat_capsules, lambda B, S, C, D: flat(B, S, C, D, noise=0.0), "noise"),
    (ex.check_flat_capsules, lambda B, S, C, D: torch.randn(B, S, C, D), "constant over D"),
    (ex.check_equivariance_error, lambda t: eq_err(t, lambda s: (s, 0)), "only in time"),
    (ex.check_equivariance_error, lambda t: eq_err(t, lambda s: (s, -s)), "wrong way"),
    (ex.check_sup_distance, lambda nu: 0.0, "fine grid"),
    (ex.check_plus_energy, lambda u2: u2, "torch.roll"),
    (ex.check_fft_energy, lambda u2, L, K, s: capsule_energy(u2, L, K, not s), "kernel"),
    (ex.check_homography_points, lambda H, p: (torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H.T)[:, :2], "divide by W"),
    (ex.check_homography_points, lambda H, p: (lambda h: h[:, :2] / h[:, 2:])(torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H), "transposed"),
    (ex.check_cycle_angles, lambda S: torch.linspace(0, 360, S), "repeats"),
    (ex.check_capsule_offset, lambda a, b: int(torch.fft.irfft(torch.fft.rfft(b).conj() * torch.fft.rfft(a), n=len(a)).argmax()), "other way"),
    (ex.check_pearson, lambda x, y: (x * y).sum() / (x.norm() * y.norm()), "cosine"),
    (ex.check_atomic_save, lambda obj, path: torch.save(obj, path), "os.replace"),
    (ex.check_rng_roundtrip, (lambda: 0, lambda s: torch.manual_seed(s)), "set_rng_state"),
]

ALL = [c for cs in ex.CHECKERS.values() for c in cs]


def test_every_checker_has_a_reference():
    assert set(ALL) == set(REFERENCE)
    assert all(2 <= len(cs) <= 4 for ch, cs in ex.CHECKERS.items() if ch != "02_vae_training")


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_reference_passes(check, capsys):
    res = check(REFERENCE[check])
    assert res.passed and res.attempted and res.message.startswith("PASS"), res.message
    assert capsys.readouterr().out.strip() == res.message                     # also printed


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_not_attempted(check):
    res = check(None, verbose=False)
    assert not res.passed and not res.attempted and res.message.startswith("NOT ATTEMPTED")


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_exception_is_a_fail(check):
    if check is ex.check_clockwise_theta: pytest.skip("its answer is a value, not a function")
    def broken(*a, **k): raise RuntimeError("boom")
    res = check((broken, broken) if check is ex.check_rng_roundtrip else broken, verbose=False)
    assert not res.passed and res.attempted and "RuntimeError: boom" in res.message


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_mistake_fails_with_hint(check, wrong, hint):
    res = check(wrong, verbose=False)
    assert not res.passed and res.message.startswith("FAIL"), res.message
    assert "Hint" in res.message and hint in res.message, res.message
