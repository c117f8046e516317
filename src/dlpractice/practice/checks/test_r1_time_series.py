"""Checks of lab r1: sliding windows without look-ahead, MASE scaled by the in-sample seasonal-naive error,
and the residual z-score measured against the past only; each against the definition written as a loop
and a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("r1.1")
def test_windows_pair_each_origin_with_its_past_and_its_future(impl):
    series = np.arange(20, dtype=np.float64) * 10  # value = 10 * its index: every window shows its steps
    inputs, targets = impl.windows(series, 4, 3, 8, 15)
    assert inputs.shape == (5, 4) and targets.shape == (5, 3), (
        f"targets inside [8, 15) with horizon 3: origins 8..12, so inputs (5, 4) and targets (5, 3); "
        f"got {inputs.shape} and {targets.shape}"
    )
    for i, t in enumerate(range(8, 13)):
        assert_close(inputs[i], series[t - 4 : t], f"input {i} (origin {t}) is series[{t - 4}:{t}]")
        assert_close(targets[i], series[t : t + 3], f"target {i} (origin {t}) is series[{t}:{t + 3}]")
    assert np.all(inputs[:, -1] < targets[:, 0]), "look-ahead: an input window reaches its own targets"


@pytest.mark.exercise("r1.1")
def test_windows_start_where_a_full_past_exists_and_stay_inside_the_span(impl):
    series = np.random.default_rng(0).normal(size=30)
    inputs, targets = impl.windows(series, 6, 2, 0, 30)
    assert len(inputs) == 23, (
        f"a span starting at 0 with lookback 6: the first origin is 6 (a full past), the last 28 (its "
        f"2 targets end at 30): 23 windows, got {len(inputs)}"
    )
    assert_close(inputs[0], series[:6], "the first window's input is series[0:6]")
    assert_close(targets[-1], series[28:], "the last window's targets are the span's last 2 steps")


@pytest.mark.exercise("r1.2")
def test_mase_divides_by_the_seasonal_naive_error_on_the_training_series(impl):
    rng = np.random.default_rng(1)
    steps = np.arange(60)
    y_train = 10 * np.sin(2 * np.pi * steps / 12) + 0.1 * steps + rng.normal(0, 0.5, 60)
    y_true, y_pred = rng.normal(size=(5, 12)), rng.normal(size=(5, 12))
    scale = np.mean([abs(y_train[t] - y_train[t - 12]) for t in range(12, 60)])
    expected = np.mean(np.abs(y_true - y_pred)) / scale
    got = impl.mase(y_true, y_pred, y_train, 12)
    assert got == pytest.approx(expected, rel=1e-9), (
        f"expected {expected:.4f}, got {got:.4f}: the forecast's MAE over mean |y_t - y_(t-12)| of the "
        f"TRAINING series (the seasonal-naive error, period 12, not the one-step naive)"
    )


@pytest.mark.exercise("r1.2")
def test_mase_on_a_hand_computed_case(impl):
    y_train = np.array([1.0, 2.0, 4.0, 7.0])  # period 2: |4 - 1| and |7 - 2|, mean 4
    got = impl.mase(np.array([[3.0, 5.0]]), np.array([[1.0, 9.0]]), y_train, 2)  # MAE (2 + 4) / 2 = 3
    assert got == pytest.approx(0.75), f"MAE 3 over the training seasonal-naive error 4 is 0.75, got {got}"


def direct_zscores(residuals: np.ndarray, window: int) -> np.ndarray:
    out = np.zeros(len(residuals))
    for t in range(window, len(residuals)):
        past = residuals[t - window : t]
        out[t] = abs(residuals[t] - past.mean()) / (past.std() + 1e-8)
    return out


@pytest.mark.exercise("r1.3")
def test_zscores_measure_each_residual_against_the_window_before_it(impl):
    residuals = np.random.default_rng(2).normal(size=50)
    got = np.asarray(impl.residual_zscores(residuals, 8))
    assert got.shape == (50,), f"one score per residual: expected (50,), got {got.shape}"
    assert_close(
        got,
        direct_zscores(residuals, 8),
        "|r_t - mean(r[t-8:t])| / std(r[t-8:t]) (population std), 0 for the first 8 steps",
        atol=1e-6,
    )


@pytest.mark.exercise("r1.3")
def test_zscores_never_look_ahead(impl):
    residuals = np.random.default_rng(3).normal(size=40)
    changed = residuals.copy()
    changed[30:] += 100.0  # a jump from step 30 on
    before, after = (
        np.asarray(impl.residual_zscores(residuals, 10)),
        np.asarray(impl.residual_zscores(changed, 10)),
    )
    assert_close(
        after[:30], before[:30], "a score may not change when only later residuals change", atol=1e-9
    )
    assert after[30] > 20, f"the first step of a jump of 100 stands out against its past: |z| {after[30]:.1f}"
