"""models/explain.py against the libraries on the same function and rows: exact Shapley values against
shap's KernelExplainer given every coalition (then exact) and against the definition over orderings,
KernelSHAP against the exact values, LIME against lime_tabular with the same random draws, integrated
gradients against captum (midpoint rule), and completeness as the steps grow."""

from __future__ import annotations

from itertools import permutations

import numpy as np
import pytest
import torch

from dlpractice.models import explain as ex

pytest.importorskip("shap")


@pytest.fixture(scope="module")
def game():
    """A nonlinear function of 5 features (an interaction, a saturation), a background and two rows."""
    rng = np.random.default_rng(0)
    w = rng.normal(size=5)

    def f(x: np.ndarray) -> np.ndarray:
        return np.tanh(x @ w) + 0.5 * x[:, 0] * x[:, 1] - 0.3 * x[:, 4] ** 2

    return f, rng.normal(size=(15, 5)), rng.normal(size=(2, 5))


def by_orderings(f, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Shapley's definition: each feature's mean marginal contribution over all F! orderings."""
    n = len(x)
    phi = np.zeros(n)
    orders = list(permutations(range(n)))
    for order in orders:
        mask = np.zeros(n, bool)
        before = ex.coalition_values(f, x, background, mask[None])[0]
        for i in order:
            mask[i] = True
            after = ex.coalition_values(f, x, background, mask[None])[0]
            phi[i] += (after - before) / len(orders)
            before = after
    return phi


def test_exact_shapley_equals_the_definition_and_shaps_kernel_explainer(game) -> None:
    import shap

    f, background, rows = game
    ours = np.array([ex.exact_shapley(f, x, background) for x in rows])
    theirs = shap.KernelExplainer(f, background).shap_values(rows, nsamples=2**5, silent=True)
    np.testing.assert_allclose(ours, theirs, atol=1e-10)
    np.testing.assert_allclose(ours[0], by_orderings(f, rows[0], background), atol=1e-12)
    np.testing.assert_allclose(ours.sum(1), f(rows) - f(background).mean(), atol=1e-12)  # efficiency


def test_shapley_values_of_a_linear_model_are_w_times_x_minus_the_mean(game) -> None:
    _, background, rows = game
    w = np.array([1.0, -2.0, 0.0, 0.5, 3.0])
    phi = ex.exact_shapley(lambda x: x @ w + 1.0, rows[0], background)
    np.testing.assert_allclose(phi, w * (rows[0] - background.mean(0)), atol=1e-12)


def test_kernel_shap_is_exact_with_every_coalition_and_close_when_sampled(game) -> None:
    import shap

    f, background, rows = game
    rng = np.random.default_rng(1)
    exact = np.array([ex.exact_shapley(f, x, background) for x in rows])
    full = np.array([ex.kernel_shap(f, x, background, 2**5, rng) for x in rows])
    np.testing.assert_allclose(full, exact, atol=1e-10)
    sampled = np.array([ex.kernel_shap(f, x, background, 24, rng) for x in rows])
    np.testing.assert_allclose(sampled.sum(1), exact.sum(1), atol=1e-10)  # efficiency holds by construction
    theirs = shap.KernelExplainer(f, background).shap_values(rows, nsamples=24, silent=True)
    ours_error, their_error = np.abs(sampled - exact).mean(), np.abs(theirs - exact).mean()
    assert ours_error < 0.1 and their_error < 0.1, (ours_error, their_error)


def test_sampled_coalitions_come_in_complementary_pairs() -> None:
    masks = ex.sampled_masks(6, 10, np.random.default_rng(0))
    assert masks.shape == (10, 6)
    assert (masks[:5] == ~masks[5:]).all() and (masks.sum(1) > 0).all() and (masks.sum(1) < 6).all()


def test_weighted_ridge_equals_scikit_learns() -> None:
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(2)
    x, y, w = rng.normal(size=(40, 4)), rng.normal(size=40), rng.random(40)
    coef, intercept = ex.weighted_ridge(x, y, w, alpha=0.7)
    ridge = Ridge(alpha=0.7).fit(x, y, sample_weight=w)
    np.testing.assert_allclose(coef, ridge.coef_, atol=1e-10)
    assert intercept == pytest.approx(ridge.intercept_, abs=1e-10)


def test_lime_equals_lime_tabular_with_the_same_draws(game) -> None:
    from dlpractice.models.explain_libraries import lime_tabular_explainer

    f, background, rows = game
    for seed in (0, 7):
        explainer = lime_tabular_explainer(background, seed)
        found = dict(explainer.explain_instance(rows[0], f, num_features=5, num_samples=300).local_exp[1])
        ours = ex.lime(f, rows[0], background.mean(0), background.std(0), 300, seed)
        np.testing.assert_allclose(ours, [found[i] for i in range(5)], atol=1e-8)


def test_integrated_gradients_equal_captums_and_complete_as_steps_grow() -> None:
    from captum.attr import IntegratedGradients

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1))

    def forward(x: torch.Tensor) -> torch.Tensor:
        return net(x)[:, 0]

    x, baseline = torch.randn(4, 5), torch.randn(5)
    ours = ex.integrated_gradients(forward, x, baseline, 20)
    theirs = IntegratedGradients(forward).attribute(x, baseline[None], n_steps=20, method="riemann_middle")
    torch.testing.assert_close(ours, theirs, atol=1e-6, rtol=1e-5)
    gap = (forward(x) - forward(baseline[None])).detach()
    errors = [
        (ex.integrated_gradients(forward, x, baseline, n).sum(1) - gap).abs().max().item() for n in (2, 8, 32)
    ]
    assert errors[0] > errors[1] > errors[2] and errors[2] < 1e-2, errors
