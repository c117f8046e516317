"""Four generators of 28x28 digits in [-1, 1]: an autoencoder, a VAE, a DCGAN and a DDPM.

Autoencoder: a conv encoder squeezes a digit into a few numbers, a conv decoder rebuilds it (MSE). VAE
(Kingma & Welling, 2014): the encoder gives a Gaussian q(z|x), z is drawn by the reparameterisation trick
and the loss is the negative ELBO: Bernoulli reconstruction of the pixels plus KL(q(z|x) || N(0, I)). DCGAN
(Radford et al., 2016): a transposed-conv generator against a conv discriminator, non-saturating losses.
DDPM (Ho et al., 2020): a time-conditioned U-Net predicts the noise added by the closed-form forward
process q(x_t | x_0); sampling runs the reverse chain (ancestral), or DDIM's deterministic jumps (Song et
al., 2021) over fewer steps; both clip their estimate of x_0 to [-1, 1] at every step. Models that fit()
trains follow `output, loss = model(x, targets)` with the clean image as its own target. Simplified: small
widths for a CPU, no EMA of the weights, no attention in the U-Net, no class conditioning.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

SIDE = 28  # MNIST digits; the convs halve it twice: 28 -> 14 -> 7


class ConvEncoder(nn.Module):
    """(B, 1, 28, 28) -> (B, out): two stride-2 4x4 convs with LeakyReLU, then a linear layer."""

    def __init__(self, out: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, width, 4, 2, 1),  # (B, W, 14, 14)
            nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1),  # (B, 2W, 7, 7)
            nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(2 * width * 7 * 7, out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class ConvDecoder(nn.Module):
    """(B, z) -> (B, 1, 28, 28) unbounded: a linear layer to (2W, 7, 7), two stride-2 transposed convs."""

    def __init__(self, latent: int, width: int = 32):
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(latent, 2 * width * 7 * 7),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1),  # (B, W, 14, 14)
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),  # (B, 1, 28, 28)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.body(z)


class Autoencoder(nn.Module):
    """A deterministic bottleneck: good reconstructions, but nothing says where in latent space digits lie."""

    def __init__(self, latent: int = 16, width: int = 32):
        super().__init__()
        self.encoder, self.decoder = ConvEncoder(latent, width), ConvDecoder(latent, width)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z))  # (B, 1, 28, 28) in [-1, 1]

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """x (B, 1, 28, 28) -> reconstruction, mean squared error per pixel against targets (x itself)."""
        recon = self.decode(self.encoder(x))
        return recon, None if targets is None else F.mse_loss(recon, targets)


def sample_latent(
    mu: torch.Tensor, logvar: torch.Tensor, noise: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """z ~ N(mu, exp(logvar)) drawn as a differentiable function of (mu, logvar) and the noise, and each
    example's KL(N(mu, sigma^2) || N(0, I)) summed over the latent dimensions. mu, logvar, noise (B, Z)."""
    # BEGIN EXERCISE v9.1: z = mu + sigma * noise; KL = 1/2 sum(mu^2 + sigma^2 - 1 - log sigma^2) per example
    z = mu + torch.exp(0.5 * logvar) * noise
    kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(dim=1)
    return z, kl
    # END EXERCISE


class VAE(nn.Module):
    """Encoder -> (mu, logvar) of q(z|x); decoder -> Bernoulli logits of the pixels (in [0, 1])."""

    def __init__(self, latent: int = 16, width: int = 32):
        super().__init__()
        self.latent = latent
        self.encoder, self.decoder = ConvEncoder(2 * latent, width), ConvDecoder(latent, width)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(x).chunk(2, dim=1)  # (B, Z) each
        return mu, logvar

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z)) * 2 - 1  # the Bernoulli means, back in [-1, 1]

    def elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Per-example reconstruction NLL and KL (nats), and the logits. x (B, 1, 28, 28) in [-1, 1]."""
        mu, logvar = self.encode(x)
        z, kl = sample_latent(mu, logvar, torch.randn_like(mu))
        logits = self.decoder(z)
        pixels = (x + 1) / 2  # grey levels in [0, 1] as Bernoulli targets, as in the paper's MNIST runs
        nll = F.binary_cross_entropy_with_logits(logits, pixels, reduction="none").flatten(1).sum(1)
        return nll, kl, logits

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits and the negative ELBO per image (nats), averaged over the batch."""
        nll, kl, logits = self.elbo_terms(x)
        return logits, (nll + kl).mean()


