"""Lab r1's hand-written forecast errors and detection scores against the reference libraries: MAE and RMSE
against scikit-learn, sMAPE against torchmetrics (a fraction there, percent here), MASE against its formula
written as a loop, average precision and precision / recall / F1 against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import (
    average_precision_score,
    f1_score,
    mean_absolute_error,
    mean_squared_error,
    precision_score,
    recall_score,
)
from torchmetrics.regression import SymmetricMeanAbsolutePercentageError

from dlpractice.errors import DlpError
from dlpractice.metrics import forecast as fm

RNG = np.random.default_rng(0)
TRUTH = RNG.uniform(1, 10, (40, 6))  # (N, H) positive, so sMAPE is defined
FORECAST = TRUTH + RNG.normal(0, 1, (40, 6))


def test_mae_and_rmse_match_scikit_learn() -> None:
    assert fm.mae(TRUTH, FORECAST) == pytest.approx(mean_absolute_error(TRUTH.ravel(), FORECAST.ravel()))
    rmse = np.sqrt(mean_squared_error(TRUTH.ravel(), FORECAST.ravel()))
    assert fm.rmse(TRUTH, FORECAST) == pytest.approx(rmse)


def test_smape_is_torchmetrics_in_percent() -> None:
    reference = SymmetricMeanAbsolutePercentageError()(torch.tensor(FORECAST), torch.tensor(TRUTH))
    assert fm.smape(TRUTH, FORECAST) == pytest.approx(100 * float(reference), rel=1e-6)
    assert fm.smape(np.array([1.0]), np.array([3.0])) == pytest.approx(100.0)  # 2 * 2 / 4
    with pytest.raises(DlpError, match="both 0"):
        fm.smape(np.zeros(2), np.zeros(2))


def test_mase_matches_the_formula_and_one_means_the_training_seasonal_naive_error() -> None:
    y_train = RNG.normal(size=50).cumsum()
    scale = np.mean([abs(y_train[t] - y_train[t - 7]) for t in range(7, 50)])
    expected = np.mean(np.abs(TRUTH - FORECAST)) / scale
    assert fm.mase(TRUTH, FORECAST, y_train, 7) == pytest.approx(expected)
    # the seasonal-naive forecast of the training series itself scores exactly 1
    assert fm.mase(y_train[7:], y_train[:-7], y_train, 7) == pytest.approx(1.0)
    with pytest.raises(DlpError, match="more than 7 training steps"):
        fm.mase(TRUTH, FORECAST, y_train[:7], 7)


def test_mae_by_horizon_averages_over_origins() -> None:
    by_step = fm.mae_by_horizon(TRUTH, FORECAST)
    assert by_step.shape == (6,)
    assert by_step[2] == pytest.approx(mean_absolute_error(TRUTH[:, 2], FORECAST[:, 2]))
    assert by_step.mean() == pytest.approx(fm.mae(TRUTH, FORECAST))


def test_interval_coverage_counts_truths_inside_the_bounds() -> None:
    truth = np.array([1.0, 2.0, 3.0, 4.0])
    assert fm.interval_coverage(truth, truth - 1, np.array([2.0, 3.0, 2.5, 5.0])) == 0.75


def test_precision_recall_f1_match_scikit_learn() -> None:
    labels, flagged = RNG.random(300) < 0.2, RNG.random(300) < 0.3
    got = fm.precision_recall_f1(labels, flagged)
    expected = (precision_score(labels, flagged), recall_score(labels, flagged), f1_score(labels, flagged))
    assert got == pytest.approx(expected)
    assert fm.precision_recall_f1(labels, np.zeros(300, bool)) == (0.0, 0.0, 0.0)


@pytest.mark.parametrize("ties", [False, True])
def test_average_precision_matches_scikit_learn(ties: bool) -> None:
    labels = RNG.random(500) < 0.1
    scores = RNG.normal(size=500) + 1.5 * labels
    if ties:  # rounded scores: many thresholds hold several steps at once
        scores = np.round(scores, 1)
    assert fm.average_precision(labels, scores) == pytest.approx(average_precision_score(labels, scores))
    with pytest.raises(DlpError, match="positive"):
        fm.average_precision(np.zeros(3, bool), scores[:3])


def test_best_f1_threshold_separates_a_separable_split() -> None:
    labels = np.array([False] * 20 + [True] * 5)
    scores = np.r_[RNG.uniform(0, 1, 20), RNG.uniform(2, 3, 5)]
    threshold = fm.best_f1_threshold(labels, scores)
    assert fm.precision_recall_f1(labels, scores >= threshold)[2] == 1.0


def test_event_recall_counts_events_with_a_flag_inside_the_span() -> None:
    events = [(2, 4, "shift"), (10, 11, "spike"), (13, 16, "season"), (30, 31, "spike")]
    flagged = np.zeros(10, bool)  # steps 8..17
    flagged[[2, 7]] = True  # steps 10 and 15
    assert fm.event_recall(events, flagged, 8, 18) == 1.0  # (2, 4) and (30, 31) lie outside
    flagged[7] = False
    assert fm.event_recall(events, flagged, 8, 18) == 0.5
    assert np.isnan(fm.event_recall(events, flagged, 18, 28))
