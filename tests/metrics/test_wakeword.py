"""Streaming detection: the moving average against pandas' rolling mean, the refractory period, the
matching of detections to keywords, and the threshold chosen at a false-accept rate."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dlpractice.metrics import wakeword as kws


def test_smoothing_equals_pandas_rolling_mean() -> None:
    posteriors = np.random.default_rng(0).random(50)
    for width in (1, 3, 7):
        expected = pd.Series(posteriors).rolling(width, min_periods=1).mean().to_numpy()
        np.testing.assert_allclose(kws.smooth_posteriors(posteriors, width), expected, rtol=1e-12)


def test_a_single_spike_is_flattened_but_a_run_of_windows_is_not() -> None:
    spike = np.array([0, 0, 1.0, 0, 0])
    run = np.array([0, 1.0, 1.0, 1.0, 0])
    assert kws.smooth_posteriors(spike, 3).max() == pytest.approx(1 / 3)
    assert kws.smooth_posteriors(run, 3).max() == pytest.approx(1.0)


def test_refractory_period_fires_once_per_run() -> None:
    smoothed = np.array([0, 0.9, 0.9, 0.9, 0, 0, 0, 0.9, 0.2])
    np.testing.assert_array_equal(kws.detect(smoothed, 0.5, refractory=3), [1, 7])
    np.testing.assert_array_equal(kws.detect(smoothed, 0.5, refractory=1), [1, 2, 3, 7])
    assert len(kws.detect(smoothed, 0.95, refractory=3)) == 0


def test_matching_counts_each_detection_once() -> None:
    keywords = np.array([[1.0, 1.5], [10.0, 10.5]])
    hits, false = kws.match(np.array([1.8, 2.0, 30.0]), keywords, tolerance=1.0)
    assert (hits, false) == (1, 2)  # 2.0 is inside the first keyword's tolerance, but it was already hit


def test_error_rates_and_threshold_at_a_false_accept_rate() -> None:
    times = np.arange(1, 11, dtype=float)
    positive = kws.StreamScores(
        np.array([0, 0.8, 0, 0, 0.6, 0, 0, 0, 0, 0]), times, np.array([[1.5, 2.0], [4.5, 5.0]]), 10.0
    )
    negative = kws.StreamScores(np.array([0.7, 0, 0, 0.3, 0, 0, 0, 0, 0, 0]), times, np.zeros((0, 2)), 3600.0)
    frr, fa = kws.error_rates([positive], 0.5, refractory=1, tolerance=0.1)
    assert frr == 0.0 and fa == 0.0  # both keywords found, no extra detection
    assert kws.error_rates([negative], 0.25, 1, 0.0)[1] == pytest.approx(2.0)  # 2 false accepts in 1 h
    grid = np.linspace(0.05, 0.95, 19)
    assert kws.threshold_at([negative], 1.0, 1, grid) == pytest.approx(0.35)  # above 0.3: one FA left
    assert kws.threshold_at([negative], 0.0, 1, grid) == pytest.approx(0.75)
    fa_curve, frr_curve = kws.det_curve([positive], [negative], 1, 0.1, grid)
    assert np.all(np.diff(fa_curve) <= 0) and np.all(np.diff(frr_curve) >= 0)  # a trade-off, both monotone
