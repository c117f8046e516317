"""The generators of lab v9 (models/generative.py): shapes, the ELBO's parts against torch.distributions, the
beta schedules against the papers' numbers, DDPM's forward process against its one-step chain, the GAN's
losses against their definitions, and DDIM's last step."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.distributions import Bernoulli, Normal, kl_divergence

from dlpractice.models import generative as g


def digits(n: int = 4, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_autoencoder_and_generator_give_digits_in_range() -> None:
    x = digits()
    recon, loss = g.Autoencoder(latent=3, width=4)(x, x)
    assert recon.shape == x.shape and recon.abs().max() <= 1
    assert loss == F.mse_loss(recon, x)
    fake = g.Generator(latent=5, width=4)(torch.randn(6, 5))
    assert fake.shape == (6, 1, 28, 28) and fake.abs().max() <= 1
    assert g.ConvEncoder(1, width=4)(fake).shape == (6, 1)


def test_vae_loss_is_bernoulli_nll_plus_kl_of_the_sampled_code() -> None:
    vae, x = g.VAE(latent=3, width=4), digits()
    torch.manual_seed(1)
    nll, kl, logits = vae.elbo_terms(x)
    mu, logvar = vae.encode(x)
    expected_kl = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl, expected_kl)
    expected_nll = -Bernoulli(logits=logits, validate_args=False).log_prob((x + 1) / 2).flatten(1).sum(1)
    torch.testing.assert_close(nll, expected_nll)
    torch.manual_seed(1)
    _, loss = vae(x, x)
    torch.testing.assert_close(loss, (nll + kl).mean())
    assert vae.decode(torch.zeros(2, 3)).abs().max() <= 1


def test_gan_losses_are_the_binary_cross_entropies_of_their_definitions() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([0.5, -3.0])
    expected_d = -(torch.log(torch.sigmoid(real)).mean() + torch.log(1 - torch.sigmoid(fake)).mean())
    torch.testing.assert_close(g.discriminator_loss(real, fake), expected_d)
    torch.testing.assert_close(g.generator_loss(fake), -torch.log(torch.sigmoid(fake)).mean())


def test_gan_training_records_both_losses() -> None:
    torch.manual_seed(0)
    gen, disc = g.Generator(4, 4), g.ConvEncoder(1, 4)
    history, seconds = g.train_gan(gen, disc, digits(16), steps=25, batch_size=8, lr=1e-3, seed=0)
    assert [h["step"] for h in history] == [25] and seconds > 0
    assert torch.isfinite(torch.tensor([history[0]["d_loss"], history[0]["g_loss"]])).all()


def test_beta_schedules_follow_the_papers() -> None:
    linear = g.make_betas(1000, "linear")
    assert linear[0].item() == 1e-4 and abs(linear[-1].item() - 0.02) < 1e-12  # Ho et al.
    alpha_bar = torch.cumprod(1 - g.make_betas(200, "linear"), 0)
    reference = torch.cumprod(1 - linear, 0)
    assert abs(alpha_bar[-1] - reference[-1]) < 1e-4  # rescaled to 200 steps: as noisy at the end
    cosine = torch.cumprod(1 - g.make_betas(1000, "cosine"), 0)
    s = 0.008
    f = torch.cos((torch.tensor([500.0]) / 1000 + s) / (1 + s) * torch.pi / 2) ** 2
    f0 = torch.cos(torch.tensor(s / (1 + s) * torch.pi / 2)) ** 2
    assert abs(cosine[499] - f / f0) < 1e-6  # Nichol & Dhariwal's alpha_bar(t) = f(t) / f(0)
    assert g.make_betas(10, "linear").max() < 1  # clipped for very short chains


def test_q_sample_has_the_statistics_of_the_one_step_chain() -> None:
    betas = torch.linspace(0.05, 0.3, 5, dtype=torch.float64)
    alpha_bars = torch.cumprod(1 - betas, 0)
    x0 = torch.full((20000, 1, 1, 1), 0.7, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    chain = x0.clone()
    for beta in betas[:4]:  # t = 3: four one-step noisings
        chain = (1 - beta).sqrt() * chain + beta.sqrt() * torch.randn(
            chain.shape, generator=gen, dtype=chain.dtype
        )
    t = torch.full((len(x0),), 3)
    closed = g.q_sample(x0, t, torch.randn(x0.shape, generator=gen, dtype=x0.dtype), alpha_bars)
    assert abs(closed.mean() - chain.mean()) < 0.02 and abs(closed.std() - chain.std()) < 0.02


def test_ddpm_trains_on_noise_and_samples_both_ways() -> None:
    torch.manual_seed(0)
    ddpm = g.DDPM(width=4, steps=6)
    eps, loss = ddpm(digits(3), digits(3))
    assert eps.shape == (3, 1, 28, 28) and loss.item() > 0
    gen = torch.Generator().manual_seed(0)
    frames = list(ddpm.ancestral(2, gen))
    assert [t for t, _ in frames] == [6, 5, 4, 3, 2, 1, 0]
    for ddim_steps in (0, 3):
        x = ddpm.sample(5, torch.Generator().manual_seed(1), ddim_steps=ddim_steps, batch=2)
        assert x.shape == (5, 1, 28, 28) and x.abs().max() <= 1
    a = ddpm.sample(2, torch.Generator().manual_seed(7), ddim_steps=3)
    b = ddpm.sample(2, torch.Generator().manual_seed(7), ddim_steps=3)
    assert torch.equal(a, b)  # DDIM (eta 0) is deterministic given x_T


def test_ddim_with_one_step_returns_the_clipped_x0_estimate() -> None:
    torch.manual_seed(0)
    ddpm = g.DDPM(width=4, steps=8).eval()
    x_T = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        eps = ddpm.net(x_T, torch.full((2,), 7))
    a = ddpm.alpha_bars[7]
    expected = ((x_T - (1 - a).sqrt() * eps) / a.sqrt()).clamp(-1, 1)
    torch.testing.assert_close(ddpm.ddim(2, 1, torch.Generator().manual_seed(3)), expected)
