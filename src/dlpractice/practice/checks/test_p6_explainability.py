"""Checks of lab p6: Shapley values of games whose values are known (additive, symmetric, glove) and of
a random game against the definition over all orderings; integrated gradients against captum with a
baseline that is not zero, and complete for a linear model; the demographic-parity and equalised-odds
differences against fairlearn's with three groups."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close


def game_values(n: int, worth) -> np.ndarray:
    """values[code] = worth(set of features in code) for every coalition of n features."""
    return np.array([worth({i for i in range(n) if code >> i & 1}) for code in range(2**n)], dtype=float)


@pytest.mark.exercise("p6.1")
def test_an_additive_game_pays_each_feature_its_own_value(impl) -> None:
    a = np.array([0.5, -1.0, 2.0, 0.25])
    got = impl.shapley_from_values(game_values(4, lambda s: sum(a[i] for i in s)), 4)
    assert_close(got, a, "with v(S) = sum of a_i over S, phi_i must be a_i", atol=1e-12)


@pytest.mark.exercise("p6.1")
def test_the_glove_game(impl) -> None:
    """Feature 0 holds a left glove, 1 and 2 a right one each; a pair is worth 1: phi = (2/3, 1/6, 1/6)."""
    values = game_values(3, lambda s: float(0 in s and bool(s & {1, 2})))
    got = impl.shapley_from_values(values, 3)
    assert_close(
        got, [2 / 3, 1 / 6, 1 / 6], "the glove game's Shapley values are (2/3, 1/6, 1/6)", atol=1e-12
    )


@pytest.mark.exercise("p6.1")
@pytest.mark.parametrize("n", [2, 4, 5])
def test_a_random_game_matches_the_definition_over_orderings(impl, n: int) -> None:
    values = np.random.default_rng(n).normal(size=2**n)
    values[0] = 0.0
    expected = np.zeros(n)
    orders = list(permutations(range(n)))
    for order in orders:
        code = 0
        for i in order:
            expected[i] += (values[code | 1 << i] - values[code]) / len(orders)
            code |= 1 << i
    got = impl.shapley_from_values(values, n)
    assert_close(got, expected, "the mean marginal contribution over all orderings", atol=1e-12)
    assert got.sum() == pytest.approx(values[-1] - values[0]), (
        "efficiency: the values add up to v(all) - v(none)"
    )


@pytest.mark.exercise("p6.2")
def test_integrated_gradients_equal_captums_midpoint_rule(impl) -> None:
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 12), torch.nn.Tanh(), torch.nn.Linear(12, 1))

    def forward(x: torch.Tensor) -> torch.Tensor:
        return net(x)[:, 0]

    x, baseline = torch.randn(3, 4), torch.randn(4)  # a baseline that is not zero
    for steps in (5, 40):
        expected = IntegratedGradients(forward).attribute(
            x, baseline[None], n_steps=steps, method="riemann_middle"
        )
        got = impl.integrated_gradients(forward, x, baseline, steps)
        assert got.shape == x.shape, (
            f"one attribution per input: expected shape {tuple(x.shape)}, got {tuple(got.shape)}"
        )
        assert torch.allclose(got, expected, atol=1e-6, rtol=1e-5), (
            f"{steps} steps: captum (riemann_middle) gives {expected[0].tolist()}, got {got[0].tolist()}"
        )


@pytest.mark.exercise("p6.2")
def test_integrated_gradients_of_a_linear_model_are_complete(impl) -> None:
    w = torch.tensor([1.0, -2.0, 0.5])
    x, baseline = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([0.5, 0.5, -1.0])
    got = impl.integrated_gradients(lambda t: t @ w, x, baseline, 3)
    expected = w * (x - baseline)
    assert torch.allclose(got, expected), (
        f"for f = w.x the attributions are w (x - x0) = {expected}, got {got}"
    )


@pytest.mark.exercise("p6.3")
def test_parity_differences_equal_fairlearns(impl) -> None:
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference

    rng = np.random.default_rng(0)
    group = rng.integers(0, 3, 2000)
    y = (rng.random(2000) < 0.5).astype(int)
    pred = (rng.random(2000) < 0.3 + 0.3 * y - 0.1 * group).astype(int)
    dp, eo = impl.parity_differences(y, pred, group)
    expected_dp = demographic_parity_difference(y, pred, sensitive_features=group)
    expected_eo = equalized_odds_difference(y, pred, sensitive_features=group)
    assert dp == pytest.approx(expected_dp, abs=1e-12), (
        f"demographic parity: fairlearn {expected_dp:.4f}, got {dp:.4f}"
    )
    assert eo == pytest.approx(expected_eo, abs=1e-12), (
        f"equalised odds: fairlearn {expected_eo:.4f}, got {eo:.4f}"
    )


@pytest.mark.exercise("p6.3")
def test_equalised_odds_sees_a_false_positive_gap(impl) -> None:
    """Same TPR (1.0) in both groups, FPR 0 against 0.5: the difference is 0.5."""
    y = np.array([1, 1, 0, 0, 1, 1, 0, 0])
    pred = np.array([1, 1, 0, 0, 1, 1, 1, 0])
    group = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    dp, eo = impl.parity_differences(y, pred, group)
    assert eo == pytest.approx(0.5), f"equal TPRs but FPRs 0 and 0.5: the difference is 0.5, got {eo}"
    assert dp == pytest.approx(0.25), f"selection rates 0.5 and 0.75: the difference is 0.25, got {dp}"
