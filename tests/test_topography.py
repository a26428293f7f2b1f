"""Independent tests of tvae_nb.topography: window sums vs loops and dense W, equivariance, Student-t, errors."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from tvae_nb.topography import (CapsuleTopography, TorusTopography, capsule_energy, ring_energy, sample_prior,
                                student_t_gsm, student_t_latent, torus_distance, torus_energy)


# ---------------------------------------------------------------- references written from the definitions
def window(n):
    "Offsets of a window of width n: -(n-1)/2 ... (n-1)/2 for odd n, -n/2 ... n/2-1 for even n (the paper code's)."
    return range(-(n // 2), n - n // 2)


def loop_capsule_energy(u2, L, K, shift):
    "v[b,l,c,d] = sum_delta sum_k u2[b, (l+delta) % S, c, (d + sigma*delta + k) % D], element by element."
    B, S, C, D = u2.shape
    v = torch.zeros_like(u2)
    for l in range(S):
        for d in range(D):
            for delta in window(L):
                for k in window(K):
                    v[:, l, :, d] += u2[:, (l + delta) % S, :, (d + int(shift) * delta + k) % D]
    return v


def dense_ring(D, K):
    W = torch.zeros(D, D, dtype=torch.float64)
    for i in range(D):
        for k in range(-(K - 1) // 2, (K - 1) // 2 + 1):
            W[i, (i + k) % D] = 1
    return W


def dense_torus(side, K):
    n = side * side
    W = torch.zeros(n, n, dtype=torch.float64)
    h = (K - 1) // 2
    for r in range(side):
        for c in range(side):
            for a in range(-h, h + 1):
                for b in range(-h, h + 1):
                    W[r * side + c, ((r + a) % side) * side + (c + b) % side] = 1
    return W


def dense_capsule(S, D, L, K, shift):
    "W over one capsule's (S*D) units, frame-major."
    W = torch.zeros(S * D, S * D, dtype=torch.float64)
    for l in range(S):
        for d in range(D):
            for delta in range(-(L - 1) // 2, (L - 1) // 2 + 1):
                for k in range(-(K - 1) // 2, (K - 1) // 2 + 1):
                    W[l * D + d, ((l + delta) % S) * D + (d + int(shift) * delta + k) % D] += 1
    return W


@st.composite
def capsule_case(draw):
    B, S, C, D = (draw(st.integers(1, n)) for n in (3, 7, 3, 7))
    L = 2 * draw(st.integers(0, (S - 1) // 2)) + 1
    K = 2 * draw(st.integers(0, (D - 1) // 2)) + 1
    return B, S, C, D, L, K, draw(st.booleans()), draw(st.integers(0, 2**31 - 1))


# ---------------------------------------------------------------- capsule_energy
@settings(max_examples=60, deadline=None)
@given(capsule_case())
def test_capsule_energy_matches_loop(case):
    B, S, C, D, L, K, shift, seed = case
    u2 = torch.rand(B, S, C, D, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    v = capsule_energy(u2, L, K, shift)
    assert v.shape == u2.shape and v.dtype == torch.float64
    torch.testing.assert_close(v, loop_capsule_energy(u2, L, K, shift), rtol=1e-12, atol=1e-12)
    v32 = capsule_energy(u2.float(), L, K, shift)
    assert v32.dtype == torch.float32
    torch.testing.assert_close(v32.double(), v, rtol=1e-5, atol=0)


@pytest.mark.parametrize("shift", [True, False])
@pytest.mark.parametrize("S,D,L,K", [(5, 4, 3, 3), (6, 3, 5, 1), (4, 7, 1, 5), (7, 2, 7, 1), (6, 5, 4, 2), (6, 4, 6, 3)])
def test_capsule_energy_is_dense_W(S, D, L, K, shift):
    u2 = torch.rand(2, S, 3, D, dtype=torch.float64)
    W = dense_capsule(S, D, L, K, shift)
    flat = u2.permute(0, 2, 1, 3).reshape(2, 3, S * D)                         # (B, C, S*D) frame-major
    ref = (flat @ W.T).reshape(2, 3, S, D).permute(0, 2, 1, 3)
    torch.testing.assert_close(capsule_energy(u2, L, K, shift), ref)


def test_paper_config_and_gradients():
    u2 = torch.rand(8, 18, 18, 18, dtype=torch.float64, requires_grad=True)
    v = capsule_energy(u2, 13, 3, True)
    torch.testing.assert_close(v, loop_capsule_energy(u2.detach(), 13, 3, True))
    g = torch.randn_like(v)
    (v * g).sum().backward()
    # the gradient is W^T g, and W is symmetric (its offsets are centred), so it is the window sum of g
    torch.testing.assert_close(u2.grad, loop_capsule_energy(g, 13, 3, True))
    x = torch.rand(1, 5, 2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a: capsule_energy(a, 3, 3, True), (x,))


def test_roll_equivariance_shift():
    S = D = 18
    b = torch.rand(2, 3, D, dtype=torch.float64)
    u2 = torch.stack([torch.roll(b, l, dims=-1) for l in range(S)], 1)      # u2[:, l+1] = roll(u2[:, l], 1)
    for L in (1, 3, 13, 17):
        v = capsule_energy(u2, L, 3, shift=True)
        for l in range(S):
            torch.testing.assert_close(v[:, (l + 1) % S], torch.roll(v[:, l], 1, dims=-1))
        torch.testing.assert_close(v[:, 0], L * ring_energy(b, 3))
    # without the shift the rolling input is blurred: not L times the ring energy
    assert not torch.allclose(capsule_energy(u2, 13, 3, shift=False)[:, 0], 13 * ring_energy(b, 3))


def test_roll_equivariance_interior_frames_when_D_does_not_divide_S():
    S, D, L = 11, 4, 3
    b = torch.rand(1, 2, D, dtype=torch.float64)
    u2 = torch.stack([torch.roll(b, l, dims=-1) for l in range(S)], 1)
    v = capsule_energy(u2, L, 3, shift=True)
    for l in range(1, S - 2):                                               # windows that do not wrap in time
        torch.testing.assert_close(v[:, l + 1], torch.roll(v[:, l], 1, dims=-1))


@pytest.mark.parametrize("shift", [True, False])
def test_time_invariance(shift):
    u2 = torch.rand(2, 9, 3, 5, dtype=torch.float64)
    v = capsule_energy(u2, 5, 3, shift)
    for s in (1, 4):
        torch.testing.assert_close(capsule_energy(torch.roll(u2, s, dims=1), 5, 3, shift), torch.roll(v, s, dims=1))


def test_special_cases():
    u2 = torch.rand(2, 6, 3, 7, dtype=torch.float64)
    for shift in (True, False):
        torch.testing.assert_close(capsule_energy(u2, 1, 3, shift), ring_energy(u2, 3))
    box_t = sum(torch.roll(u2, -s, dims=1) for s in (-2, -1, 0, 1, 2))
    torch.testing.assert_close(capsule_energy(u2, 5, 3, shift=False), ring_energy(box_t, 3))
    torch.testing.assert_close(capsule_energy(u2, 1, 1), u2)


# ---------------------------------------------------------------- ring and torus
@pytest.mark.parametrize("D,K", [(1, 1), (5, 3), (8, 7), (9, 9), (32, 5)])
def test_ring_energy(D, K):
    u2 = torch.rand(3, 2, D, dtype=torch.float64)
    loop = torch.stack([sum(u2[..., (d + k) % D] for k in range(-(K - 1) // 2, (K - 1) // 2 + 1)) for d in range(D)], -1)
    torch.testing.assert_close(ring_energy(u2, K), loop)
    torch.testing.assert_close(ring_energy(u2, K), u2 @ dense_ring(D, K).T)


@pytest.mark.parametrize("side,K", [(1, 1), (4, 3), (5, 5), (6, 3), (18, 3), (18, 5)])
def test_torus_energy(side, K):
    u2 = torch.rand(3, side * side, dtype=torch.float64)
    W = dense_torus(side, K)
    torch.testing.assert_close(torus_energy(u2, K), u2 @ W.T)
    topo = TorusTopography(side * side, K)
    assert topo.n == side * side and f"n={side * side}" in repr(topo)
    torch.testing.assert_close(topo(u2), u2 @ W.T)
    h = (K - 1) // 2
    assert torch.equal(W > 0, torus_distance(side) <= h)


def test_capsule_topography_reshape():
    topo = CapsuleTopography(3, 5, L=3, K=3, shift=True, seq_len=6)
    assert topo.n == 15 and "L=3" in repr(topo) and "shift=True" in repr(topo)
    u2 = torch.rand(2, 6, 15, dtype=torch.float64)
    torch.testing.assert_close(topo(u2), loop_capsule_energy(u2.view(2, 6, 3, 5), 3, 3, True).reshape(2, 6, 15))
    assert len(list(topo.parameters())) == 0


def test_sample_prior_shapes():
    t = sample_prior(TorusTopography(16, 3), (5,), generator=torch.Generator().manual_seed(0))
    assert t.shape == (5, 16) and torch.isfinite(t).all()
    t = sample_prior(CapsuleTopography(2, 4, L=3), (2, 3), mu=1.0)
    assert t.shape == (2, 3, 8)


# ---------------------------------------------------------------- Student-t
def studentt_cdf_by_quadrature(x, nu):
    "CDF of torch's StudentT(nu) by trapezoidal integration of exp(log_prob) (independent of the library)."
    grid = torch.linspace(0, 200, 400_001, dtype=torch.float64)
    pdf = torch.distributions.StudentT(torch.tensor(float(nu), dtype=torch.float64)).log_prob(grid).exp()
    cum = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum((pdf[1:] + pdf[:-1]) / 2 * (grid[1] - grid[0]), 0)])
    a = torch.from_numpy(__import__("numpy").interp(x.abs().numpy(), grid.numpy(), cum.numpy()))
    return 0.5 + torch.sign(x) * a


def ks(sample, nu):
    x = sample.double().sort().values
    n = len(x)
    F = studentt_cdf_by_quadrature(x, nu)
    i = torch.arange(1, n + 1, dtype=torch.float64)
    return torch.maximum(i / n - F, F - (i - 1) / n).max().item()


@pytest.mark.parametrize("nu", [3, 5])
def test_student_t_gsm_ks(nu):
    n = 20_000
    crit = math.sqrt(-math.log(0.001 / 2) / (2 * n))                         # ~0.0138
    g = torch.Generator().manual_seed(nu)
    t = student_t_gsm(n, nu, g)
    assert t.shape == (n,)
    assert ks(t, nu) < crit
    assert ks(torch.distributions.StudentT(float(nu)).sample((n,)), nu) < crit   # sanity of the reference
    assert ks(torch.randn(n, generator=g), nu) > crit                       # the test can fail


def test_student_t_gsm_args():
    assert student_t_gsm((2, 3), 4).shape == (2, 3)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="nu"):
            student_t_gsm(5, bad)


def test_student_t_latent_gradients_with_zero_energy():
    z = torch.randn(4, 9, requires_grad=True)
    u = torch.zeros(4, 9, requires_grad=True)
    mu = torch.tensor(30.0, requires_grad=True)
    v = torus_energy(u ** 2, 3)
    assert (v == 0).all()
    t = student_t_latent(z, v, mu)
    assert torch.isfinite(t).all()
    t.sum().backward()
    for p in (z, u, mu):
        assert torch.isfinite(p.grad).all()
    torch.testing.assert_close(student_t_latent(z, v + 3.0, 1.0), (z - 1.0) / torch.sqrt(v + 3.0 + 1e-6))
    with pytest.raises(ValueError, match="same shape"):
        student_t_latent(z, v[:, :4], mu)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize("L,K,match", [(0, 3, "L=0"), (-3, 3, "L=-3"), (7, 3, "L=7"), (3.0, 3, "L=3.0"),
                                       (3, 7, "K=7"), (3, 0, "K=0"), (3, None, "K=None")])
def test_capsule_energy_errors(L, K, match):
    with pytest.raises(ValueError, match=match) as e:
        capsule_energy(torch.rand(2, 5, 3, 6), L, K)
    assert "integer with 1 <=" in str(e.value)


@pytest.mark.parametrize("shift", ["false", "no", 0, 1, None])
def test_capsule_energy_shift_must_be_bool(shift):
    with pytest.raises(ValueError, match="shift must be True or False"):
        capsule_energy(torch.rand(2, 5, 3, 6), 3, 3, shift=shift)


@pytest.mark.parametrize("shift", [True, False])
def test_even_window_gradient_is_the_transpose(shift):
    "An even window is not symmetric: the gradient of <g, W u2> is W^T g, checked against the dense matrix."
    S, D, L, K = 6, 5, 4, 2
    W = dense_capsule(S, D, L, K, shift)
    assert not torch.equal(W, W.T)
    u2 = torch.rand(2, S, 3, D, dtype=torch.float64, requires_grad=True)
    g = torch.randn(2, S, 3, D, dtype=torch.float64)
    (capsule_energy(u2, L, K, shift) * g).sum().backward()
    flat = g.permute(0, 2, 1, 3).reshape(2, 3, S * D)
    ref = (flat @ W).reshape(2, 3, S, D).permute(0, 2, 1, 3)                  # W^T g
    torch.testing.assert_close(u2.grad, ref)


def test_full_even_window_counts_every_frame_once():
    "The paper's full MNIST window L = S = 18 sees each frame exactly once: with shift, v rolls by +1 per frame."
    u2 = torch.rand(2, 18, 2, 18, dtype=torch.float64)
    v = capsule_energy(u2, 18, 3, True)
    torch.testing.assert_close(v[:, 1], torch.roll(v[:, 0], 1, dims=-1))
    torch.testing.assert_close(capsule_energy(u2, 18, 1, False), u2.sum(1, keepdim=True).expand_as(u2))


def test_wrong_rank_and_size_errors():
    with pytest.raises(ValueError, match="rank 3"):
        capsule_energy(torch.rand(5, 3, 6), 3, 3)
    with pytest.raises(ValueError, match="n=300 is not a perfect square"):
        TorusTopography(300, 3)
    with pytest.raises(ValueError, match="not a perfect square"):
        torus_energy(torch.rand(2, 10), 3)
    with pytest.raises(ValueError, match="K=4"):
        TorusTopography(324, 4)
    with pytest.raises(ValueError, match="K=21"):
        TorusTopography(324, 21)
    with pytest.raises(ValueError, match="K=5"):
        ring_energy(torch.rand(2, 4), 5)
    with pytest.raises(ValueError, match="latent size mismatch"):
        TorusTopography(324, 3)(torch.rand(2, 300))
    with pytest.raises(ValueError, match="K=19"):
        CapsuleTopography(18, 18, K=19)
    with pytest.raises(ValueError, match="L=0"):
        CapsuleTopography(18, 18, L=0)
    with pytest.raises(ValueError, match="shift must be True or False"):
        CapsuleTopography(18, 18, L=3, shift="false")
    with pytest.raises(ValueError, match="latent size mismatch"):
        CapsuleTopography(18, 18, L=3)(torch.rand(2, 18, 300))
    with pytest.raises(ValueError, match="L=5"):
        CapsuleTopography(2, 3, L=5)(torch.rand(1, 3, 6))                   # L > S found at call time
