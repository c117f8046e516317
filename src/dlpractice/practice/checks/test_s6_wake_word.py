"""Checks of lab s6: posterior smoothing, the causal moving average of the last `width` window posteriors
(fewer at the start), against pandas' rolling mean."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlpractice.practice.checks.support import assert_close


def rolling(posteriors: np.ndarray, width: int) -> np.ndarray:
    return pd.Series(posteriors).rolling(width, min_periods=1).mean().to_numpy()


@pytest.mark.exercise("s6.1")
def test_smoothing_is_the_mean_of_the_last_width_posteriors(impl):
    posteriors = np.random.default_rng(0).random(40)
    got = np.asarray(impl.smooth_posteriors(posteriors, 5), dtype=np.float64)
    assert got.shape == (40,), f"one smoothed value per window: expected (40,), got {got.shape}"
    assert_close(
        got, rolling(posteriors, 5), "out[t] = mean(posteriors[t-4 : t+1]): the past 5 windows", rtol=1e-9
    )


@pytest.mark.exercise("s6.1")
def test_the_first_windows_average_what_there_is(impl):
    posteriors = np.array([0.9, 0.3, 0.6, 0.0, 1.0])
    got = np.asarray(impl.smooth_posteriors(posteriors, 3), dtype=np.float64)
    assert_close(
        got, rolling(posteriors, 3), "at t < width the mean of the t + 1 windows so far (no zeros)", rtol=1e-9
    )


@pytest.mark.exercise("s6.1")
def test_width_one_changes_nothing_and_no_future_is_used(impl):
    posteriors = np.random.default_rng(1).random(12)
    assert_close(
        np.asarray(impl.smooth_posteriors(posteriors, 1)), posteriors, "width 1: the posteriors", rtol=1e-9
    )
    changed = posteriors.copy()
    changed[8:] = 1.0
    before = np.asarray(impl.smooth_posteriors(changed, 4))[:8]
    assert_close(
        before,
        np.asarray(impl.smooth_posteriors(posteriors, 4))[:8],
        "causal: later windows change nothing earlier",
        rtol=1e-9,
    )
