"""The TVAE's maths pinned by references written out here, independently of the library's helpers.

Everything runs on tiny models (frames of 1 x 4 x 4 pixels, a few latent units) in float64, so a per-sample
formula with explicit loops is cheap. Each test names the definition it checks:

- `log_weights`: log p(x|t) + log p(z) + log p(u) - log q(z|x) - log q(u|x), summed over frames, per joint sample;
- the loss: recon = -E_q log p(x|t), KL(q(z|x) || p(z)) and KL(q(u|x) || p(u)), against Monte Carlo estimates, and
  -loss = E_q[log weight] (the ELBO);
- `encode`: t = (E_q z - mu) / sqrt(W E_q[u²] + eps) with E_q[u²] = mu_u² + sigma_u²;
- `encode_static`: on a perfectly equivariant sequence it equals `encode` on frame 0.
"""
import math

import pytest
import torch

from tvae_nb.tvae import TVAEConfig, make_model

X_SHAPE = (1, 4, 4)


# ---------------------------------------------------------------- references written from the definitions
def window(n):
    "Centred offsets of a window of odd width n."
    return range(-(n - 1) // 2, (n - 1) // 2 + 1)


def ref_energy(u2, cfg):
    "v = W u² for u2 (B, S, n), element by element from the definition (capsules over time, or a 2-D torus)."
    B, S, n = u2.shape
    v = torch.zeros_like(u2)
    if cfg.topography == "torus":
        side = cfg.n_caps
        for i in range(side):
            for j in range(side):
                for a in window(cfg.K):
                    for b in window(cfg.K):
                        v[..., i * side + j] += u2[..., ((i + a) % side) * side + (j + b) % side]
        return v
    C, D, sigma = cfg.n_caps, cfg.cap_dim, int(cfg.shift)
    for l in range(S):
        for c in range(C):
            for d in range(D):
                for delta in window(cfg.L):
                    for k in window(cfg.K):
                        v[:, l, c * D + d] += u2[:, (l + delta) % S, c * D + (d + sigma * delta + k) % D]
    return v


def log_normal(x, mean, var):
    "log N(x; mean, var) summed over the last dimension, from the density."
    return (-0.5 * math.log(2 * math.pi) - 0.5 * torch.log(var) - (x - mean) ** 2 / (2 * var)).sum(-1)


def log_bernoulli(logits, x):
    "sum over pixels of x log sigmoid(a) + (1 - x) log(1 - sigmoid(a))."
    p = torch.sigmoid(logits)
    return (x * torch.log(p) + (1 - x) * torch.log1p(-p)).flatten(-3).sum(-1)


def kl_normal(mean, var):
    "KL(N(mean, var) || N(0, 1)) summed over the last dimension, in closed form."
    return 0.5 * (mean ** 2 + var - 1 - torch.log(var)).sum(-1)


def tiny(seed=0, **kw):
    "A tiny TVAE in float64 with fixed (seeded) weights; its encoders' log-variances are pulled into a sane range."
    base = dict(n_caps=2, cap_dim=3, seq_len=3, L=3, K=3, mu_init=2.0, x_shape=X_SHAPE, hidden=(6, 5))
    cfg = TVAEConfig(**{**base, **kw})
    m = make_model(cfg, seed=seed).double().eval()
    with torch.no_grad():                                       # fixed weights: shrink so variances stay near 1
        for p in m.parameters(): p.mul_(0.5)
        m.mu.fill_(cfg.mu_init)
    return m


def data(B, S, seed=1):
    g = torch.Generator().manual_seed(seed)
    shape = (B, *X_SHAPE) if S is None else (B, S, *X_SHAPE)
    return torch.rand(shape, generator=g, dtype=torch.float64)


# ---------------------------------------------------------------- log_weights
@pytest.mark.parametrize("kw", [dict(), dict(shift=False), dict(L=1, K=1),
                                dict(topography="torus", n_caps=3, cap_dim=3, seq_len=1, L=1, K=3)])
def test_log_weights_match_per_sample_formula(kw):
    m = tiny(**kw)
    cfg = m.cfg
    S = cfg.seq_len
    x = data(2, S if S > 1 else None)
    K = 3
    torch.manual_seed(7)
    lw = m.log_weights(x, K)                                                      # (K, B)
    xs = x if S > 1 else x[:, None]                                               # (B, S, C, H, W)
    B = xs.shape[0]
    # the same noise, drawn in the same order (z first, then u), then every sample computed on its own
    torch.manual_seed(7)
    ez = torch.randn(K, B, S, cfg.n, dtype=torch.float64)
    eu = torch.randn(K, B, S, cfg.n, dtype=torch.float64)
    with torch.no_grad():
        mz, lz = m.z_encoder(xs); mu_, lu = m.u_encoder(xs)
        ref = torch.zeros(K, B, dtype=torch.float64)
        for k in range(K):
            for b in range(B):
                z = mz[b] + lz[b].exp().sqrt() * ez[k, b]                         # (S, n)
                u = mu_[b] + lu[b].exp().sqrt() * eu[k, b]
                v = ref_energy(u[None] ** 2, cfg)[0]
                t = (z - cfg.mu_init) / torch.sqrt(v + cfg.eps)
                total = 0.0
                for l in range(S):
                    total += (log_bernoulli(m.decoder(t[l]), xs[b, l])
                              + log_normal(z[l], 0.0, torch.ones(cfg.n, dtype=torch.float64))
                              + log_normal(u[l], 0.0, torch.ones(cfg.n, dtype=torch.float64))
                              - log_normal(z[l], mz[b, l], lz[b, l].exp())
                              - log_normal(u[l], mu_[b, l], lu[b, l].exp()))
                ref[k, b] = total
    assert lw.shape == (K, B)
    assert torch.allclose(lw, ref, rtol=1e-9, atol=1e-8), (lw, ref)


def test_log_weights_noise_is_used():
    "Two calls draw different samples (the estimate is random), and the same seed gives the same weights."
    m, x = tiny(), data(2, 3)
    torch.manual_seed(0); a = m.log_weights(x, 4)
    torch.manual_seed(0); b = m.log_weights(x, 4)
    c = m.log_weights(x, 4)
    assert torch.equal(a, b) and not torch.allclose(a, c)


# ---------------------------------------------------------------- the loss against Monte Carlo
def test_loss_terms_match_monte_carlo():
    m, x = tiny(), data(3, 3)
    cfg, B = m.cfg, 3
    with torch.no_grad():
        mz, lz = m.z_encoder(x); mu_, lu = m.u_encoder(x)                        # (B, S, n)
        torch.manual_seed(0)
        parts = [m.loss(x) for _ in range(400)]
        loss = torch.stack([p.loss for p in parts]); recon = torch.stack([p.recon for p in parts])
        kl_z = torch.stack([p.kl_z for p in parts]); kl_u = torch.stack([p.kl_u for p in parts])
        # every call: loss = recon + kl_z + kl_u (kl_weight 1), and the KLs are analytic (no noise)
        assert torch.allclose(loss, recon + kl_z + kl_u, rtol=1e-12)
        assert torch.allclose(kl_z, kl_z[0].expand_as(kl_z)) and torch.allclose(kl_u, kl_u[0].expand_as(kl_u))
        assert torch.allclose(kl_z[0], kl_normal(mz, lz.exp()).sum(-1).mean(), rtol=1e-10)
        assert torch.allclose(kl_u[0], kl_normal(mu_, lu.exp()).sum(-1).mean(), rtol=1e-10)
        # KLs against Monte Carlo: E_q[log q - log p], per sequence, batch mean
        N = 20_000
        def mc_kl(mean, logvar):
            s = mean + (0.5 * logvar).exp() * torch.randn(N, *mean.shape, dtype=torch.float64)
            d = (log_normal(s, mean, logvar.exp()) - log_normal(s, 0.0, torch.ones_like(mean))).sum(-1).mean(-1)  # (N,)
            return d.mean(), d.std() / math.sqrt(N)
        for name, (mean, lv), got in (("kl_z", (mz, lz), kl_z[0]), ("kl_u", (mu_, lu), kl_u[0])):
            est, se = mc_kl(mean, lv)
            assert abs(got - est) < 5 * se + 1e-6, (name, got.item(), est.item(), se.item())
        # recon against Monte Carlo: -E_q log p(x|t) with t built from the definition
        N = 4000
        z = mz + (0.5 * lz).exp() * torch.randn(N, *mz.shape, dtype=torch.float64)
        u = mu_ + (0.5 * lu).exp() * torch.randn(N, *mu_.shape, dtype=torch.float64)
        v = ref_energy((u ** 2).reshape(N * B, cfg.seq_len, cfg.n), cfg).reshape(u.shape)
        t = (z - cfg.mu_init) / torch.sqrt(v + cfg.eps)
        r = -log_bernoulli(m.decoder(t), x.expand(N, *x.shape)).sum(-1).mean(-1)    # (N,)
        se = math.hypot(r.std() / math.sqrt(N), recon.std() / math.sqrt(len(recon)))
        assert abs(recon.mean() - r.mean()) < 5 * se, (recon.mean().item(), r.mean().item(), se)
        # the ELBO: -loss = E_q[log weight]
        lw = m.log_weights(x, 4000).mean(-1)                                           # (K,)
        se = math.hypot(lw.std() / math.sqrt(len(lw)), loss.std() / math.sqrt(len(loss)))
        assert abs(-loss.mean() - lw.mean()) < 5 * se, (-loss.mean().item(), lw.mean().item(), se)


def test_loss_kl_weight_scales_both_kls():
    m, x = tiny(), data(2, 3)
    torch.manual_seed(3); a = m.loss(x, kl_weight=0.25)
    assert torch.allclose(a.loss, a.recon + 0.25 * (a.kl_z + a.kl_u), rtol=1e-12)


# ---------------------------------------------------------------- encode and encode_static
@pytest.mark.parametrize("kw", [dict(), dict(shift=False), dict(topography="torus", n_caps=3, cap_dim=3, seq_len=1, L=1)])
def test_encode_is_the_definition(kw):
    m = tiny(**kw)
    cfg = m.cfg
    S = cfg.seq_len
    x = data(2, S if S > 1 else None)
    xs = x if S > 1 else x[:, None]
    with torch.no_grad():
        mz, lz = m.z_encoder(xs); mu_, lu = m.u_encoder(xs)
        t = m.encode(x)
        ref = (mz - cfg.mu_init) / torch.sqrt(ref_energy(mu_ ** 2 + lu.exp(), cfg) + cfg.eps)   # E_q[u²] = mu² + var
        assert torch.allclose(t, ref if S > 1 else ref[:, 0], rtol=1e-10, atol=1e-12)
        # one posterior sample: z and u drawn in that order
        torch.manual_seed(5); ts = m.encode(x, sample=True)
        torch.manual_seed(5)
        z = mz + (0.5 * lz).exp() * torch.randn_like(mz); u = mu_ + (0.5 * lu).exp() * torch.randn_like(mu_)
        ref_s = (z - cfg.mu_init) / torch.sqrt(ref_energy(u ** 2, cfg) + cfg.eps)
        assert torch.allclose(ts, ref_s if S > 1 else ref_s[:, 0], rtol=1e-10, atol=1e-12)


class Elementwise(torch.nn.Module):
    "An encoder that acts on each pixel on its own: (a x + b, c x + d). It commutes with any permutation of pixels."
    def __init__(self, a, b, c, d):
        super().__init__(); self.w = (a, b, c, d)
    def forward(self, x, event_dims=3):
        f = x.flatten(-event_dims)
        a, b, c, d = self.w
        return a * f + b, c * f + d


def equivariant_model(shift, L, C=2, D=5):
    "A TVAE whose frames are 1 x 1 x (C*D) 'images' and whose encoders are elementwise, so rolling x rolls u² and z."
    cfg = TVAEConfig(n_caps=C, cap_dim=D, seq_len=D, L=L, K=3, shift=shift, mu_init=1.5, x_shape=(1, 1, C * D),
                     hidden=(4, 4))
    m = make_model(cfg, seed=0).double().eval()
    m.z_encoder, m.u_encoder = Elementwise(2.0, -0.3, 0.5, -1.0), Elementwise(1.5, 0.2, -0.7, 0.1)
    return m


@pytest.mark.parametrize("L", [1, 3, 5])
def test_encode_static_equals_encode_on_a_perfectly_equivariant_sequence(L):
    "Frame l is frame 0 with every capsule rolled by +l units, so u² rolls by +1 unit per frame (cyclic: S = D)."
    m = equivariant_model(True, L)
    C, D = m.cfg.n_caps, m.cfg.cap_dim
    g = torch.Generator().manual_seed(0)
    x0 = torch.rand(3, C, D, generator=g, dtype=torch.float64)
    seq = torch.stack([torch.roll(x0, l, -1) for l in range(D)], 1).reshape(3, D, 1, 1, C * D)   # (B, S, 1, 1, n)
    with torch.no_grad():
        _, lu = m.u_encoder(seq); mu_ = m.u_encoder(seq)[0]
        u2 = (mu_ ** 2 + lu.exp()).reshape(3, D, C, D)
        assert torch.allclose(u2[:, 1], torch.roll(u2[:, 0], 1, -1))              # the construction: +1 per frame
        full = m.encode(seq)                                                      # (B, S, n)
        static = m.encode_static(seq[:, 0])                                       # (B, n)
        assert torch.allclose(static, full[:, 0], rtol=1e-10, atol=1e-12)
        # and the deterministic code itself rolls with the sequence
        assert torch.allclose(full[:, 1].reshape(3, C, D), torch.roll(full[:, 0].reshape(3, C, D), 1, -1), atol=1e-12)
        # the window is not trivial here: with L > 1, encode_static differs from a single-frame energy
        if L > 1:
            single = (m.z_encoder(seq[:, 0])[0] - 1.5) / torch.sqrt(
                ref_energy(u2[:, :1].reshape(3, 1, C * D), m.cfg.__class__(**{**m.cfg.to_dict(), "L": 1}))[:, 0] + 1e-6)
            assert not torch.allclose(static, single)


@pytest.mark.parametrize("L", [1, 3])
def test_encode_static_equals_encode_on_an_invariant_sequence_for_the_bubble(L):
    m = equivariant_model(False, L)
    C, D = m.cfg.n_caps, m.cfg.cap_dim
    x0 = torch.rand(2, 1, 1, C * D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    seq = x0[:, None].expand(2, D, 1, 1, C * D)
    with torch.no_grad():
        assert torch.allclose(m.encode_static(x0), m.encode(seq)[:, 0], rtol=1e-10, atol=1e-12)


def test_encode_static_on_single_images_is_encode():
    "Without a time window (L = 1 or a torus), encoding one image on its own is the definition of encode."
    for kw in (dict(L=1), dict(topography="torus", n_caps=3, cap_dim=3, seq_len=1, L=1)):
        m = tiny(**kw)
        x = data(3, None)
        with torch.no_grad():
            mz, _ = m.z_encoder(x); mu_, lu = m.u_encoder(x)
            ref = (mz - m.cfg.mu_init) / torch.sqrt(ref_energy((mu_ ** 2 + lu.exp())[:, None], m.cfg)[:, 0] + m.cfg.eps)
            assert torch.allclose(m.encode_static(x), ref, rtol=1e-10, atol=1e-12)
