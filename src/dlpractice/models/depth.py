"""Depth from one image and from a stereo pair (lab v7).

- MonoDepth: the U-Net of lab v6 (models/unet.py) with one output channel, read as log depth, trained with
  the scale-invariant loss of Eigen et al. (2014): the variance of the log-depth error plus (1 - lam) times
  its squared mean, so a prediction off by one global scale factor costs only the second term.
- block_matching: the classical baseline. For each disparity d the sum of absolute differences (SAD) between
  the left image and the right image shifted d pixels, summed over a window; the best d per pixel, refined to
  a fraction of a pixel by a parabola through the costs at d - 1, d, d + 1.
- StereoNet: a learned cost volume (Kendall et al., 2017, GC-Net; Guo et al., 2019, group-wise correlation).
  A small CNN gives each pixel of both images (at half resolution) a feature vector; the cost volume
  correlates the left features with the right ones shifted by every candidate disparity; 3D convolutions (an
  hourglass down to 1/8) smooth it over space and disparity; upsampled to full resolution, a soft-argmin
  (the expected disparity under a softmax over candidates) reads out a sub-pixel disparity that can be
  trained end to end with a smooth-L1 loss.
Simplified: one scale of features, no refinement network, no left-right consistency check.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.ndimage import uniform_filter
from torch import nn

from dlpractice.models.unet import UNet


def scale_invariant_loss(log_pred: torch.Tensor, log_true: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Eigen et al.'s loss on log depths (B, H, W): mean of d^2 minus lam times (mean of d)^2 per image,
    where d = log_pred - log_true; averaged over the batch. lam = 1 ignores global scale, lam = 0 is MSE."""
    # BEGIN EXERCISE v7.2: the scale-invariant loss of log depths, per image, then averaged over the batch
    d = (log_pred - log_true).flatten(1)  # (B, H*W)
    per_image = (d**2).mean(1) - lam * d.mean(1) ** 2
    return per_image.mean()
    # END EXERCISE