class Generator(nn.Module):
    """DCGAN's generator: z (B, Z) -> (B, 1, 28, 28) in [-1, 1] (tanh)."""

    def __init__(self, latent: int = 32, width: int = 32):
        super().__init__()
        self.latent, self.decoder = latent, ConvDecoder(latent, width)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.decoder(z))


def discriminator_loss(d_real: torch.Tensor, d_fake: torch.Tensor) -> torch.Tensor:
    """BCE of the logits of real images against 1 plus that of generated ones against 0."""
    real = F.binary_cross_entropy_with_logits(d_real, torch.ones_like(d_real))
    return real + F.binary_cross_entropy_with_logits(d_fake, torch.zeros_like(d_fake))


def generator_loss(d_fake: torch.Tensor) -> torch.Tensor:
    """The non-saturating loss: BCE of the fakes' logits against 1 (strong gradients while D wins easily)."""
    return F.binary_cross_entropy_with_logits(d_fake, torch.ones_like(d_fake))


def train_gan(
    generator: Generator,
    discriminator: ConvEncoder,
    images: torch.Tensor,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> tuple[list[dict[str, float]], float]:
    """Alternate one D and one G update per step (Adam, beta1 0.5 as DCGAN). Returns (history, seconds)."""
    gen = torch.Generator().manual_seed(seed)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(discriminator.parameters(), lr=lr, betas=(0.5, 0.999))
    history, started = [], time.perf_counter()
    generator.train()
    discriminator.train()
    for step in range(1, steps + 1):
        real = images[torch.randint(len(images), (batch_size,), generator=gen)]  # (B, 1, 28, 28)
        fake = generator(torch.randn(batch_size, generator.latent, generator=gen))
        d_loss = discriminator_loss(discriminator(real), discriminator(fake.detach()))
        opt_d.zero_grad(set_to_none=True)
        d_loss.backward()
        opt_d.step()
        g_loss = generator_loss(discriminator(fake))
        opt_g.zero_grad(set_to_none=True)
        g_loss.backward()
        opt_g.step()
        if step % 25 == 0 or step == steps:
            history.append({"step": step, "d_loss": d_loss.item(), "g_loss": g_loss.item()})
    return history, time.perf_counter() - started


# ---- DDPM ----


def make_betas(steps: int, kind: str = "linear") -> torch.Tensor:
    """(T,) noise variances. Linear: Ho et al.'s 1e-4 .. 0.02 over 1000 steps, rescaled to T steps so
    the total noise stays the same (clipped below 1 for very short chains). Cosine: Nichol & Dhariwal's
    alpha_bar = cos^2, betas clipped at 0.999."""
    if kind == "linear":
        scale = 1000 / steps
        return torch.linspace(1e-4 * scale, 0.02 * scale, steps, dtype=torch.float64).clamp(max=0.999)
    if kind == "cosine":
        s = 0.008
        f = torch.cos((torch.arange(steps + 1, dtype=torch.float64) / steps + s) / (1 + s) * math.pi / 2) ** 2
        alpha_bar = f / f[0]
        return (1 - alpha_bar[1:] / alpha_bar[:-1]).clamp(max=0.999)
    raise ValueError(f"unknown beta schedule {kind!r}; use linear or cosine")


def q_sample(
    x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, alpha_bars: torch.Tensor
) -> torch.Tensor:
    """x_t drawn from q(x_t | x_0) in closed form. x0, noise (B, C, H, W); t (B,) step indices (0-based);
    alpha_bars (T,) the running products of (1 - beta)."""
    # BEGIN EXERCISE v9.2: x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, alpha_bar_t per example
    alpha_bar = alpha_bars[t].view(-1, 1, 1, 1).to(x0.dtype)  # (B, 1, 1, 1)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * noise
    # END EXERCISE


def p_sample_step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    betas: torch.Tensor,
    alpha_bars: torch.Tensor,
    noise: torch.Tensor,
) -> torch.Tensor:
    """One ancestral step x_t -> x_{t-1}, given the predicted noise eps (B, C, H, W): estimate x_0 from
    x_t = sqrt(a_t) x_0 + sqrt(1 - a_t) eps and clip it to [-1, 1] (as Ho et al.'s code does: without it a
    small network's errors pile up into saturated blobs), then draw from the posterior q(x_{t-1} | x_t, x_0):
    mean (sqrt(a_{t-1}) beta_t x_0 + sqrt(1 - beta_t) (1 - a_{t-1}) x_t) / (1 - a_t), variance
    beta_t (1 - a_{t-1}) / (1 - a_t), with a = alpha_bar. The last step (t = 0) returns x_0's estimate."""
    # BEGIN EXERCISE v9.3: x_0 from eps (clipped), then the posterior's mean plus its std times the noise
    alpha_bar, beta = alpha_bars[t], betas[t]
    x0 = ((x_t - (1 - alpha_bar).sqrt() * eps) / alpha_bar.sqrt()).clamp(-1, 1)
    if t == 0:
        return x0
    prev = alpha_bars[t - 1]
    mean = (prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - prev) * x_t) / (1 - alpha_bar)
    return mean + (beta * (1 - prev) / (1 - alpha_bar)).sqrt() * noise
    # END EXERCISE


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) step indices -> (B, dim) sines and cosines of geometrically spaced frequencies (Transformer)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)  # (dim/2,)
    angles = t.float()[:, None] * freqs[None]  # (B, dim/2)
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(math.gcd(8, channels), channels)  # batch-independent: sampling uses any batch


class TimeResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, the step's embedding added in between, plus a (1x1) shortcut."""

    def __init__(self, c_in: int, c_out: int, t_dim: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.time = nn.Linear(t_dim, c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))  # (B, C_out, H, W)
        h = h + self.time(t_emb)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.shortcut(x)


class NoiseUNet(nn.Module):
    """eps_theta(x_t, t): a two-level U-Net (28 -> 14 -> 7 and back) with skip connections, every block
    told the step t. Unlike models/unet.py (BatchNorm, no time input), it needs GroupNorm and the step."""

    def __init__(self, width: int = 32):
        super().__init__()
        w, t_dim = width, 4 * width
        self.width = w
        self.time_mlp = nn.Sequential(nn.Linear(w, t_dim), nn.SiLU(), nn.Linear(t_dim, t_dim))
        self.stem = nn.Conv2d(1, w, 3, padding=1)
        self.down1, self.pool1 = TimeResBlock(w, w, t_dim), nn.Conv2d(w, w, 3, 2, 1)
        self.down2, self.pool2 = TimeResBlock(w, 2 * w, t_dim), nn.Conv2d(2 * w, 2 * w, 3, 2, 1)
        self.mid = TimeResBlock(2 * w, 2 * w, t_dim)
        self.up2, self.merge2 = nn.Conv2d(2 * w, 2 * w, 3, padding=1), TimeResBlock(4 * w, 2 * w, t_dim)
        self.up1, self.merge1 = nn.Conv2d(2 * w, w, 3, padding=1), TimeResBlock(2 * w, w, t_dim)
        self.head = nn.Sequential(group_norm(w), nn.SiLU(), nn.Conv2d(w, 1, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x (B, 1, 28, 28), t (B,) -> predicted noise (B, 1, 28, 28)."""
        emb = self.time_mlp(timestep_embedding(t, self.width))  # (B, 4W)
        skip1 = self.down1(self.stem(x), emb)  # (B, W, 28, 28)
        skip2 = self.down2(self.pool1(skip1), emb)  # (B, 2W, 14, 14)
        h = self.mid(self.pool2(skip2), emb)  # (B, 2W, 7, 7)
        h = self.up2(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, 2W, 14, 14)
        h = self.merge2(torch.cat([h, skip2], dim=1), emb)
        h = self.up1(F.interpolate(h, scale_factor=2.0, mode="nearest"))  # (B, W, 28, 28)
        return self.head(self.merge1(torch.cat([h, skip1], dim=1), emb))


class DDPM(nn.Module):
    """The noise-prediction network and its beta schedule (buffers: they travel with the weights)."""

    def __init__(self, width: int = 32, steps: int = 1000, schedule: str = "linear"):
        super().__init__()
        self.net = NoiseUNet(width)
        betas = make_betas(steps, schedule)
        self.register_buffer("betas", betas.float())
        self.register_buffer("alpha_bars", torch.cumprod(1 - betas, 0).float())
        self.steps = steps

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """Noise each clean x (B, 1, 28, 28) to a random step; the loss is the MSE of the predicted noise."""
        t = torch.randint(self.steps, (len(x),), device=x.device)
        noise = torch.randn_like(x)
        eps = self.net(q_sample(x, t, noise, self.alpha_bars), t)
        return eps, F.mse_loss(eps, noise)

    @torch.no_grad()
    def ancestral(self, n: int, generator: torch.Generator) -> Iterator[tuple[int, torch.Tensor]]:
        """DDPM sampling: x_T ~ N(0, I), then T reverse steps; yields (t, x_t) from T down to 0."""
        x = torch.randn(n, 1, SIDE, SIDE, generator=generator)
        yield self.steps, x
        for t in reversed(range(self.steps)):
            eps = self.net(x, torch.full((n,), t))
            x = p_sample_step(
                x, eps, t, self.betas, self.alpha_bars, torch.randn(x.shape, generator=generator)
            )
            yield t, x

    @torch.no_grad()
    def sample(
        self, n: int, generator: torch.Generator, ddim_steps: int = 0, batch: int = 250
    ) -> torch.Tensor:
        """(n, 1, 28, 28) samples in [-1, 1]: ancestral (ddim_steps 0) or DDIM over that many steps."""
        self.eval()
        parts = []
        for start in range(0, n, batch):
            size = min(batch, n - start)
            if ddim_steps:
                parts.append(self.ddim(size, ddim_steps, generator))
            else:
                *_, (_, x) = self.ancestral(size, generator)
                parts.append(x)
        return torch.cat(parts).clamp(-1, 1)

    @torch.no_grad()
    def ddim(self, n: int, steps: int, generator: torch.Generator) -> torch.Tensor:
        """DDIM (eta 0): from x_t, estimate x_0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t), clip it, and jump
        to x_s = sqrt(a_s) x_0 + sqrt(1 - a_s) eps for the next of `steps` evenly spaced steps (eps taken
        back from the clipped x_0, as diffusers' DDIMScheduler does)."""
        times = torch.linspace(self.steps - 1, 0, min(steps, self.steps)).round().long().tolist()
        x = torch.randn(n, 1, SIDE, SIDE, generator=generator)
        for i, t in enumerate(times):
            eps = self.net(x, torch.full((n,), t))
            a_t = self.alpha_bars[t]
            x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
            eps = (x - a_t.sqrt() * x0) / (1 - a_t).sqrt()  # the noise that the clipped x_0 implies
            a_s = self.alpha_bars[times[i + 1]] if i + 1 < len(times) else torch.tensor(1.0)
            x = a_s.sqrt() * x0 + (1 - a_s).sqrt() * eps
        return x
