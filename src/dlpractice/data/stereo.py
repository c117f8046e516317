"""A real stereo pair with true disparity for lab v7: scikit-image's `stereo_motorcycle` (embedded).

It is the Middlebury 2014 "Motorcycle" pair (Scharstein et al., 2014), 500 x 741, rectified, with the left
view's true disparity from structured light; pixels without a truth are inf. For a CPU it is scaled down by
an integer factor: images averaged over factor x factor blocks, and a block's disparity is the mean of its
pixels' divided by the factor (a pixel shift shrinks with the image), unknown if any of its pixels is.
"""

from __future__ import annotations

import numpy as np


def block_mean(values: np.ndarray, factor: int) -> np.ndarray:
    """(H, W, ...) -> (H // factor, W // factor, ...): the mean of each factor x factor block (edges cut)."""
    h, w = values.shape[0] // factor, values.shape[1] // factor
    blocks = values[: h * factor, : w * factor].reshape(h, factor, w, factor, *values.shape[2:])
    return blocks.mean((1, 3))


def motorcycle(factor: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left and right images (3, H, W) float32 in [0, 1] and left disparity (H, W) in pixels of the scaled
    images, inf where unknown; H, W = 500 // factor, 741 // factor."""
    from skimage.data import stereo_motorcycle

    left, right, disparity = stereo_motorcycle()
    images = [
        block_mean(image.astype(np.float32) / 255, factor).transpose(2, 0, 1) for image in (left, right)
    ]
    scaled = block_mean(disparity.astype(np.float64), factor) / factor  # inf anywhere in a block stays inf
    return images[0], images[1], scaled.astype(np.float32)