class MonoDepth(nn.Module):
    """A U-Net whose single output channel is log depth (metres)."""

    def __init__(self, width: int = 12, depth: int = 3, lam: float = 0.5):
        super().__init__()
        self.unet = UNet(1, width=width, depth=depth)
        self.lam = lam

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, 3, H, W), targets (B, H, W) true depth -> predicted log depth (B, H, W), loss."""
        log_depth = self.unet(x)[0][:, 0]  # (B, H, W)
        loss = None if targets is None else scale_invariant_loss(log_depth, targets.log(), self.lam)
        return log_depth, loss


def block_matching(left: np.ndarray, right: np.ndarray, max_disparity: int, window: int) -> np.ndarray:
    """SAD block matching of a rectified pair (3, H, W) -> left disparity (H, W), float, in pixels."""
    _, height, width = left.shape
    costs = np.full((max_disparity, height, width), np.inf, np.float32)
    for d in range(max_disparity):
        diff = np.abs(left[:, :, d:] - right[:, :, : width - d]).sum(0)  # (H, W - d): pixel x meets x - d
        costs[d, :, d:] = uniform_filter(diff, window, mode="nearest")
    best = costs.argmin(0)  # (H, W)
    inner = np.clip(best, 1, max_disparity - 2)
    below, at, above = (np.take_along_axis(costs, (inner + k)[None], 0)[0] for k in (-1, 0, 1))
    with np.errstate(invalid="ignore", divide="ignore"):
        offset = 0.5 * (below - above) / (below - 2 * at + above)  # the vertex of the parabola
    refine = (best == inner) & np.isfinite(offset) & (np.abs(offset) <= 1)
    return np.where(refine, best + offset, best).astype(np.float32)


def cost_volume(left: torch.Tensor, right: torch.Tensor, max_disparity: int, groups: int) -> torch.Tensor:
    """Group-wise correlation of features (B, C, H, W) -> (B, groups, D, H, W): entry [b, g, d, y, x] is the
    mean over group g's C/groups channels of left[b, :, y, x] * right[b, :, y, x - d]; 0 where x - d < 0."""
    # BEGIN EXERCISE v7.1: the cost volume: left features against right features shifted by each disparity
    b, c, h, w = left.shape
    volume = left.new_zeros(b, groups, max_disparity, h, w)
    for d in range(max_disparity):
        product = left[..., d:] * right[..., : w - d]  # (B, C, H, W - d): pixel x meets x - d
        volume[:, :, d, :, d:] = product.view(b, groups, c // groups, h, w - d).mean(2)
    return volume
    # END EXERCISE


def conv3d(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm3d(c_out), nn.ReLU())


class StereoNet(nn.Module):
    """Features, group-wise correlation cost volume, 3D hourglass, soft-argmin. Input: the left and right
    images stacked on channels (B, 6, H, W); H and W must divide by 16, max_disparity by 16."""

    def __init__(self, max_disparity: int = 48, features: int = 16, groups: int = 4, width: int = 8):
        super().__init__()
        if max_disparity % 16 or features % groups:
            raise ValueError("max_disparity must divide by 16 and features by groups")
        self.max_disparity, self.groups = max_disparity, groups
        self.features = nn.Sequential(
            nn.Conv2d(3, features, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, features, 3, stride=2, padding=1),  # features at half resolution
            nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=2, dilation=2),
            nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=4, dilation=4),
            nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1),
        )
        self.enter = nn.Sequential(conv3d(groups, width), conv3d(width, width))
        self.down1 = nn.Sequential(conv3d(width, 2 * width, stride=2), conv3d(2 * width, 2 * width))
        self.down2 = nn.Sequential(conv3d(2 * width, 4 * width, stride=2), conv3d(4 * width, 4 * width))
        self.up2 = conv3d(4 * width, 2 * width)  # at 1/8, then upsampled to 1/4
        self.up1 = conv3d(2 * width, width)  # at 1/4, then upsampled to 1/2
        self.score = nn.Conv3d(width, 1, 3, padding=1)

    def embed(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) -> (B, F, H/2, W/2); each image standardised first, so exposure does not count."""
        mean = image.mean((2, 3), keepdim=True)
        std = image.std((2, 3), keepdim=True) + 1e-3
        return self.features((image - mean) / std)

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, 6, H, W) left and right images, targets (B, H, W) true disparity -> disparity (B, H, W), loss
        (smooth L1 over the pixels whose true disparity is inside the candidates)."""
        left, right = self.embed(x[:, :3]), self.embed(x[:, 3:])  # (B, F, H/2, W/2)
        volume = cost_volume(left, right, self.max_disparity // 2, self.groups)  # (B, G, D/2, H/2, W/2)
        half = self.enter(volume)  # (B, w, D/2, H/2, W/2)
        quarter = self.down1(half)  # (B, 2w, D/4, H/4, W/4)
        eighth = self.down2(quarter)  # (B, 4w, D/8, H/8, W/8)
        quarter = F.interpolate(self.up2(eighth), size=quarter.shape[2:], mode="trilinear") + quarter
        half = F.interpolate(self.up1(quarter), size=half.shape[2:], mode="trilinear") + half
        scores = F.interpolate(self.score(half), size=(self.max_disparity, *x.shape[2:]), mode="trilinear")
        probs = scores[:, 0].softmax(1)  # (B, D, H, W)
        candidates = torch.arange(self.max_disparity, dtype=probs.dtype, device=probs.device)
        disparity = (probs * candidates[:, None, None]).sum(1)  # soft-argmin: the expected disparity
        if targets is None:
            return disparity, None
        valid = (targets >= 0) & (targets < self.max_disparity - 1)
        return disparity, F.smooth_l1_loss(disparity[valid], targets[valid])

    @torch.no_grad()
    def predict(self, left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
        """Disparity (H, W) of one pair (3, H, W) of any size: padded on the right and bottom to a multiple
        of 16 by repeating the border, then cropped back."""
        self.eval()
        h, w = left.shape[1:]
        pad = (0, -w % 16, 0, -h % 16)
        pair = F.pad(torch.cat([left, right])[None], pad, mode="replicate")  # (1, 6, H', W')
        return self(pair)[0][0, :h, :w]
