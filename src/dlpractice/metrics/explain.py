"""Scoring explanations: against the truth where the data has one, against each other everywhere.

On the generated loans the label's log-odds are linear with known weights w, so the Shapley value of
feature i for a model that learned them is w_i (x_i - mean of the background's x_i): the true contribution.
An attribution is scored by its Spearman rank correlation with the truth, per example (then averaged) and
globally (mean |attribution| per feature against mean |truth|), and by how many of the truth's top-k
features it names. The same scores against the exact Shapley values compare the methods on real data.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr


def true_contributions(weights: np.ndarray, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """w_i (x_i - E x_i) for each row of x (N, F): the exact Shapley values of the true log-odds."""
    return weights * (x - background.mean(0))


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """The mean over rows of the Spearman correlation of a[n] and b[n] (N, F); constant rows are skipped."""
    values = [spearmanr(u, v).statistic for u, v in zip(a, b, strict=True) if np.ptp(u) > 0 and np.ptp(v) > 0]
    return float(np.mean(values)) if values else float("nan")


def global_rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman correlation of the features' mean absolute attributions (N, F) -> one number."""
    return float(spearmanr(np.abs(a).mean(0), np.abs(b).mean(0)).statistic)


def top_k_agreement(a: np.ndarray, b: np.ndarray, k: int) -> float:
    """The mean share of b's k largest |attributions| that a also ranks in its top k, per row (N, F)."""
    top_a = np.argsort(-np.abs(a), axis=1)[:, :k]
    top_b = np.argsort(-np.abs(b), axis=1)[:, :k]
    return float(np.mean([len(set(u) & set(v)) / k for u, v in zip(top_a, top_b, strict=True)]))


def efficiency_gap(phi: np.ndarray, f_x: np.ndarray, f_base: float | np.ndarray) -> float:
    """The largest |sum_i phi_i - (f(x) - f_base)| over rows (N, F): 0 for Shapley values, the
    completeness error for integrated gradients (f_base = f(baseline))."""
    return float(np.max(np.abs(phi.sum(1) - (f_x - f_base))))
