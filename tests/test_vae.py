"""Independent tests of the VAE maths: analytic KL vs Monte Carlo, importance-sampled log p(x) vs closed form."""
import math

import pytest
import torch
from hypothesis import given, settings, strategies as st

from tvae_nb.vae import (VAE, Loss, bernoulli_log_lik, gaussian_kl, gaussian_log_prob, importance_log_px, log_mean_exp)
from tvae_nb.train import NonFiniteLossError, TrainConfig, train


@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 5))
def test_kl_analytic_matches_monte_carlo(seed, n):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, generator=g, dtype=torch.float64)
    logvar = torch.randn(n, generator=g, dtype=torch.float64).clamp(-2, 2)
    q = torch.distributions.Normal(mu, (0.5 * logvar).exp())
    z = q.sample((100_000,))
    mc = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    se = (q.log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z)).sum(-1).std() / math.sqrt(len(z))
    assert abs(gaussian_kl(mu, logvar) - mc) < 5 * se + 1e-4


def test_kl_is_zero_only_at_prior_and_matches_torch():
    assert gaussian_kl(torch.zeros(3), torch.zeros(3)) == 0
    mu, lv = torch.tensor([1.0, -0.5, 0.0]), torch.tensor([0.3, -1.0, 0.7])
    ref = torch.distributions.kl_divergence(torch.distributions.Normal(mu, (0.5 * lv).exp()),
                                            torch.distributions.Normal(0.0, 1.0)).sum()
    assert torch.allclose(gaussian_kl(mu, lv), ref, atol=1e-6) and ref > 0
    for i in range(3):                                  # any single unit away from the prior gives a positive KL
        m, l = torch.zeros(3), torch.zeros(3)
        m[i] = 0.1; assert gaussian_kl(m, l) > 0
        l[i] = 0.1; m[i] = 0.0; assert gaussian_kl(m, l) > 0


def test_gaussian_log_prob_matches_torch():
    z, mu, lv = torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 3)
    ref = torch.distributions.Normal(mu, (0.5 * lv).exp()).log_prob(z).sum(-1)
    assert torch.allclose(gaussian_log_prob(z, mu, lv), ref, atol=1e-5)


def test_bernoulli_log_lik_soft_targets():
    logits, x = torch.randn(2, 1, 4, 4), torch.rand(2, 1, 4, 4)
    ref = (x * torch.nn.functional.logsigmoid(logits) + (1 - x) * torch.nn.functional.logsigmoid(-logits)).sum((1, 2, 3))
    assert torch.allclose(bernoulli_log_lik(logits, x), ref, atol=1e-5)
    with pytest.raises(ValueError, match="same shape"):
        bernoulli_log_lik(logits, x[:, :, :3])


class LinearGaussian(torch.nn.Module):
    """z ~ N(0,1), x|z ~ N(a z, s^2): log p(x) = log N(x; 0, a^2 + s^2). Proposal: the exact posterior, widened by `ps`."""
    def __init__(self, a=1.5, s=0.7, ps=1.0):
        super().__init__()
        self.a, self.s, self.ps = a, s, ps

    def exact(self, x):
        return torch.distributions.Normal(0.0, math.sqrt(self.a ** 2 + self.s ** 2)).log_prob(x)

    def log_weights(self, x, n_samples):
        K = n_samples
        v = self.a ** 2 + self.s ** 2
        qm, qs = self.a * x / v, self.ps * math.sqrt(self.s ** 2 / v)
        z = qm + qs * torch.randn(K, *x.shape, dtype=x.dtype)
        N = torch.distributions.Normal
        return N(self.a * z, self.s).log_prob(x) + N(0.0, 1.0).log_prob(z) - N(qm, qs).log_prob(z)


def wrong_is(model, x, K):
    "A broken estimator: logsumexp without - log K."
    return torch.logsumexp(model.log_weights(x, K), 0)


def test_is_exact_with_true_posterior():
    m, x = LinearGaussian(), torch.linspace(-3, 3, 11, dtype=torch.float64)
    for K in (1, 7, 50):
        assert torch.allclose(importance_log_px(m, x, n_samples=K), m.exact(x), atol=1e-8)


def test_is_estimate_increases_with_K_towards_exact():
    torch.manual_seed(0)
    m = LinearGaussian(ps=2.5)
    x = torch.linspace(-2, 2, 5, dtype=torch.float64).repeat(400)
    est = [importance_log_px(m, x, n_samples=K).mean().item() for K in (1, 4, 16, 64, 256)]
    exact = m.exact(x).mean().item()
    assert all(a < b for a, b in zip(est, est[1:])), est
    assert est[-1] <= exact + 0.01 and exact - est[-1] < 0.1


def test_wrong_estimator_without_log_K_fails():
    m, x = LinearGaussian(), torch.linspace(-3, 3, 11, dtype=torch.float64)
    exact = m.exact(x)
    bad = wrong_is(m, x, 100)
    assert not torch.allclose(bad, exact, atol=1.0)                 # off by log(100) = 4.6 nats
    assert torch.allclose(bad - exact, torch.full_like(exact, math.log(100)), atol=1e-6)


def test_log_mean_exp_is_stable():
    lw = torch.tensor([[1000.0], [1000.0]])
    assert torch.allclose(log_mean_exp(lw), torch.tensor([1000.0]))


