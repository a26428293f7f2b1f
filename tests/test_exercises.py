"""Every exercise checker passes a reference solution and fails typical mistakes with a hint; it cannot be gamed: fresh
random inputs on every call, in several shapes, no expected value in a FAIL message, a FAIL when the answer calls the
library function the exercise asks the learner to write, and no reference solution exported by the package."""
import math, os, re, sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from tvae_nb import exercises as ex, exercises_capsules as ex_cap, exercises_lessons as ex_les
from tvae_nb.topography import capsule_energy, ring_energy, torus_energy, student_t_cdf, student_t_latent, TorusTopography
from tvae_nb.metrics import equivariance_error, invariance_error
from tvae_nb.tvae import neighbour_agreement
from tvae_nb.vae import gaussian_kl, log_mean_exp
from tvae_nb.train import kl_warmup
from tvae_nb.data import transform_params
from tvae_nb.dsprites import capsule_offsets, pearson
from tvae_nb.checkpoint import rng_state, set_rng_state
from tvae_nb.vae import log_px_estimates, unit_kl, active_units
from tvae_nb.tvae import latent_diagnostics
from tvae_nb.metrics import shuffle_frames
from tvae_nb.table1 import likelihood_verdict

# ---- reference solutions (the same as in solutions/*.ipynb; none calls a watched library function) ------------------
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
def fft_energy(u2, L, K, shift=True):
    B, S, C, D = u2.shape
    sig, h, k = int(bool(shift)), (L - 1) // 2, (K - 1) // 2
    ker = torch.zeros(S, D, dtype=u2.dtype)
    for dl in range(-h, h + 1):
        for dk in range(-k, k + 1): ker[dl % S, (sig * dl + dk) % D] += 1
    spec = torch.fft.rfft2(u2, dim=(1, 3)) * torch.fft.rfft2(ker)[None, :, None, :].conj()
    return torch.fft.irfft2(spec, s=(S, D), dim=(1, 3)).clamp_min(0)
def loop_energy(u2, L, K, shift=True):                  # right values, no FFT
    sig, h, k = int(bool(shift)), (L - 1) // 2, (K - 1) // 2
    return sum(torch.roll(u2, (-dl, -(sig * dl + dk)), (1, 3)) for dl in range(-h, h + 1) for dk in range(-k, k + 1))
def impulse(S, D, L, K, s, sign=1):
    u2 = torch.zeros(1, S, 1, D); u2[0, 0, 0, 0] = 1
    v = capsule_energy(u2, L, K, s)[0, :, 0]
    return v if sign == 1 else v.flip(1).roll(1, 1)
