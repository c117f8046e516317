"""Checks of lab v8: PSNR on the Y channel with the border cut, and the pixel shuffle."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F


@pytest.mark.exercise("v8.1")
def test_psnr_is_on_luma_with_the_border_cut(impl) -> None:
    """PSNR = 10 log10(255^2 / MSE) of the two images' Y channels, `border` pixels cut off every side."""
    rng = np.random.default_rng(0)
    target = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
    output = target.copy()
    output[6:14, 6:18] = np.clip(output[6:14, 6:18].astype(int) + 20, 0, 255)  # an error inside the border
    y_out, y_target = impl.rgb_to_y(output)[4:-4, 4:-4], impl.rgb_to_y(target)[4:-4, 4:-4]
    expected = 10 * np.log10(255**2 / np.mean((y_out - y_target) ** 2))
    got = impl.psnr_y(output, target, 4)
    assert np.isclose(got, expected), (
        f"expected {expected:.4f} dB, got {got:.4f}: the MSE is over the Y channel (rgb_to_y) of both "
        "images with `border` rows and columns cut off each side, and the peak is 255"
    )
    edges = target.copy()
    edges[:4] = 255 - edges[:4]  # a change confined to the cut border
    edges[8, 8] = edges[8, 8] // 2
    inside_only = 10 * np.log10(
        255**2 / np.mean((impl.rgb_to_y(edges) - impl.rgb_to_y(target))[4:-4, 4:-4] ** 2)
    )
    assert np.isclose(impl.psnr_y(edges, target, 4), inside_only), (
        "an error in the top 4 rows must not count with border=4: cut the border off before the MSE"
    )
    grey = np.full((12, 12, 3), 100, np.uint8)
    blue = grey.copy()
    blue[..., 2] = 200  # +100 in blue moves Y by 100 * 24.966 / 255 = 9.79 only
    assert np.isclose(impl.psnr_y(blue, grey, 0), 10 * np.log10(255**2 / (100 * 24.966 / 255) ** 2)), (
        "a change of blue alone should count by its weight in luma (24.966 / 255), not as a change of "
        "all three RGB channels"
    )


@pytest.mark.exercise("v8.2")
def test_pixel_shuffle_matches_torch(impl) -> None:
    """(B, C * s^2, H, W) -> (B, C, H * s, W * s) exactly as torch.nn.functional.pixel_shuffle."""
    x = torch.randn(2, 3 * 16, 5, 7)
    got = impl.pixel_shuffle(x, 4)
    assert got.shape == (2, 3, 20, 28), f"expected shape (2, 3, 20, 28), got {tuple(got.shape)}"
    assert torch.equal(got, F.pixel_shuffle(x, 4)), (
        "values land in the wrong pixels: channel c * s^2 + i * s + j of input pixel (h, w) goes to "
        "output pixel (h * s + i, w * s + j) of channel c"
    )
    y = torch.arange(8.0).reshape(1, 8, 1, 1)
    assert torch.equal(impl.pixel_shuffle(y, 2), F.pixel_shuffle(y, 2)), (
        "with 8 channels and s = 2, channels 0-3 fill channel 0's 2x2 block and 4-7 channel 1's"
    )
