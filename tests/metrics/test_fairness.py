"""metrics/fairness.py against fairlearn.metrics on the same predictions, and the per-group thresholds."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.errors import DlpError
from dlpractice.metrics import fairness as fair

pytest.importorskip("fairlearn")


def biased(n: int, seed: int, n_groups: int = 2):
    """Scores that rank y well but run lower for group 1 and beyond: (scores, y, group)."""
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n)
    y = (rng.random(n) < 0.55 - 0.1 * group).astype(np.int64)
    return rng.normal(size=n) + 1.5 * y - 0.6 * group, y, group


@pytest.mark.parametrize("n_groups", [2, 3])
def test_rates_and_differences_equal_fairlearns(n_groups: int) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )

    scores, y, group = biased(3000, n_groups, n_groups)
    pred = (scores > 0.4).astype(np.int64)
    frame = MetricFrame(
        metrics={"selection_rate": selection_rate, "tpr": true_positive_rate, "fpr": false_positive_rate},
        y_true=y,
        y_pred=pred,
        sensitive_features=group,
    ).by_group
    ours = fair.group_rates(y, pred, group)
    for g, row in ours.items():
        for name in ("selection_rate", "tpr", "fpr"):
            assert row[name] == pytest.approx(frame.loc[g, name], abs=1e-12), (g, name)
    expected_dp = demographic_parity_difference(y, pred, sensitive_features=group)
    assert fair.demographic_parity_difference(y, pred, group) == pytest.approx(expected_dp, abs=1e-12)
    expected_eo = equalized_odds_difference(y, pred, sensitive_features=group)
    assert fair.equalized_odds_difference(y, pred, group) == pytest.approx(expected_eo, abs=1e-12)


def test_group_thresholds_keep_the_tolerance_and_trade_accuracy_for_it() -> None:
    scores, y, group = biased(4000, 0)
    accuracies = []
    for tolerance in (1.0, 0.1, 0.03):
        pair = fair.fair_thresholds(scores, y, group, tolerance)
        result = fair.outcome(y, fair.per_group_predictions(scores, group, pair), group)
        assert result.eo_difference <= tolerance + 1e-12, (tolerance, result)
        accuracies.append(result.accuracy)
    assert accuracies[0] >= accuracies[1] >= accuracies[2], accuracies
    single = fair.outcome(y, (scores >= 0).astype(np.int64), group)
    assert accuracies[0] >= single.accuracy - 0.01  # the best pair is at least as good as one threshold
    curve = fair.tradeoff_curve(
        (scores[:2000], y[:2000], group[:2000]), (scores[2000:], y[2000:], group[2000:]), (0.1,)
    )
    assert curve[0][0] == 0.1 and curve[0][1].eo_difference < single.eo_difference


def test_thresholds_need_two_groups() -> None:
    scores, y, group = biased(300, 1, 3)
    with pytest.raises(DlpError, match="exactly two groups"):
        fair.fair_thresholds(scores, y, group, 0.1)


def test_fairlearns_threshold_optimizer_post_processes_a_score() -> None:
    from fairlearn.postprocessing import ThresholdOptimizer

    scores, y, group = biased(3000, 2)
    optimiser = ThresholdOptimizer(
        estimator=fair.ScoreAsFeature(),
        constraints="equalized_odds",
        prefit=True,
        predict_method="decision_function",
    )
    optimiser.fit(scores[:, None], y, sensitive_features=group)
    pred = optimiser.predict(scores[:, None], sensitive_features=group, random_state=0)
    before = fair.equalized_odds_difference(y, (scores >= 0).astype(np.int64), group)
    assert set(np.unique(pred)) <= {0, 1} and fair.equalized_odds_difference(y, pred, group) < before