def open_time(u2, L, K, s=True):
    B, S, C, D = u2.shape
    sig, v = int(bool(s)), torch.zeros_like(u2)
    for dl in range(-(L // 2), L // 2 + 1):
        for k in range(-(K // 2), K // 2 + 1):
            src = torch.roll(u2, shifts=(-dl, -(sig * dl + k)), dims=(1, 3))
            valid = ((torch.arange(S) + dl >= 0) & (torch.arange(S) + dl < S)).to(u2)[:, None, None]
            v = v + valid * src
    return v
def inv_err(t, normalise=True):
    tn = t / t.norm(dim=-1, keepdim=True) if normalise else t
    return 0.5 * sum((torch.roll(tn, s, 1) - tn).abs().sum().item() for s in range(1, t.shape[1])) / t.shape[0]
def eq_err(t, shifts=lambda s: (s, s)):
    tn = t / t.norm(dim=-1, keepdim=True)
    return 0.5 * sum((torch.roll(tn, shifts(s), (1, 3)) - tn).abs().sum().item() for s in range(1, t.shape[1])) / t.shape[0]
def flat(B, S, C, D, noise=1e-4): return torch.ones(B, S, C, D) + noise * torch.randn(B, S, C, D)
def zero_padded_ring(u2, K):
    D = u2.shape[-1]
    return F.conv1d(F.pad(u2.reshape(-1, 1, D), (K // 2, K // 2)), torch.ones(1, 1, K, dtype=u2.dtype)).reshape(u2.shape)
def latent(z, u, mu, W, eps): return (z - mu) / torch.sqrt(W(u ** 2) + eps)
def det_code(e_u2): return lambda mz, mu_u, lu, W, mu, eps: (mz - mu) / torch.sqrt(W(e_u2(mu_u, lu)) + eps)
def agreement(p): return 0.5 * ((p == p.roll(1, 0)).float().mean() + (p == p.roll(1, 1)).float().mean()).item()
def homography(H, p): return (lambda h: h[:, :2] / h[:, 2:])(torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H.T)
def fft_offset(a, b): return int(torch.fft.irfft(torch.fft.rfft(a).conj() * torch.fft.rfft(b), n=len(a)).argmax())
def brute_offset(a, b): return min(range(len(a)), key=lambda s: (torch.roll(a, s) - b).norm().item())
def pearson_r(x, y):
    xc, yc = x - x.mean(), y - y.mean()
    return (xc * yc).sum() / (xc.norm() * yc.norm())
def atomic(obj, path):
    torch.save(obj, f"{path}.tmp"); os.replace(f"{path}.tmp", path)

# the lesson exercises (tvae_nb.exercises_lessons)
def two_estimators(lw, joint_logN=True, frame_logN=1, bias=lambda S, logN: S * logN):
    N, S = lw.shape[0], lw.shape[-1]
    joint = torch.logsumexp(lw.sum(-1), 0) - (math.log(N) if joint_logN else 0)
    frame = torch.logsumexp(lw, 0).sum(-1) - {1: S, 0: 0, "once": 1}[frame_logN] * math.log(N)
    return joint, frame, bias(S, math.log(N))
def collapse_report(mean, logvar, kl_reduce="mean", active="var", used="kl"):
    n = mean.shape[-1]; m = mean.reshape(-1, n)
    kl = (0.5 * (mean ** 2 + logvar.exp() - 1 - logvar)).reshape(-1, n)
    total = {"mean": kl.sum(-1).mean(), "sum": kl.sum(), "units": kl.mean()}[kl_reduce].item()
    act = int({"var": m.var(0), "abs": m.abs().mean(0)}[active].gt(0.01).sum())
    use = act if used == "var" else int((kl.mean(0) > 0.1).sum())
    return total, act, use
def eq_null(t, perm, how="gather", centered=True, invert=False, rule=lambda r: r <= 0.5):
    B = t.shape[0]
    idx = {"gather": perm, "scatter": torch.argsort(perm, 1)}.get(how)
    tn = t[torch.arange(B)[:, None], idx] if idx is not None else t[torch.randperm(B)]       # "batch": whole sequences
    e, n = equivariance_error(t, centered), equivariance_error(tn, centered)
    r = n / e if invert else e / n
    return n, r, rule(r)
def ratio_verdict(v, n, b, m, margin=True, use_ratio=True, invert=False, guard=True):
    if guard and n == 0: return "undecided"
    r = (n / v if invert else v / n) if use_ratio else v
    if not margin: return "supported" if r <= b else "not supported"
    return "supported" if r <= b - m else "not supported" if r > b + m else "undecided"

def paper_phases(start, kind, fixed, S, wrap=True):
    moving = (start[:, None] + torch.arange(S))[..., None]                       # (B, S, 1)
    moving = moving % S if wrap else moving
    return torch.where(F.one_hot(kind, 3)[:, None].bool(), moving, fixed[:, None] % S)
def image_key(x): return bytes((x * 255).round().to(torch.uint8).flatten().numpy())
def shared_images(a, b, distinct=False):
    keys = {image_key(y) for y in b}
    hits = [image_key(x) for x in a if image_key(x) in keys]
    return len(set(hits)) if distinct else len(hits)

REFERENCE = {
    ex.check_clockwise_theta: [[0., 1., 0.], [-1., 0., 0.]],
    ex.check_composed_phase: lambda p, q, S: (p + q) % S,
    ex.check_translation: translation,
    ex.check_paper_phases: paper_phases,
    ex.check_shared_images: shared_images,
    ex.check_kl: lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1),
    ex.check_log_mean_exp: lambda lw: torch.logsumexp(lw, 0) - math.log(lw.shape[0]),
    ex.check_kl_warmup: lambda n: (lambda s: min(1.0, s / n)),
    ex.check_sup_distance: sup_distance,
    ex.check_ring_energy: ring,
    ex.check_plus_energy: plus,
    ex.check_fft_energy: fft_energy,
    ex.check_latent: latent,
    ex.check_deterministic_code: det_code(lambda m, lv: m ** 2 + lv.exp()),
    ex.check_neighbour_agreement: agreement,
    ex.check_impulse_response: impulse,
    ex.check_open_time_energy: open_time,
    ex.check_invariance_error: inv_err,
    ex.check_roll_prediction: lambda t0, k: torch.roll(t0, k, -1),
    ex.check_flat_capsules: flat,
    ex.check_equivariance_error: eq_err,
    ex.check_homography_points: homography,
    ex.check_cycle_angles: lambda S: torch.arange(S) * 360.0 / S,
    ex.check_capsule_offset: fft_offset,
    ex.check_pearson: pearson_r,
    ex.check_atomic_save: atomic,
    ex.check_rng_roundtrip: (torch.get_rng_state, torch.set_rng_state),
    ex.check_two_estimators: two_estimators,
    ex.check_collapse_report: collapse_report,
    ex.check_eq_null: eq_null,
    ex.check_ratio_verdict: ratio_verdict,
    ex.check_capcorr_verdict: lambda c, n, sd: c - n > 2 * sd,
}

# ---- typical mistakes, and a word the hint must contain -------------------------------------------------------------
MISTAKES = [
    (ex.check_kl, lambda mu, lv: -0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(-1), "wrong sign"),
    (ex.check_kl, lambda mu, lv: (mu ** 2 + lv.exp() - 1 - lv).sum(-1), "factor 2"),
    (ex.check_kl, lambda mu, lv: 0.5 * (mu ** 2 + lv.exp() - 1 - lv).sum(), "last dimension"),
    (ex.check_log_mean_exp, lambda lw: torch.logsumexp(lw, 0), "− log N"),
    (ex.check_log_mean_exp, lambda lw: lw.exp().mean(0).log(), "logsumexp"),
    (ex.check_roll_prediction, lambda t0, k: torch.roll(t0, -k, -1), "wrong way"),
    (ex.check_latent, lambda z, u, mu, W, eps: (z - mu) / torch.sqrt(W(u) + eps), "instead of u²"),
    (ex.check_latent, lambda z, u, mu, W, eps: (z + mu) / torch.sqrt(W(u ** 2) + eps), "added μ"),
    (ex.check_latent, lambda z, u, mu, W, eps: (z - mu) / torch.sqrt(W(u ** 2)), "ε is missing"),
    (ex.check_ring_energy, zero_padded_ring, "zero padding"),
    (ex.check_clockwise_theta, [[0., -1., 0.], [1., 0., 0.]], "counter-clockwise"),
    (ex.check_composed_phase, lambda p, q, S: p + q, "% S"),
    (ex.check_translation, lambda x, S: torch.stack([torch.roll(x, l * (x.shape[-1] // S), dims=-2) for l in range(S)], 1), "vertically"),
    (ex.check_translation, lambda x, S: torch.stack([torch.roll(x, l * (x.shape[-1] // S), dims=-1) for l in range(S)], 1), "ValueError"),
    (ex.check_kl_warmup, lambda n: (lambda s: s / n), "clamp"),
    (ex.check_paper_phases, lambda st, k, fx, S: paper_phases(st, k, fx, S, wrap=False), "% S"),
    (ex.check_paper_phases, lambda st, k, fx, S: paper_phases(st, k, fx * 0, S), "fixed"),
    (ex.check_shared_images, lambda a, b: shared_images(a, b, distinct=True), "distinct"),
    (ex.check_shared_images, lambda a, b: shared_images(a, b) + 0.6, "whole number"),
    (ex.check_shared_images, lambda a, b: sum(bool((x.flatten()[0] == b.flatten(1)[:, 0]).any()) for x in a), "every pixel"),
    (ex.check_paper_phases, lambda st, k, fx, S: paper_phases(st, k, fx, S) + 0.9, "integer"),
    # weak inputs: the posterior variance is never 1, so each wrong variance term is caught by name
    (ex.check_deterministic_code, det_code(lambda m, lv: m ** 2), "E_q[u²]"),
    (ex.check_deterministic_code, det_code(lambda m, lv: m ** 2 + (0.5 * lv).exp()), "standard deviation"),
    (ex.check_deterministic_code, det_code(lambda m, lv: m ** 2 + (2 * lv).exp()), "σ_u⁴"),
    (ex.check_deterministic_code, det_code(lambda m, lv: m ** 2 + 1), "added 1"),
    (ex.check_neighbour_agreement, lambda p: 0.5 * ((p[1:] == p[:-1]).float().mean() + (p[:, 1:] == p[:, :-1]).float().mean()).item(), "wrap-around"),
    (ex.check_impulse_response, lambda S, D, L, K, s: impulse(S, D, L, K, s, sign=-1), "wrong way"),
    (ex.check_open_time_energy, capsule_energy, "still wraps"),
    (ex.check_invariance_error, lambda t: inv_err(t, normalise=False), "normalise"),
    (ex.check_invariance_error, lambda t: 2 * inv_err(t), "factor 2"),
    (ex.check_flat_capsules, lambda B, S, C, D: flat(B, S, C, D, noise=0.0), "noise"),
    (ex.check_flat_capsules, lambda B, S, C, D: torch.randn(B, S, C, D), "constant over D"),
    (ex.check_equivariance_error, lambda t: eq_err(t, lambda s: (s, 0)), "only in time"),
    (ex.check_equivariance_error, lambda t: eq_err(t, lambda s: (s, -s)), "wrong way"),
    (ex.check_sup_distance, lambda nu: 0.0, "fine grid"),
    (ex.check_plus_energy, lambda u2: u2, "torch.roll"),
    (ex.check_fft_energy, lambda u2, L, K, s: fft_energy(u2, L, K, not s), "kernel"),
    (ex.check_fft_energy, loop_energy, "no FFT"),
    (ex.check_homography_points, lambda H, p: (torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H.T)[:, :2], "divide by W"),
    (ex.check_homography_points, lambda H, p: (lambda h: h[:, :2] / h[:, 2:])(torch.cat([p, torch.ones(len(p), 1, dtype=p.dtype)], 1) @ H), "transposed"),
    (ex.check_cycle_angles, lambda S: torch.linspace(0, 360, S), "repeats"),
    (ex.check_capsule_offset, lambda a, b: fft_offset(b, a), "other way"),
    (ex.check_pearson, lambda x, y: (x * y).sum() / (x.norm() * y.norm()), "cosine"),
    (ex.check_atomic_save, lambda obj, path: torch.save(obj, path), "os.replace"),
    (ex.check_rng_roundtrip, (lambda: 0, lambda s: torch.manual_seed(s)), "set_rng_state"),
    # the lesson exercises: each classic mistake named in 11c_exercises_lessons is caught by name
    (ex.check_two_estimators, lambda lw: two_estimators(lw, joint_logN=False), "misses − log N"),
    (ex.check_two_estimators, lambda lw: two_estimators(lw, frame_logN=0), "paper code's"),
    (ex.check_two_estimators, lambda lw: two_estimators(lw, frame_logN="once"), "once per sequence"),
    (ex.check_two_estimators, lambda lw: (lambda j, f, b: (f, j, b))(*two_estimators(lw)), "swapped"),
    (ex.check_two_estimators, lambda lw: two_estimators(lw, bias=lambda S, logN: logN), "one frame only"),
    (ex.check_two_estimators, lambda lw: two_estimators(lw, bias=lambda S, logN: -S * logN), "wrong sign"),
    (ex.check_collapse_report, lambda m, lv: collapse_report(m, lv, kl_reduce="sum"), "summed over the examples"),
    (ex.check_collapse_report, lambda m, lv: collapse_report(m, lv, kl_reduce="units"), "averaged over the units"),
    (ex.check_collapse_report, lambda m, lv: collapse_report(m, lv, active="abs"), "the same for every input"),
    (ex.check_collapse_report, lambda m, lv: collapse_report(m, lv, used="var"), "variance of their means"),
    (ex.check_eq_null, lambda t, p: eq_null(t, p, how="batch"), "whole sequences"),
    (ex.check_eq_null, lambda t, p: eq_null(t, p, centered=False), "plain E_eq"),
    (ex.check_eq_null, lambda t, p: eq_null(t, p, how="scatter"), "scattered"),
    (ex.check_eq_null, lambda t, p: eq_null(t, p, invert=True), "upside down"),
    (ex.check_eq_null, lambda t, p: eq_null(t, p, rule=lambda r: r < 1), "just below 1"),
    (ex.check_ratio_verdict, lambda v, n, b, m: ratio_verdict(v, n, b, m, margin=False), "within the margin"),
    (ex.check_ratio_verdict, lambda v, n, b, m: ratio_verdict(v, n, b, m, use_ratio=False), "value itself"),
    (ex.check_ratio_verdict, lambda v, n, b, m: ratio_verdict(v, n, b, m, invert=True), "upside down"),
    (ex.check_ratio_verdict, lambda v, n, b, m: ratio_verdict(v, n, b, m, guard=False), "null of 0"),
    (ex.check_capcorr_verdict, lambda c, n, sd: c > 2 * sd, "on its own"),
    (ex.check_capcorr_verdict, lambda c, n, sd: abs(c - n) > 2 * sd, "below"),
    (ex.check_capcorr_verdict, lambda c, n, sd: c - n > sd, "2 noise sd"),
]

# ---- answers that call the library function the exercise asks the learner to write ----------------------------------
_alias = ring_energy                                                        # reached through another name ...
LIBRARY_CALLS = [
    (ex.check_kl, gaussian_kl, "gaussian_kl"),
    (ex.check_kl, lambda mu, lv: torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * lv).exp()),
                                                                    torch.distributions.Normal(0.0, 1.0)).sum(-1), "kl_divergence"),
    (ex.check_log_mean_exp, lambda lw: log_mean_exp(lw, 0), "log_mean_exp"),
    (ex.check_kl_warmup, kl_warmup, "kl_warmup"),
    (ex.check_ring_energy, ring_energy, "ring_energy"),
    (ex.check_ring_energy, lambda u2, K: (lambda: _alias(u2, K))(), "ring_energy"),               # ... inside a closure
    (ex.check_ring_energy, lambda u2, K: capsule_energy(u2.reshape(-1, 1, 1, u2.shape[-1]), 1, K).reshape(u2.shape), "capsule_energy"),
    (ex.check_fft_energy, capsule_energy, "capsule_energy"),
    (ex.check_latent, lambda z, u, mu, W, eps: student_t_latent(z, W(u ** 2), mu, eps), "student_t_latent"),
    (ex.check_neighbour_agreement, lambda p: neighbour_agreement(p)[0], "neighbour_agreement"),
    (ex.check_invariance_error, invariance_error, "invariance_error"),
    (ex.check_equivariance_error, equivariance_error, "equivariance_error"),
    (ex.check_cycle_angles, lambda S: transform_params("wobble", torch.arange(S), S)["tilt_axis"], "transform_params"),
    (ex.check_capsule_offset, lambda a, b: int(capsule_offsets(torch.stack([a, b])[None, :, None])[0, 1]), "capsule_offsets"),
    (ex.check_pearson, pearson, "pearson"),
    (ex.check_pearson, lambda x, y: torch.corrcoef(torch.stack([x, y]))[0, 1], "corrcoef"),
    (ex.check_pearson, lambda x, y: float(np.corrcoef(x.numpy(), y.numpy())[0, 1]), "corrcoef"),
    (ex.check_rng_roundtrip, (rng_state, set_rng_state), "rng_state"),
    (ex.check_two_estimators, lambda lw: (lambda e: (e.log_px, e.per_frame, lw.shape[-1] * math.log(lw.shape[0])))(
        ex_les._vae._estimates(lw)), "_estimates"),
    (ex.check_two_estimators, lambda lw: (log_mean_exp(lw.sum(-1), 0), log_mean_exp(lw, 0).sum(-1),
                                          lw.shape[-1] * math.log(lw.shape[0])), "log_mean_exp"),
    (ex.check_collapse_report, lambda m, lv: (unit_kl(m, lv).sum().item(), active_units(m), int((unit_kl(m, lv) > 0.1).sum())), "unit_kl"),
    (ex.check_eq_null, lambda t, p: (lambda n: (n, equivariance_error(t, True) / n, equivariance_error(t, True) / n <= 0.5))(
        equivariance_error(shuffle_frames(t), True)), "shuffle_frames"),
    (ex.check_ratio_verdict, lambda v, n, b, m: "undecided" if n == 0 else ratio_verdict(v, ex_les._metrics._ratio(v, n), b, m), "_ratio"),
]

ALL = [c for cs in ex.CHECKERS.values() for c in cs]


def test_every_checker_has_a_reference():
    assert set(ALL) == set(REFERENCE)
    assert all(2 <= len(cs) <= 4 for ch, cs in ex.CHECKERS.items() if ch != "02_vae_training")


def test_no_solution_is_exported():
    "The package exports checkers only: no `*_reference` (or any other) solution a learner could import."
    assert not hasattr(ex, "open_time_energy_reference")
    for mod in (ex, ex_cap, ex_les):
        extra = [n for n in mod.__all__ if not n.startswith("check_") and n not in ("CheckResult", "checker", "CHECKERS", "LESSON_CHECKERS")]
        assert extra == [], (mod.__name__, extra)
        assert not [n for n in dir(mod) if n.endswith("_reference")]


def test_every_chapter_has_a_lesson_exercise():
    "Chapters 02, 04, 05, 06, 07 and 08 each have a checker on their own lesson (null, estimators, collapse, verdicts)."
    for ch in ("02_vae", "04_tvae", "05_temporal_coherence", "06_equivariant_capsules", "07_complex_transforms", "08_dsprites"):
        assert set(ex.CHECKERS[ch]) & set(ex.LESSON_CHECKERS), ch
    assert {c for cs in ex.CHECKERS.values() for c in cs} >= set(ex.LESSON_CHECKERS)


def test_every_checker_is_called_in_its_chapter():
    "Each checker listed for a chapter in `CHECKERS` is called in a code cell of that chapter's notebook (a 'Your turn' cell)."
    for ch, cs in ex.CHECKERS.items():
        code = "\n".join("".join(c["source"]) for c in _json.loads((_ROOT / "nbs" / f"{ch}.ipynb").read_text())["cells"]
                         if c["cell_type"] == "code")
        missing = [c.__name__ for c in cs if not re.search(rf"\b{c.__name__}\(", code)]
        assert not missing, f"{ch} lists {missing} in CHECKERS but never calls them"


def test_every_checker_is_imported_from_tvae_nb_exercises():
    "A chapter imports every checker from `tvae_nb.exercises`, wherever it is defined; unknown names still fail."
    from tvae_nb.exercises import check_eq_null, check_pearson, CHECKERS   # noqa: F401  (defined in the other modules)
    with pytest.raises(AttributeError): ex.no_such_checker
    with pytest.raises(AttributeError): ex.__wrapped__


@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_reference_passes(check, capsys):
    for _ in range(3):                                                       # fresh inputs each time: no lucky draw
        res = check(REFERENCE[check])
        assert res.passed and res.attempted and res.message.startswith("PASS"), res.message
        assert capsys.readouterr().out.strip() == res.message                 # also printed
    assert sys.getprofile() is None                                            # the spy is switched off again


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
    assert sys.getprofile() is None


@pytest.mark.parametrize("check,wrong,hint", MISTAKES, ids=[f"{c.__name__}-{i}" for i, (c, _, _) in enumerate(MISTAKES)])
def test_mistake_fails_with_hint(check, wrong, hint):
    res = check(wrong, verbose=False)
    assert not res.passed and res.message.startswith("FAIL"), res.message
    assert "Hint" in res.message and hint in res.message, res.message


@pytest.mark.parametrize("check,answer,name", LIBRARY_CALLS, ids=[f"{c.__name__}-{n}-{i}" for i, (c, _, n) in enumerate(LIBRARY_CALLS)])
def test_calling_the_library_function_fails(check, answer, name):
    "An answer that calls the function the exercise replaces gets the right values, yet FAILs, naming the call."
    res = check(answer, verbose=False)
    assert not res.passed and f"`{name}`" in res.message and "Hint" in res.message, res.message
    assert sys.getprofile() is None


def test_honest_pass_messages():
    "A brute-force offset search passes, and is not told it used a cross-correlation; the FFT answer is."
    res = ex.check_capsule_offset(brute_offset, verbose=False)
    assert res.passed and "without an FFT" in res.message and "found with an FFT" not in res.message, res.message
    res = ex.check_capsule_offset(fft_offset, verbose=False)
    assert res.passed and "with an FFT" in res.message, res.message


# ---- no hard-coded answer can pass, and FAIL messages never show the expected value --------------------------------
SCALAR = [ex.check_sup_distance, ex.check_neighbour_agreement, ex.check_invariance_error, ex.check_equivariance_error,
          ex.check_pearson, ex.check_capsule_offset, ex.check_log_mean_exp]

def test_the_leaked_numbers_of_the_old_checkers_fail():
    assert not ex.check_invariance_error(lambda t: 55.183, verbose=False)
    assert not ex.check_equivariance_error(lambda t: 50.517, verbose=False)
    r = pearson_r(*(torch.rand(2, 50, dtype=torch.float64)))
    assert not ex.check_pearson(lambda x, y: float(r), verbose=False)


def _perturbed(ans):
    "A slightly wrong version of a reference answer (values scaled by 1.01 and shifted, ints + 1)."
    if callable(ans) and not isinstance(ans, torch.Tensor): return lambda *a, **k: _perturbed(ans(*a, **k))
    if isinstance(ans, (bool, type(None))): return ans
    if isinstance(ans, int): return ans + 1
    if isinstance(ans, (float, list, torch.Tensor)): return torch.as_tensor(ans, dtype=torch.float64) * 1.01 + 0.01
    return ans

def _wrong_answers(check):
    out = [w for c, w, _ in MISTAKES if c is check]
    if check not in (ex.check_rng_roundtrip, ex.check_atomic_save): out.append(_perturbed(REFERENCE[check]))
    if check in SCALAR: out += [lambda *a, **k: 0.0, lambda *a, **k: 1.0]
    return out

NUMBER = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?")

def _leaks(message: str, refs) -> list:
    "Numbers in `message` that show a value in `refs`: to the precision printed (2+ decimals), or rounded (|v| >= 10)."
    found = []
    for tok in NUMBER.findall(message):
        x = float(tok)
        dec = len(tok.split(".")[1]) if "." in tok else 0
        for ref in refs:
            vals = ref.flatten()[:2000]
            if dec >= 2: hit = ((vals - x).abs() <= 0.5 * 10 ** -dec + 1e-12).any()
            elif ref.numel() == 1: hit = bool(((vals - x).abs() <= 0.5).any()) and abs(x) >= 10 and not float(vals).is_integer()
            else: hit = False
            if hit: found.append(tok); break
    return found

@pytest.mark.parametrize("check", ALL, ids=lambda c: c.__name__)
def test_fail_messages_hide_the_expected_value(check, monkeypatch):
    "Record every value a checker compares the answer with, run wrong answers, and scan each FAIL message for them."
    refs = []
    real = ex._close
    def recording_close(a, b, tol=1e-4):
        refs.append(torch.as_tensor(b).detach().double().reshape(-1).clone())
        return real(a, b, tol)
    for mod in (ex, ex_cap, ex_les): monkeypatch.setattr(mod, "_close", recording_close)
    fails = 0
    for wrong in _wrong_answers(check):
        refs.clear()
        res = check(wrong, verbose=False)
        if res.passed: continue
        fails += 1
        assert not re.search(r"expected\s+-?\d", res.message), res.message
        assert not _leaks(res.message, refs), (res.message, _leaks(res.message, refs))
    assert fails >= 1


@pytest.mark.parametrize("check", SCALAR, ids=lambda c: c.__name__)
def test_numbers_in_a_fail_message_do_not_pass(check):
    "Whatever number a FAIL message shows, typing it in as the answer still fails (the inputs are fresh every call)."
    for wrong in _wrong_answers(check):
        res = check(wrong, verbose=False)
        for tok in set(NUMBER.findall(res.message)):
            assert not check(lambda *a, _x=float(tok), **k: _x, verbose=False), (tok, res.message)


class _Recorder:
    "Wraps an answer; remembers the shapes (or values) of the inputs of each call."
    def __init__(self, fn): self.fn, self.calls = fn, []
    def __call__(self, *args, **kwargs):
        self.calls.append(tuple(tuple(a.shape) if isinstance(a, torch.Tensor) else a for a in args
                                if isinstance(a, (torch.Tensor, int, float)) and not isinstance(a, bool)))
        return self.fn(*args, **kwargs)

NO_INPUTS = (ex.check_clockwise_theta, ex.check_rng_roundtrip, ex.check_atomic_save)   # a value; no data; a file
TENSOR_INPUTS = [c for c in ALL if c not in NO_INPUTS + (ex.check_composed_phase, ex.check_cycle_angles,
                 ex.check_sup_distance, ex.check_kl_warmup, ex.check_impulse_response, ex.check_flat_capsules,
                 ex.check_ratio_verdict, ex.check_capcorr_verdict)]           # these two take numbers, not tensors

def _signature(args) -> tuple:
    "Hashable summary of the data an answer was called with: tensors by shape and sum, numbers by value."
    return tuple((tuple(a.shape), round(a.double().sum().item(), 6)) if isinstance(a, torch.Tensor) else a
                 for a in args if isinstance(a, (torch.Tensor, int, float)))

@pytest.mark.parametrize("check", [c for c in ALL if c not in NO_INPUTS + (ex.check_composed_phase,)], ids=lambda c: c.__name__)
def test_fresh_inputs_every_call(check):
    "Calls of a checker feed the answer different inputs (composed_phase is left out: it tries every pair of phases)."
    # Up to 8 calls, stopping at the first that differs: a checker with one random size in [2, 40] repeats itself
    # across 3 calls about once in 1,500 tries (CI saw it), across 8 calls about once in 10^11.
    runs = []
    for _ in range(8):
        sigs, ref = [], REFERENCE[check]
        def answer(*a, **k):
            sigs.append(_signature(a))
            return ref(*a, **k)
        assert check(answer, verbose=False).passed
        runs.append(tuple(sigs))
        if len(set(runs)) > 1: break
    assert len(set(runs)) > 1, f"{len(runs)} calls all fed the answer the same inputs: {runs[0]}"


@pytest.mark.parametrize("check", TENSOR_INPUTS, ids=lambda c: c.__name__)
def test_several_shapes_per_call(check):
    rec = _Recorder(REFERENCE[check])
    assert check(rec, verbose=False).passed
    shapes = {tuple(s for s in call if isinstance(s, tuple)) for call in rec.calls}
    assert len(shapes) >= 2, shapes


def test_checkers_are_immune_to_answers_that_change_their_inputs():
    "A wrong answer that zeroes its inputs in place must fail; a right one written with in-place ops must pass."
    from tvae_nb.exercises import check_kl, check_roll_prediction
    def zeroing_kl(mu, logvar):
        mu.zero_(); logvar.zero_()
        return torch.zeros(mu.shape[:-1])                     # wrong, and equal to the KL of the zeroed inputs
    def inplace_kl(mu, logvar):
        return 0.5 * (mu.pow_(2) + logvar.exp() - 1 - logvar).sum(-1)
    assert not check_kl(zeroing_kl, verbose=False).passed
    assert check_kl(inplace_kl, verbose=False).passed
    def rolling_in_place(t0, k):
        out = torch.roll(t0, k, -1); t0.zero_(); return out
    assert check_roll_prediction(rolling_in_place, verbose=False).passed


# ---- the instructor guide: its plans add up, every Explore question has an answer, the learners' copy has none ------
import json as _json
from pathlib import Path as _Path
_ROOT = _Path(__file__).resolve().parents[1]
_GUIDE = _ROOT / "nbs" / "instructor_guide.ipynb"


def _guide_namespace(monkeypatch) -> dict:
    "Run the guide's code cells (pure Python: timings, word counts, plans) from nbs/, as the notebook does."
    monkeypatch.chdir(_ROOT / "nbs")
    ns = {}
    for c in _json.loads(_GUIDE.read_text())["cells"]:
        if c["cell_type"] == "code": exec("".join(c["source"]), ns)
    return ns


def test_guide_plans_add_up(monkeypatch):
    "Every slot's items fit it, the 90-minute and 3.5-hour plans last that long, and the weeks cover the table's total."
    ns = _guide_namespace(monkeypatch)
    for plan, pre, length in ((ns["PLAN_90"], ns["PRE_90"], 90), (ns["PLAN_WHOLE"], ns["PRE_WHOLE"], 210)):
        assert ns["check_plan"](plan, pre, length)
        assert all(sum(i.minutes for i in s.items) <= s.end - s.start for s in plan)
        heavy_bg = [s for s in plan if s.bg]
        assert all(not any(i.kind == "run" for i in s.items) for s in heavy_bg)        # a background run is alone
    t = ns["timings"]
    total = sum(ns["reading_minutes"](c) + (ns["run_minutes"](t, c) or 0) +
                ns["exercise_minutes"](t, c, ex.CHECKERS, ex.LESSON_CHECKERS) for c in ns["CHAPTERS"])
    assert f"{total} minutes of homework in all" in ns["week_table"](ns["WEEKS"])
    assert f"| **all** |" in ns["time_table"](t, ex.CHECKERS, ex.LESSON_CHECKERS)


def test_guide_answers_every_explore_question():
    "Each notebook's 'Explore: title' questions, and each 'Explore further' question, have an answer paragraph in the guide."
    guide = "\n".join("".join(c["source"]) for c in _json.loads(_GUIDE.read_text())["cells"] if c["cell_type"] == "markdown")
    answers = guide[guide.index("## Answers: the Explore questions"):]
    for nb in sorted((_ROOT / "nbs").glob("[0-9]*.ipynb")):
        text = "\n".join("".join(c["source"]) for c in _json.loads(nb.read_text())["cells"] if c["cell_type"] == "markdown")
        if "Explore further" not in text: continue
        para = re.search(rf"\*\*{re.escape(nb.stem)}\.\*\*(.*?)(?=\n\n\*\*|\Z)", answers, re.S)
        assert para, f"no answers for {nb.stem}"
        for title in re.findall(r"\*\*Explore: ([^*]+?)[.?]\*\*", text):
            assert title.lower().rstrip("?") in para.group(1).lower(), (nb.stem, title)


def test_learners_copy_of_the_guide_has_no_answers():
    sys.path.insert(0, str(_ROOT / "tools"))
    from student_copy import drop_answers
    for c in _json.loads(_GUIDE.read_text())["cells"]:
        s = "".join(c["source"])
        if s.startswith(("## Answers", "## A rubric")):
            cut = drop_answers(s)
            assert cut.splitlines()[0] == s.splitlines()[0] and len(cut) < 200 < len(s)
        elif c["cell_type"] == "markdown": assert drop_answers(s) == s


def test_the_atomic_save_checker_leaves_no_temporary_folder():
    "Each call of check_atomic_save made a folder under the temporary directory and left it there."
    import glob, os, tempfile
    from tvae_nb.exercises import check_atomic_save
    def atomic(obj, path):
        tmp = path + ".tmp"; torch.save(obj, tmp); os.replace(tmp, path)
    before = set(glob.glob(os.path.join(tempfile.gettempdir(), "tvae-nb-check-*")))
    check_atomic_save(atomic); check_atomic_save(lambda obj, path: torch.save(obj, path))
    assert set(glob.glob(os.path.join(tempfile.gettempdir(), "tvae-nb-check-*"))) == before
