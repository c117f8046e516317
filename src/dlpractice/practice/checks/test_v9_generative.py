"""Checks of lab v9: the VAE's reparameterised sample and KL term, DDPM's closed-form forward noising, and one
ancestral reverse step."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("v9.1")
def test_reparameterised_sample_and_kl_to_the_standard_normal(impl) -> None:
    """z = mu + exp(logvar / 2) * noise (differentiable in mu and logvar); KL summed over latent dims."""
    gen = torch.Generator().manual_seed(0)
    mu = torch.randn(5, 3, generator=gen).requires_grad_()
    logvar = torch.randn(5, 3, generator=gen).requires_grad_()
    noise = torch.randn(5, 3, generator=gen)
    z, kl = impl.sample_latent(mu, logvar, noise)
    std = torch.exp(0.5 * logvar)
    assert_close(z, mu + std * noise, "z = mu + sigma * noise with sigma = exp(logvar / 2), not exp(logvar)")
    reference = kl_divergence(Normal(mu, std), Normal(torch.zeros(3), torch.ones(3))).sum(1)  # (5,)
    assert kl.shape == (5,), f"one KL per example (summed over the 3 latent dimensions), got {kl.shape}"
    assert_close(kl, reference, "KL(N(mu, sigma^2) || N(0, 1)) per example, as torch.distributions gives it")
    (z.sum() + kl.sum()).backward()
    assert mu.grad is not None and logvar.grad is not None and logvar.grad.abs().sum() > 0, (
        "z and KL must be differentiable functions of mu and logvar (the point of the trick)"
    )


@pytest.mark.exercise("v9.2")
def test_forward_noising_matches_the_chain_of_one_step_noisings(impl) -> None:
    """The closed form has the mean and spread of t+1 one-step noisings x -> sqrt(1-b) x + sqrt(b) e."""
    betas = torch.linspace(0.01, 0.2, 6, dtype=torch.float64)
    alpha_bars = torch.cumprod(1 - betas, 0)
    x0 = torch.tensor([1.0, -0.5, 0.25], dtype=torch.float64).view(3, 1, 1, 1)
    t = torch.tensor([0, 2, 5])  # a different step for each example
    keep = torch.tensor([torch.prod(torch.sqrt(1 - betas[: s + 1])) for s in t.tolist()])  # (3,)
    spread = torch.tensor([(1 - torch.prod(1 - betas[: s + 1])).sqrt() for s in t.tolist()])
    mean = impl.q_sample(x0, t, torch.zeros_like(x0), alpha_bars)
    assert_close(
        mean.flatten(),
        keep * x0.flatten(),
        "without noise x_t = sqrt(alpha_bar_t) x_0, with step t's own alpha_bar",
    )
    unit = impl.q_sample(torch.zeros_like(x0), t, torch.ones_like(x0), alpha_bars)
    assert_close(unit.flatten(), spread, "the noise is scaled by sqrt(1 - alpha_bar_t), a standard deviation")
    image = torch.randn(2, 1, 4, 4, dtype=torch.float64)
    out = impl.q_sample(image, torch.tensor([1, 4]), torch.zeros_like(image), alpha_bars)
    assert out.shape == image.shape, (
        f"x_t keeps the image's shape {tuple(image.shape)}, got {tuple(out.shape)}"
    )


def posterior(x_t, x0, t, betas, alpha_bars):
    """The mean and variance of q(x_{t-1} | x_t, x_0) (Ho et al., eq. 7)."""
    prev = alpha_bars[t - 1] if t > 0 else torch.tensor(1.0, dtype=alpha_bars.dtype)
    mean = (prev.sqrt() * betas[t] * x0 + (1 - betas[t]).sqrt() * (1 - prev) * x_t) / (1 - alpha_bars[t])
    return mean, betas[t] * (1 - prev) / (1 - alpha_bars[t])


@pytest.mark.exercise("v9.3")
def test_reverse_step_is_the_posterior_given_the_clipped_x0(impl) -> None:
    """x_0 estimated from eps and clipped to [-1, 1]; x_{t-1} = posterior mean + posterior std * noise."""
    betas = torch.linspace(0.01, 0.2, 6, dtype=torch.float64)
    alpha_bars = torch.cumprod(1 - betas, 0)
    gen = torch.Generator().manual_seed(1)
    x_t, eps, noise = (torch.randn(2, 1, 3, 3, generator=gen, dtype=torch.float64) for _ in range(3))
    for t in (5, 2, 1, 0):
        x0 = ((x_t - (1 - alpha_bars[t]).sqrt() * eps) / alpha_bars[t].sqrt()).clamp(-1, 1)
        assert not torch.equal(x0.clamp(-0.99, 0.99), x0), "the test's x_0 estimates reach the clip"
        if t == 0:
            got = impl.p_sample_step(x_t, eps, 0, betas, alpha_bars, noise)
            assert_close(got, x0, "the last step (t = 0) adds no noise: it returns the clipped x_0 estimate")
            continue
        mean, variance = posterior(x_t, x0, t, betas, alpha_bars)
        got = impl.p_sample_step(x_t, eps, t, betas, alpha_bars, torch.zeros_like(noise))
        assert_close(
            got,
            mean,
            f"t={t}, no noise: the posterior mean from x_t and x_0 = (x_t - sqrt(1-a) eps) / sqrt(a) clipped",
        )
        got = impl.p_sample_step(x_t, eps, t, betas, alpha_bars, noise)
        assert_close(got, mean + variance.sqrt() * noise, f"t={t}: plus the noise times the posterior's std")
