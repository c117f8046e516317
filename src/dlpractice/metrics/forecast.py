"""Forecast errors and anomaly-detection scores, written out (lab r1).

Forecasts are arrays (N, H): N forecast origins, H steps ahead each. The point errors (MAE, RMSE) are
checked against scikit-learn, sMAPE against torchmetrics (which returns a fraction in [0, 2]; ours is in
percent, [0, 200]), MASE against its formula written directly, average precision against scikit-learn.

MASE divides a forecast's MAE by the in-sample MAE of the seasonal-naive forecast on the TRAINING series
(Hyndman & Koehler, 2006), so it does not depend on the series' unit and 1 means "as good, on test, as
repeating last season was on train". sMAPE is undefined where truth and forecast are both 0.
"""

from __future__ import annotations

import numpy as np

from dlpractice.errors import DlpError


def mae(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y_true - y_pred)))


def rmse(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


def smape(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Symmetric MAPE in percent: 100 * mean(2 |y - f| / (|y| + |f|))."""
    denominator = np.abs(y_true) + np.abs(y_pred)
    if np.any(denominator == 0):
        raise DlpError("sMAPE is undefined where the truth and the forecast are both 0")
    return float(100 * np.mean(2 * np.abs(y_true - y_pred) / denominator))


def mase(y_true: np.ndarray, y_pred: np.ndarray, y_train: np.ndarray, period: int) -> float:
    """MAE of the forecast over the in-sample MAE of the seasonal-naive forecast (y_t = y_{t-period}) on the
    training series `y_train` (T,)."""
    if len(y_train) <= period:
        raise DlpError(f"MASE needs more than {period} training steps to scale by, got {len(y_train)}")
    # BEGIN EXERCISE r1.2: MAE of the forecast divided by the training series' seasonal-naive MAE
    scale = np.mean(np.abs(y_train[period:] - y_train[:-period]))  # y_t - y_{t-period} on train
    return float(np.mean(np.abs(y_true - y_pred)) / scale)
    # END EXERCISE


def mae_by_horizon(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(H,) the MAE of the forecasts h steps ahead, over the N origins of (N, H) arrays."""
    return np.mean(np.abs(y_true - y_pred), axis=0)


def interval_coverage(y_true: np.ndarray, lower: np.ndarray, upper: np.ndarray) -> float:
    """Share of true values inside [lower, upper]."""
    return float(np.mean((y_true >= lower) & (y_true <= upper)))


def precision_recall_f1(labels: np.ndarray, flagged: np.ndarray) -> tuple[float, float, float]:
    """Step-wise precision, recall and F1 of boolean flags against boolean labels (0 where undefined)."""
    hits = float(np.sum(labels & flagged))
    precision = hits / max(1, int(flagged.sum()))
    recall = hits / max(1, int(labels.sum()))
    f1 = 2 * precision * recall / (precision + recall) if hits else 0.0
    return precision, recall, f1


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold (flag where score >= it) of the highest F1 on these labels: chosen on
    validation, then applied unchanged to test."""
    candidates = np.unique(scores)
    if len(candidates) > 2000:  # F1 changes little between neighbouring quantiles
        candidates = np.unique(np.quantile(scores, np.linspace(0, 1, 2001)))
    f1s = [precision_recall_f1(labels, scores >= c)[2] for c in candidates]
    return float(candidates[int(np.argmax(f1s))])


def event_recall(events: list[tuple[int, int, str]], flagged: np.ndarray, start: int, stop: int) -> float:
    """Share of the anomalies inside [start, stop) with at least one flagged step (flags indexed from
    `start`); NaN if there are none."""
    inside = [(b, e) for b, e, _ in events if start <= b and e <= stop]
    if not inside:
        return float("nan")
    return float(np.mean([flagged[b - start : e - start].any() for b, e in inside]))


def average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the precision-recall curve as scikit-learn sums it: sum_k (R_k - R_{k-1}) P_k over the
    distinct score thresholds k, highest first (tied scores enter together)."""
    if not labels.any():
        raise DlpError("average precision needs at least one positive label")
    order = np.argsort(-scores, kind="stable")
    labels, scores = labels[order].astype(np.float64), scores[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(scores)), len(scores) - 1]  # where each distinct score ends
    true_positives = np.cumsum(labels)[last_of_tie]
    precision = true_positives / (last_of_tie + 1)
    recall = true_positives / labels.sum()
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))
