"""Depth and disparity errors against torchmetrics on the same pixels; unknown truth (inf, NaN) is skipped."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional import (
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
)

from dlpractice.metrics import depth as dm


@pytest.fixture
def depths() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    true = rng.uniform(1, 10, (4, 16, 16)).astype(np.float32)
    pred = (true * rng.uniform(0.7, 1.4, true.shape)).astype(np.float32)
    return pred, true


def test_abs_rel_and_rmse_equal_torchmetrics_mape_and_rmse(depths) -> None:
    pred, true = depths
    p, t = torch.as_tensor(pred, dtype=torch.float64), torch.as_tensor(true, dtype=torch.float64)
    assert dm.abs_rel(pred, true) == pytest.approx(float(mean_absolute_percentage_error(p, t)), abs=1e-6)
    assert dm.rmse(pred, true) == pytest.approx(float(mean_squared_error(p, t, squared=False)), abs=1e-5)


def test_delta_accuracy_counts_ratios_under_the_threshold() -> None:
    true = np.array([1.0, 2.0, 4.0, 8.0])
    pred = np.array([1.2, 1.5, 5.1, 8.0])  # ratios 1.2, 1.333, 1.275, 1
    assert dm.delta_accuracy(pred, true) == pytest.approx(0.5)
    assert dm.delta_accuracy(pred, true, threshold=1.3) == pytest.approx(0.75)


def test_disparity_errors_skip_unknown_pixels_and_match_torchmetrics_mae() -> None:
    rng = np.random.default_rng(1)
    true = rng.uniform(0, 30, (20, 30)).astype(np.float32)
    pred = true + rng.normal(0, 2, true.shape).astype(np.float32)
    with_holes = true.copy()
    with_holes[:5] = np.inf  # as scikit-image's motorcycle marks pixels without a truth
    with_holes[5, :3] = np.nan
    known = np.isfinite(with_holes)
    reference = float(mean_absolute_error(torch.as_tensor(pred[known]), torch.as_tensor(true[known])))
    assert dm.end_point_error(pred, with_holes) == pytest.approx(reference, abs=1e-5)
    expected_bad = np.mean(np.abs(pred[known] - true[known]) > 2)
    assert dm.bad_pixel_rate(pred, with_holes) == pytest.approx(expected_bad)
    assert dm.bad_pixel_rate(true, with_holes) == 0.0
