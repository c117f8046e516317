"""A tiny NeRF (Mildenhall et al., 2020): a scene as an MLP from 3D position to density and colour.

A pixel's colour is rendered by volume rendering along its camera ray: S stratified samples between `near`
and `far` (one uniform draw in each of S equal bins while training, bin centres when rendering for test),
the MLP's density sigma_i and colour c_i at each, and alpha compositing:
    alpha_i = 1 - exp(-sigma_i delta_i),   T_i = prod_{j<i} (1 - alpha_j),   w_i = T_i alpha_i,
    colour = sum_i w_i c_i + (1 - sum_i w_i) * background,
where delta_i is the distance to the next sample (to `far` for the last) and T_i the light that survives to
sample i. Positions pass through a positional encoding, [x, sin(2^k pi x), cos(2^k pi x)] for k < L, without
which an MLP can only fit smooth functions of x and renders blurred views (the comparison the lab makes).
Simplified: no view direction input (the scene is Lambertian), no hierarchical (coarse + fine) sampling, one
small MLP, 32 x 32 images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def positional_encoding(x: torch.Tensor, frequencies: int) -> torch.Tensor:
    """(..., 3) -> (..., 3 + 6 L): x, then sin and cos of 2^k pi x for k = 0..L-1 (L = 0: x alone)."""
    if frequencies == 0:
        return x
    scales = (2.0 ** torch.arange(frequencies, dtype=x.dtype)) * math.pi  # (L,)
    angles = (x[..., None, :] * scales[:, None]).flatten(-2)  # (..., 3 L)
    return torch.cat([x, angles.sin(), angles.cos()], -1)


class TinyNeRF(nn.Module):
    """(..., 3) positions -> density (...,) >= 0 and colour (..., 3) in [0, 1]; positions are divided by
    `bound` first, so the scene's box [-bound, bound]^3 maps to [-1, 1]^3."""

    def __init__(self, frequencies: int = 6, width: int = 128, depth: int = 4, bound: float = 1.5):
        super().__init__()
        self.frequencies, self.bound = frequencies, bound
        layers, n_in = [], 3 + 6 * frequencies
        for _ in range(depth):
            layers += [nn.Linear(n_in, width), nn.ReLU()]
            n_in = width
        self.trunk = nn.Sequential(*layers)
        self.out = nn.Linear(width, 4)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.out(self.trunk(positional_encoding(points / self.bound, self.frequencies)))  # (..., 4)
        return F.softplus(h[..., 0] - 1.0), torch.sigmoid(h[..., 1:])  # a slightly negative bias: empty start


def stratified_depths(
    n_rays: int, near: float, far: float, samples: int, generator: torch.Generator | None
) -> torch.Tensor:
    """(R, S) sample distances along each ray: one uniform draw in each of S equal bins of [near, far], or the
    bin centres when generator is None (deterministic rendering for evaluation)."""
    edges = torch.linspace(near, far, samples + 1)  # (S + 1,)
    offset = (
        torch.rand(n_rays, samples, generator=generator)
        if generator is not None
        else torch.full((n_rays, samples), 0.5)
    )
    return edges[:-1] + (edges[1:] - edges[:-1]) * offset


def compositing_weights(sigma: torch.Tensor, deltas: torch.Tensor) -> torch.Tensor:
    """Densities and sample spacings (R, S) -> (R, S) weights w_i = T_i alpha_i, where alpha_i =
    1 - exp(-sigma_i delta_i) is the chance the ray stops in sample i's interval and T_i = prod_{j<i}
    (1 - alpha_j) the chance it got that far (T_0 = 1)."""
    # BEGIN EXERCISE r3.3: alpha from density and spacing, transmittance as an exclusive cumulative product
    alpha = 1.0 - torch.exp(-sigma * deltas)  # (R, S)
    survive = torch.cumprod(1.0 - alpha + 1e-10, -1)  # (R, S): through sample i inclusive
    transmittance = torch.cat([torch.ones_like(alpha[:, :1]), survive[:, :-1]], -1)  # (R, S): before sample i
    return transmittance * alpha
    # END EXERCISE


def render_rays(
    model: nn.Module,
    origins: torch.Tensor,
    directions: torch.Tensor,
    near: float,
    far: float,
    samples: int,
    background: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Rays (R, 3) from `origins` along unit `directions` -> (R, 3) rendered colours."""
    t = stratified_depths(len(origins), near, far, samples, generator)  # (R, S)
    points = origins[:, None, :] + t[..., None] * directions[:, None, :]  # (R, S, 3)
    sigma, colour = model(points)  # (R, S), (R, S, 3)
    deltas = torch.cat([t[:, 1:] - t[:, :-1], far - t[:, -1:]], -1)  # (R, S)
    weights = compositing_weights(sigma, deltas)
    return (weights[..., None] * colour).sum(1) + (1.0 - weights.sum(1, keepdim=True)) * background


def psnr(rendered: torch.Tensor, truth: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [0, 1]: 10 log10(1 / MSE)."""
    return float(10.0 * torch.log10(1.0 / F.mse_loss(rendered, truth)))


@torch.no_grad()
def render_image(
    model: nn.Module,
    origins: torch.Tensor,
    directions: torch.Tensor,
    settings: RaySettings,
    chunk: int = 4096,
) -> torch.Tensor:
    """(H, W, 3) origins and directions -> (H, W, 3) rendered image, at the bin centres, in chunks of rays."""
    model.eval()
    flat_o, flat_d = origins.reshape(-1, 3), directions.reshape(-1, 3)
    parts = [
        render_rays(
            model,
            flat_o[i : i + chunk],
            flat_d[i : i + chunk],
            settings.near,
            settings.far,
            settings.samples,
            settings.background,
        )
        for i in range(0, len(flat_o), chunk)
    ]
    return torch.cat(parts).reshape(origins.shape)


@dataclass(frozen=True)
class RaySettings:
    near: float  # where sampling starts along each ray (scene units from the camera)
    far: float
    samples: int  # per ray
    background: float  # the colour where a ray leaves the volume unstopped


def train_nerf(
    model: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    held_out: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    settings: RaySettings,
    steps: int,
    batch_rays: int,
    lr: float,
    eval_every: int,
    seed: int,
) -> list[tuple[int, float]]:
    """Adam on random batches of training rays (origins, directions, colours: (N, 3) each); the mean PSNR of
    the held-out views (V, H, W, 3 each) every `eval_every` steps, as (step, dB)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.1 ** (1 / steps))  # lr falls tenfold
    origins, directions, colours = train
    curve = []
    for step in range(1, steps + 1):
        model.train()
        index = torch.randint(len(origins), (batch_rays,), generator=generator)
        s = settings
        rendered = render_rays(
            model, origins[index], directions[index], s.near, s.far, s.samples, s.background, generator
        )
        loss = F.mse_loss(rendered, colours[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        if step % eval_every == 0 or step == steps:
            curve.append((step, held_out_psnr(model, held_out, settings)))
    return curve


def held_out_psnr(
    model: nn.Module, views: tuple[torch.Tensor, torch.Tensor, torch.Tensor], settings: RaySettings
) -> float:
    """The mean PSNR over views of their rendering against the truth."""
    return sum(psnr(render_image(model, o, d, settings), truth) for o, d, truth in zip(*views)) / len(
        views[0]
    )
