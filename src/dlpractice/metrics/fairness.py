"""Group fairness of a binary classifier, written by hand and checked against fairlearn.metrics
(tests/metrics/test_fairness.py), and one mitigation: a decision threshold per group.

Per group g: the selection rate P(pred = 1 | g), the true-positive rate P(pred = 1 | y = 1, g) and the
false-positive rate P(pred = 1 | y = 0, g). Demographic parity asks for equal selection rates; its
difference is the largest gap between groups. Equalised odds (Hardt et al., 2016) asks for equal TPR and
equal FPR; its difference is the larger of the two gaps (fairlearn's definition).
The mitigation (Hardt et al.'s post-processing, without their randomisation) picks one threshold on the
model's score per group: among candidate pairs (quantiles of each group's scores), the most accurate one
whose equalised-odds difference stays within a tolerance on the validation split; the test split then
says what it costs and buys. fairlearn's ThresholdOptimizer does the same with randomised thresholds.
Simplified: two groups for the mitigation (the metrics take any number).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin

from dlpractice.errors import DlpError


def group_rates(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> dict[int, dict[str, float]]:
    """{group: {"selection_rate", "tpr", "fpr", "accuracy", "count"}} of 0/1 predictions."""
    rates = {}
    for g in np.unique(group):
        y, p = y_true[group == g], y_pred[group == g]
        rates[int(g)] = {
            "selection_rate": float(p.mean()),
            "tpr": float(p[y == 1].mean()) if (y == 1).any() else float("nan"),
            "fpr": float(p[y == 0].mean()) if (y == 0).any() else float("nan"),
            "accuracy": float((p == y).mean()),
            "count": float(len(y)),
        }
    return rates


def parity_differences(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> tuple[float, float]:
    """(demographic-parity difference, equalised-odds difference) of 0/1 predictions over the groups."""
    # BEGIN EXERCISE p6.3: the largest gap between groups in selection rate; the larger of the TPR, FPR gaps
    rates = group_rates(y_true, y_pred, group).values()

    def gap(name: str) -> float:
        values = [r[name] for r in rates]
        return max(values) - min(values)

    return gap("selection_rate"), max(gap("tpr"), gap("fpr"))
    # END EXERCISE


def demographic_parity_difference(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> float:
    return parity_differences(y_true, y_pred, group)[0]


def equalized_odds_difference(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> float:
    return parity_differences(y_true, y_pred, group)[1]


@dataclass(frozen=True)
class Outcome:
    """How one decision rule does on one split."""

    accuracy: float
    dp_difference: float
    eo_difference: float


def outcome(y_true: np.ndarray, y_pred: np.ndarray, group: np.ndarray) -> Outcome:
    dp, eo = parity_differences(y_true, y_pred, group)
    return Outcome(float((y_true == y_pred).mean()), dp, eo)


def per_group_predictions(scores: np.ndarray, group: np.ndarray, thresholds: tuple[float, ...]) -> np.ndarray:
    """1 where a row's score reaches its group's threshold: (N,) int64."""
    return (scores >= np.asarray(thresholds)[group]).astype(np.int64)


def candidate_counts(
    scores: np.ndarray, y: np.ndarray, candidates: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each candidate threshold (C,): true positives, false positives and correct predictions."""
    chosen = scores[None, :] >= candidates[:, None]  # (C, N)
    tp = (chosen & (y == 1)).sum(1)
    fp = (chosen & (y == 0)).sum(1)
    return tp, fp, tp + ((~chosen) & (y == 0)).sum(1)


def fair_thresholds(
    scores: np.ndarray, y: np.ndarray, group: np.ndarray, tolerance: float, n_candidates: int = 101
) -> tuple[float, float]:
    """The most accurate pair of group thresholds whose equalised-odds difference is at most `tolerance`
    on these rows (the least unfair pair if none is). Every pair of candidates is scored at once."""
    if set(np.unique(group).tolist()) != {0, 1}:
        raise DlpError("per-group thresholds need exactly two groups, 0 and 1")
    rates, correct, grids = [], [], []
    for g in (0, 1):
        s, t = scores[group == g], y[group == g]
        grid = np.quantile(s, np.linspace(0, 1, n_candidates))
        grid = np.append(grid, np.inf)  # "approve nobody" is a candidate too
        tp, fp, right = candidate_counts(s, t, grid)
        rates.append((tp / max((t == 1).sum(), 1), fp / max((t == 0).sum(), 1)))
        correct.append(right)
        grids.append(grid)
    gap_tpr = np.abs(rates[0][0][:, None] - rates[1][0][None, :])  # (C0, C1)
    gap_fpr = np.abs(rates[0][1][:, None] - rates[1][1][None, :])
    eod = np.maximum(gap_tpr, gap_fpr)
    accuracy = (correct[0][:, None] + correct[1][None, :]) / len(y)
    allowed = eod <= tolerance
    score = np.where(allowed, accuracy, -np.inf) if allowed.any() else -eod
    i, j = np.unravel_index(np.argmax(score), score.shape)
    return float(grids[0][i]), float(grids[1][j])


def tradeoff_curve(
    val: tuple[np.ndarray, np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray, np.ndarray],
    tolerances: tuple[float, ...],
) -> list[tuple[float, Outcome]]:
    """(tolerance, test outcome) of the thresholds chosen on validation (scores, y, group) per tolerance."""
    curve = []
    for tolerance in tolerances:
        pair = fair_thresholds(*val, tolerance)
        scores, y, group = test
        curve.append((tolerance, outcome(y, per_group_predictions(scores, group, pair), group)))
    return curve


class ScoreAsFeature(ClassifierMixin, BaseEstimator):
    """A fitted 'estimator' whose input is the model's score itself, column 0: so fairlearn's
    ThresholdOptimizer (prefit) can post-process any model, a torch one included."""

    classes_ = np.array([0, 1])

    def __sklearn_is_fitted__(self) -> bool:
        return True  # nothing to learn: the score is the input

    def fit(self, x: np.ndarray, y: np.ndarray) -> ScoreAsFeature:
        return self

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)[:, 0]

    def predict(self, x: np.ndarray) -> np.ndarray:
        return (self.decision_function(x) >= 0).astype(np.int64)
