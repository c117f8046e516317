"""Image-quality metrics of super-resolution as papers report them: PSNR and SSIM on the luma (Y) channel.

The convention (SRCNN onwards): convert RGB to Y with ITU-R BT.601 (MATLAB's rgb2ycbcr, Y in [16, 235]),
cut `border` pixels (the scale) off every side, where the network never saw both neighbours, and score
with a peak of 255. SSIM is Wang et al. (2004): an 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
K2 = 0.03, population (not sample) statistics; both are checked against scikit-image on the same inputs.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

# BT.601 luma of RGB in [0, 1], offset to studio range: MATLAB's rgb2ycbcr(...)(:, :, 1) * 255
Y_WEIGHTS = np.array([65.481, 128.553, 24.966])
Y_OFFSET = 16.0


def rgb_to_y(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) RGB -> float64 (H, W) luma in [16, 235]."""
    return Y_OFFSET + (image.astype(np.float64) / 255) @ Y_WEIGHTS


def shave(image: np.ndarray, border: int) -> np.ndarray:
    return image[border:-border, border:-border] if border else image


def psnr_y(output: np.ndarray, target: np.ndarray, border: int) -> float:
    """PSNR in dB between two uint8 RGB images, on Y with `border` pixels cut off each side (peak 255)."""
    # BEGIN EXERCISE v8.1: Y of both (rgb_to_y), `border` pixels shaved off each side, 10 log10(255^2 / MSE)
    a, b = shave(rgb_to_y(output), border), shave(rgb_to_y(target), border)
    mse = np.mean((a - b) ** 2)
    return float(10 * np.log10(255.0**2 / mse))
    # END EXERCISE


def gaussian_taps(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """(size,) normalised 1-D Gaussian: SSIM's 2-D window is its outer product, so blurring is two passes."""
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_y(output: np.ndarray, target: np.ndarray, border: int) -> float:
    """Mean SSIM between two uint8 RGB images, on Y with `border` pixels cut off (data range 255)."""
    a = torch.from_numpy(shave(rgb_to_y(output), border))[None, None]  # (1, 1, H, W)
    b = torch.from_numpy(shave(rgb_to_y(target), border))[None, None]
    taps = gaussian_taps()

    def blur(x: torch.Tensor) -> torch.Tensor:  # local means over windows wholly inside the image
        return F.conv2d(F.conv2d(x, taps.view(1, 1, -1, 1)), taps.view(1, 1, 1, -1))

    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = blur(a), blur(b)
    var_a, var_b = blur(a * a) - mu_a**2, blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())
