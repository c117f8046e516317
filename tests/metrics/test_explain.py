"""metrics/explain.py: rank correlations against scipy's definition on hand-made rows, top-k agreement,
and the true contributions of a linear model equal to its exact Shapley values."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.metrics import explain as score
from dlpractice.models.explain import exact_shapley


def test_rank_correlation_of_same_reversed_and_constant_rows() -> None:
    a = np.array([[1.0, 2.0, 3.0, 4.0], [0.5, -1.0, 2.0, 0.0], [1.0, 1.0, 1.0, 1.0]])
    assert score.rank_correlation(a[:2], a[:2]) == pytest.approx(1.0)
    assert score.rank_correlation(a[:1], -a[:1]) == pytest.approx(-1.0)
    assert score.rank_correlation(a, a) == pytest.approx(1.0)  # the constant row is skipped
    assert score.global_rank_correlation(a, 2 * a) == pytest.approx(1.0)


def test_top_k_agreement_counts_shared_features() -> None:
    a = np.array([[5.0, -4.0, 0.1, 0.2]])
    b = np.array([[3.0, 0.0, 0.0, -2.0]])
    assert score.top_k_agreement(a, b, 1) == 1.0
    assert score.top_k_agreement(a, b, 2) == 0.5


def test_true_contributions_are_the_exact_shapley_values_of_the_true_model() -> None:
    rng = np.random.default_rng(0)
    w, background, rows = rng.normal(size=4), rng.normal(size=(20, 4)), rng.normal(size=(3, 4))
    exact = np.array([exact_shapley(lambda x: x @ w - 0.2, r, background) for r in rows])
    np.testing.assert_allclose(score.true_contributions(w, rows, background), exact, atol=1e-12)
    f_rows, f_base = rows @ w - 0.2, (background @ w - 0.2).mean()
    assert score.efficiency_gap(exact, f_rows, f_base) < 1e-12
