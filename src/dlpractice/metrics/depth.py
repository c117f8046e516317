"""Depth and disparity errors (lab v7), over the pixels whose truth is known (finite and, for depth, > 0).

Depth (monocular): AbsRel, the mean of |pred - true| / true; RMSE in metres; delta < 1.25, the share of pixels
whose ratio max(pred / true, true / pred) is under 1.25. Disparity (stereo): EPE, the mean absolute error in
pixels (the end-point error of a 1D flow), and bad > t, the share of pixels off by more than t pixels.
"""

from __future__ import annotations

import numpy as np


def known(true: np.ndarray) -> np.ndarray:
    """Pixels with a truth: stereo benchmarks mark the others inf or NaN (occluded, unmatched)."""
    return np.isfinite(true)


def abs_rel(pred: np.ndarray, true: np.ndarray) -> float:
    ok = known(true) & (true > 0)
    return float(np.mean(np.abs(pred[ok] - true[ok]) / true[ok]))


def rmse(pred: np.ndarray, true: np.ndarray) -> float:
    ok = known(true)
    return float(np.sqrt(np.mean((pred[ok] - true[ok]) ** 2)))


def delta_accuracy(pred: np.ndarray, true: np.ndarray, threshold: float = 1.25) -> float:
    ok = known(true) & (true > 0) & (pred > 0)
    ratio = np.maximum(pred[ok] / true[ok], true[ok] / pred[ok])
    return float(np.mean(ratio < threshold))


def end_point_error(pred: np.ndarray, true: np.ndarray) -> float:
    ok = known(true)
    return float(np.mean(np.abs(pred[ok] - true[ok])))


def bad_pixel_rate(pred: np.ndarray, true: np.ndarray, threshold: float = 2.0) -> float:
    ok = known(true)
    return float(np.mean(np.abs(pred[ok] - true[ok]) > threshold))