def test_vae_elbo_is_the_mean_log_weight_and_is_is_above_it():
    "-loss (one-sample ELBO) and log_weights (K=1) estimate the same ELBO; the K=200 IS estimate lies above it."
    torch.manual_seed(0)
    m = VAE(n=4, x_shape=(1, 6, 6))
    x = torch.rand(8, 1, 6, 6).round()
    with torch.no_grad():
        neg = torch.stack([m.loss(x).loss for _ in range(2000)])                    # (N,) batch means
        lw = m.log_weights(x, 2000).mean(-1)                                        # (N,) batch means
        is_ = importance_log_px(m, x, n_samples=200).mean().item()
    se = math.hypot(neg.std().item() / math.sqrt(len(neg)), lw.std().item() / math.sqrt(len(lw)))
    assert abs(-neg.mean().item() - lw.mean().item()) < 5 * se, (-neg.mean().item(), lw.mean().item(), se)
    assert is_ > lw.mean().item() + 5 * se                                          # the bound is strict here


def test_vae_log_weights_match_per_sample_formula():
    torch.manual_seed(1)
    m = VAE(n=3, x_shape=(1, 4, 4)).double()
    x = torch.rand(2, 1, 4, 4, dtype=torch.float64)
    torch.manual_seed(9); lw = m.log_weights(x, 3)
    torch.manual_seed(9); eps = torch.randn(3, 2, 3, dtype=torch.float64)
    with torch.no_grad():
        mu, lv = m.encoder(x)
        N = torch.distributions.Normal
        for k in range(3):
            for b in range(2):
                z = mu[b] + (0.5 * lv[b]).exp() * eps[k, b]
                p = torch.sigmoid(m.decoder(z))
                ll = (x[b] * p.log() + (1 - x[b]) * (1 - p).log()).sum()
                ref = ll + N(0.0, 1.0).log_prob(z).sum() - N(mu[b], (0.5 * lv[b]).exp()).log_prob(z).sum()
                assert torch.isclose(lw[k, b], ref, rtol=1e-9), (k, b, lw[k, b], ref)


def test_train_refuses_nonfinite_loss():
    class M(torch.nn.Module):
        def __init__(self): super().__init__(); self.w = torch.nn.Parameter(torch.ones(1))
    class S:
        def sample(self): return None
    with pytest.raises(NonFiniteLossError, match="step 0"):
        train(M(), S(), lambda m, b, w: Loss(m.w.sum() * float("inf"), m.w.sum(), m.w.sum()), steps=2)


@pytest.mark.parametrize("kw,match", [(dict(steps=-1), "steps"), (dict(lr=0), "lr"), (dict(optimizer="rmsprop"), "optimizer"),
                                      (dict(batch_size=0), "batch_size"), (dict(max_seconds=0), "max_seconds")])
def test_train_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kw)


# ---- the evaluation kernel: the same log-likelihood, block by block, x broadcast over the samples
from tvae_nb.vae import BernoulliDecoder, bernoulli_log_lik_eval, decode_log_lik


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 4), frames=st.integers(1, 9), block=st.integers(1, 12), scale=st.floats(0.1, 30.0),
       seed=st.integers(0, 10_000))
def test_bernoulli_log_lik_eval_matches_float64_truth_for_any_block(n, frames, block, scale, seed):
    "Every block size, including ones that do not divide the frames; logits up to +-30 (saturated sigmoids)."
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, frames, 1, 28, 28, generator=g) * scale
    x = torch.rand(frames, 1, 28, 28, generator=g)
    x[0, 0, :3, :3] = 0.0; x[-1, 0, -3:, -3:] = 1.0                   # exact 0 and 1 pixels too
    with torch.no_grad(): fast = bernoulli_log_lik_eval(logits, x, block=block)
    truth = bernoulli_log_lik(logits.double(), x.double().expand(logits.shape))   # float64: the truth
    ref = bernoulli_log_lik(logits, x.expand(logits.shape))           # torch's float32 BCE
    assert fast.shape == (n, frames)
    err_fast, err_ref = (fast.double() - truth).abs().max().item(), (ref.double() - truth).abs().max().item()
    assert err_fast <= 3 * err_ref + 1e-6 * truth.abs().max().item() + 1e-4, (err_fast, err_ref)


def test_bernoulli_log_lik_eval_keeps_the_gradient_path_and_checks_shapes():
    l = torch.randn(2, 3, 1, 28, 28, requires_grad=True); x = torch.rand(3, 1, 28, 28)
    out = bernoulli_log_lik_eval(l, x)                                # grad enabled: torch's BCE, differentiable
    out.sum().backward()
    assert l.grad is not None and torch.equal(out, bernoulli_log_lik(l, x.expand(l.shape)))
    with pytest.raises(ValueError, match="trailing dims"): bernoulli_log_lik_eval(l.detach(), x[:2])


def test_decode_log_lik_equals_decoding_everything_at_once():
    torch.manual_seed(0)
    dec = BernoulliDecoder(6, (1, 28, 28))
    z, x = torch.randn(5, 7, 3, 6), torch.rand(7, 3, 1, 28, 28)       # 5 samples of 7 sequences x 3 frames
    with torch.no_grad():
        fast = decode_log_lik(dec, z, x, block=4)
        ref = bernoulli_log_lik(dec(z), x.expand(5, *x.shape))
    assert fast.shape == (5, 7, 3)
    torch.testing.assert_close(fast, ref, rtol=1e-5, atol=1e-3)
    with pytest.raises(ValueError, match="frames"): decode_log_lik(dec, z, x[:, :2])
