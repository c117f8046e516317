"""PSNR and SSIM on the Y channel against scikit-image on the same inputs."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2ycbcr
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from dlpractice.metrics.image_quality import psnr_y, rgb_to_y, shave, ssim_y


def noisy_pair(seed: int, shape=(40, 52, 3)) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    smooth = np.cumsum(rng.normal(0, 8, shape), axis=1) % 256  # structure, not only noise
    target = smooth.astype(np.uint8)
    output = np.clip(target + rng.normal(0, 12, shape), 0, 255).astype(np.uint8)
    return output, target


def test_luma_is_matlabs_rgb2ycbcr_y() -> None:
    image = noisy_pair(0)[1]
    assert np.allclose(rgb_to_y(image), rgb2ycbcr(image)[..., 0])
    assert rgb_to_y(np.zeros((1, 1, 3), np.uint8))[0, 0] == pytest.approx(16)
    assert rgb_to_y(np.full((1, 1, 3), 255, np.uint8))[0, 0] == pytest.approx(235)


@pytest.mark.parametrize("border", [0, 4])
def test_psnr_and_ssim_agree_with_scikit_image(border: int) -> None:
    for seed in range(3):
        output, target = noisy_pair(seed)
        y_out, y_target = shave(rgb_to_y(output), border), shave(rgb_to_y(target), border)
        assert psnr_y(output, target, border) == pytest.approx(
            peak_signal_noise_ratio(y_target, y_out, data_range=255), abs=1e-10
        )
        reference = structural_similarity(
            y_target, y_out, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        assert ssim_y(output, target, border) == pytest.approx(reference, abs=1e-10)


def test_identical_images_score_infinite_psnr_and_unit_ssim() -> None:
    image = noisy_pair(1)[1]
    with np.errstate(divide="ignore"):
        assert psnr_y(image, image, 4) == np.inf
    assert ssim_y(image, image, 4) == pytest.approx(1.0)
