"""Super-resolution networks: SRCNN, EDSR-lite, and ESRGAN-lite's discriminator and losses.

- SRCNN (Dong et al., 2014): three convolutions (9x9, 5x5, 5x5) on the bicubic upscale. Simplified: it
  predicts the residual to that upscale (as VDSR does), which trains in minutes instead of days.
- EDSR-lite (Lim et al., 2017): residual blocks without batch norm on the low-resolution image, then one
  convolution to 3 * scale^2 channels and a pixel shuffle (ESPCN) to the high resolution, added to the
  bicubic upscale. 32 channels and 8 blocks: 172 k parameters (EDSR-baseline has 1.5 M, EDSR 43 M).
- ESRGAN-lite (Wang et al., 2018): the EDSR-lite generator, started from the PSNR-trained weights as ESRGAN
  starts from its PSNR model, fine-tuned with L1 + perceptual + relativistic adversarial loss against a
  small VGG-style discriminator. The perceptual loss compares the discriminator's own hidden features of the
  output and the truth (feature matching, as pix2pixHD): a VGG-19 trained on ImageNet is ESRGAN's
  extractor, but no such weights can be had offline, and a VGG with random weights measures little.

Every generator follows `output, loss = model(lr, hr)` with an L1 loss (EDSR's), so fit() trains it.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def pixel_shuffle(x: torch.Tensor, scale: int) -> torch.Tensor:
    """(B, C * s^2, H, W) -> (B, C, H * s, W * s): each group of s^2 channels fills an s x s block."""
    b, c, h, w = x.shape
    # BEGIN EXERCISE v8.2: channel c * s^2 + i * s + j goes to pixel (h * s + i, w * s + j) of channel c
    x = x.reshape(b, c // scale**2, scale, scale, h, w)  # (B, C, i, j, H, W)
    x = x.permute(0, 1, 4, 2, 5, 3)  # (B, C, H, i, W, j)
    return x.reshape(b, c // scale**2, h * scale, w * scale)
    # END EXERCISE


def upscale_bicubic(lr: torch.Tensor, scale: int) -> torch.Tensor:
    """The networks' starting point: torch's bicubic upscale (B, 3, H, W) -> (B, 3, sH, sW)."""
    return F.interpolate(lr, scale_factor=scale, mode="bicubic", align_corners=False)


class SRCNN(nn.Module):
    """9-5-5 convolutions on the bicubic upscale, predicting what bicubic misses."""

    def __init__(self, scale: int = 4, widths: tuple[int, int] = (64, 32)):
        super().__init__()
        self.scale = scale
        self.body = nn.Sequential(
            nn.Conv2d(3, widths[0], 9, padding=4),
            nn.ReLU(),
            nn.Conv2d(widths[0], widths[1], 5, padding=2),
            nn.ReLU(),
            nn.Conv2d(widths[1], 3, 5, padding=2),
        )

    def forward(self, lr: torch.Tensor, hr: torch.Tensor | None = None):
        up = upscale_bicubic(lr, self.scale)  # (B, 3, sH, sW)
        out = up + self.body(up)
        return out, None if hr is None else F.l1_loss(out, hr)


class ResBlock(nn.Module):
    """conv-ReLU-conv plus the input: EDSR's block, without batch norm (it hurts SR, EDSR found)."""

    def __init__(self, width: int):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(width, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(F.relu(self.conv1(x)))


class EDSRLite(nn.Module):
    """Features at low resolution, one pixel shuffle up, added to the bicubic upscale."""

    def __init__(self, scale: int = 4, width: int = 32, blocks: int = 8):
        super().__init__()
        self.scale = scale
        self.head = nn.Conv2d(3, width, 3, padding=1)
        self.body = nn.Sequential(*[ResBlock(width) for _ in range(blocks)])
        self.body_end = nn.Conv2d(width, width, 3, padding=1)
        self.to_pixels = nn.Conv2d(width, 3 * scale**2, 3, padding=1)

    def forward(self, lr: torch.Tensor, hr: torch.Tensor | None = None):
        features = self.head(lr)  # (B, W, H, W')
        features = features + self.body_end(self.body(features))  # EDSR's long skip
        out = upscale_bicubic(lr, self.scale) + pixel_shuffle(self.to_pixels(features), self.scale)
        return out, None if hr is None else F.l1_loss(out, hr)  # out (B, 3, sH, sW)


class Discriminator(nn.Module):
    """A small VGG-style critic: strided convolutions halve the patch five times, then one logit per patch.
    `features` returns its hidden maps too, the perceptual loss's feature extractor."""

    def __init__(self, width: int = 32):
        super().__init__()
        chans = [3, width, width, 2 * width, 2 * width, 4 * width, 4 * width]
        self.stages = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride=1 + (i % 2), padding=1), nn.LeakyReLU(0.2))
            for i, (c_in, c_out) in enumerate(zip(chans[:-1], chans[1:]))
        )
        self.head = nn.Conv2d(chans[-1], 1, 3, padding=1)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        maps = []
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return self.head(x).mean((1, 2, 3)), maps  # (B,) logits, hidden maps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


