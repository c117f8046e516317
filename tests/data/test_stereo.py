"""The motorcycle pair scaled down: block means, disparities divided by the factor, unknown stays unknown."""

from __future__ import annotations

import numpy as np

from dlpractice.data.stereo import block_mean, motorcycle


def test_block_mean_averages_blocks_and_an_inf_poisons_its_block() -> None:
    values = np.arange(16, dtype=float).reshape(4, 4)
    assert np.array_equal(block_mean(values, 2), [[2.5, 4.5], [10.5, 12.5]])
    values[0, 0] = np.inf
    assert np.isinf(block_mean(values, 2)[0, 0]) and np.isfinite(block_mean(values, 2)[1]).all()
    assert block_mean(np.ones((5, 7, 3)), 2).shape == (2, 3, 3)


def test_motorcycle_at_half_size_keeps_disparities_in_scaled_pixels() -> None:
    full_left, _, full_truth = motorcycle(1)
    left, right, truth = motorcycle(2)
    assert full_left.shape == (3, 500, 741) and left.shape == right.shape == (3, 250, 370)
    assert left.dtype == np.float32 and left.min() >= 0 and left.max() <= 1
    known = np.isfinite(truth)
    assert 0.8 < known.mean() < 0.9  # about 7 % of full-size pixels are unknown, more blocks touch one
    full_known = full_truth[np.isfinite(full_truth)]
    assert abs(truth[known].max() - full_known.max() / 2) < 1
