"""Lab r1's series: the two real ones statsmodels ships (offline), chronological splits, sliding windows
against NumPy's sliding_window_view, and the generated series whose labels match its injected events."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.data import series as ts
from dlpractice.errors import DlpError


def test_co2_is_monthly_without_gaps() -> None:
    co2 = ts.load_co2()
    assert len(co2.values) == 526 and co2.period == 12 and not np.isnan(co2.values).any()
    assert co2.years[0] == pytest.approx(1958 + 2 / 12)  # March 1958
    assert 310 < co2.values[0] < 320 and 365 < co2.values[-1] < 375  # ppm, rising
    assert np.allclose(np.diff(co2.years), 1 / 12)


def test_sunspots_are_yearly_from_1700() -> None:
    sunspots = ts.load_sunspots()
    assert len(sunspots.values) == 309 and sunspots.period == 11
    assert sunspots.years[0] == 1700 and sunspots.years[-1] == 2008 and sunspots.values.min() >= 0


def test_split_points_are_chronological_and_refuse_an_empty_train_span() -> None:
    assert ts.split_points(100, 0.15, 0.15) == (70, 85)
    with pytest.raises(DlpError, match="no training steps"):
        ts.split_points(100, 0.5, 0.5)


def test_windows_match_sliding_window_view_and_their_origins() -> None:
    series = np.random.default_rng(0).normal(size=50)
    inputs, targets = ts.windows(series, 5, 3, 20, 40)
    every = np.lib.stride_tricks.sliding_window_view(series, 8)  # rows: series[s : s + 8]
    origins = ts.origins(5, 3, 20, 40)
    assert origins[0] == 20 and origins[-1] == 37 and len(origins) == len(inputs)
    np.testing.assert_array_equal(inputs, every[origins - 5, :5])
    np.testing.assert_array_equal(targets, every[origins - 5, 5:])
    with pytest.raises(DlpError, match="holds no window"):
        ts.windows(series, 5, 3, 40, 42)


def test_generated_series_labels_exactly_its_events() -> None:
    gen = ts.generate_anomalies(2000, seed=3)
    assert len(gen.values) == len(gen.labels) == 2000 and gen.period == 24
    marked = np.zeros(2000, bool)
    for begin, end, kind in gen.events:
        assert kind in ts.KINDS and (end - begin == 1) == (kind == "spike")
        marked[begin:end] = True
    np.testing.assert_array_equal(gen.labels, marked)
    assert len(gen.events) == 9  # one in each stretch of 200 steps but the first
    assert 0.02 < gen.labels.mean() < 0.12  # rare: flagging every step is a poor detector
    again = ts.generate_anomalies(2000, seed=3)
    np.testing.assert_array_equal(again.values, gen.values)  # seeded
    with pytest.raises(DlpError, match="too short"):
        ts.generate_anomalies(300, seed=0)