def relativistic_losses(real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """ESRGAN's relativistic average GAN: the critic asks "is the real more real than the average fake?".
    Returns (discriminator loss, generator loss) for logits of real and fake patches (B,)."""
    real_vs_fake, fake_vs_real = real - fake.mean(), fake - real.mean()
    ones, zeros = torch.ones_like(real), torch.zeros_like(real)
    bce = F.binary_cross_entropy_with_logits
    d_loss = (bce(real_vs_fake, ones) + bce(fake_vs_real, zeros)) / 2
    g_loss = (bce(real_vs_fake, zeros) + bce(fake_vs_real, ones)) / 2
    return d_loss, g_loss


def feature_matching_loss(fake_maps: list[torch.Tensor], real_maps: list[torch.Tensor]) -> torch.Tensor:
    """Perceptual loss: mean L1 between the critic's hidden maps of the output and of the truth."""
    return sum(F.l1_loss(f, r.detach()) for f, r in zip(fake_maps, real_maps)) / len(fake_maps)


def adversarial_finetune(
    generator: nn.Module,
    critic: Discriminator,
    batches,
    steps: int,
    batch_size: int,
    lr: float,
    weights: tuple[float, float, float],
    generator_rng: torch.Generator,
) -> list[dict[str, float]]:
    """ESRGAN's second stage: alternate one critic update and one generator update per step.

    `weights` are (L1, perceptual, adversarial), ESRGAN's 0.01 / 1 / 0.005. Returns each step's losses."""
    w_l1, w_perceptual, w_adversarial = weights
    g_opt = torch.optim.Adam(generator.parameters(), lr=lr, betas=(0.9, 0.99))
    d_opt = torch.optim.Adam(critic.parameters(), lr=lr, betas=(0.9, 0.99))
    generator.train()
    history = []
    for step in range(1, steps + 1):
        lr_patch, hr_patch = batches.train_batch(batch_size, generator_rng)  # (B, 3, p, p), (B, 3, sp, sp)
        sr = generator(lr_patch)[0]
        # the critic learns to rank true patches above generated ones
        d_loss, _ = relativistic_losses(critic(hr_patch), critic(sr.detach()))
        d_opt.zero_grad(set_to_none=True)
        d_loss.backward()
        d_opt.step()
        # the generator learns to be ranked above the true patches, while staying close to them
        real_logit, real_maps = critic.features(hr_patch)
        fake_logit, fake_maps = critic.features(sr)
        _, adversarial = relativistic_losses(real_logit.detach(), fake_logit)
        l1, perceptual = F.l1_loss(sr, hr_patch), feature_matching_loss(fake_maps, real_maps)
        g_loss = w_l1 * l1 + w_perceptual * perceptual + w_adversarial * adversarial
        g_opt.zero_grad(set_to_none=True)
        g_loss.backward()
        g_opt.step()
        history.append(
            {"step": step, "d_loss": d_loss.item(), "l1": l1.item(), "perceptual": perceptual.item()}
            | {"adversarial": adversarial.item()}
        )
    generator.eval()
    return history
