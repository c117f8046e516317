"""Explaining one prediction of a tabular model, written by hand: Shapley values, KernelSHAP, LIME and
integrated gradients, each checked against its library (shap, lime, captum) in tests/models/test_explain.py.

Every method explains a function f: (N, F) -> (N,), here a model's log-odds of the positive class, at one
input x (F,), and returns an attribution per feature (F,):

- exact Shapley values (Shapley, 1953; Lundberg & Lee, 2017): the value of a coalition S of features is
  the mean of f over a background set with the features in S taken from x (the "interventional"
  expectation, shap's Independent masker); phi_i is the weighted mean of i's marginal contributions
  v(S + i) - v(S), weight |S|! (F - |S| - 1)! / F!. All 2^F coalitions: small F only. The values add up
  to f(x) - E f (efficiency);
- KernelSHAP (Lundberg & Lee, 2017): the same values as the solution of a weighted least squares over
  coalitions, weight (F - 1) / (C(F, |S|) |S| (F - |S|)), with the efficiency constraint built in; every
  coalition when the budget allows (then it equals the exact values), else coalitions drawn by that
  kernel in complementary pairs;
- LIME (Ribeiro et al., 2016), as lime_tabular does it without discretising: Gaussian samples around x
  (the background's std per feature), weights sqrt(exp(-d^2 / width^2)) of the standardised distance to x,
  a weighted ridge regression (alpha 1); the attribution is coefficient x standardised feature value;
- integrated gradients (Sundararajan et al., 2017) of a torch model from a baseline (the background's
  mean), a midpoint Riemann sum over the straight path; the attributions add up to f(x) - f(baseline) as
  the steps grow (completeness). Lab v4's models/attribution.py integrates images from a scalar baseline;
  here the baseline is a vector and the whole path goes through the model as one batch.
Simplified: one output, independent (interventional) masking, no shap's heuristics for small budgets.
"""

from __future__ import annotations

from collections.abc import Callable
from math import comb, factorial

import numpy as np
import torch

Explained = Callable[[np.ndarray], np.ndarray]  # (N, F) -> (N,)


def coalition_masks(n_features: int) -> np.ndarray:
    """Every coalition as a boolean row (2^F, F): row `code` holds feature i when bit i of code is set."""
    codes = np.arange(2**n_features)
    return ((codes[:, None] >> np.arange(n_features)) & 1).astype(bool)


def coalition_values(f: Explained, x: np.ndarray, background: np.ndarray, masks: np.ndarray) -> np.ndarray:
    """v(S) for each mask (M, F): the mean of f over the background with S's features set to x's: (M,)."""
    mixed = np.where(masks[:, None, :], x[None, None, :], background[None, :, :])  # (M, B, F)
    return f(mixed.reshape(-1, len(x))).reshape(len(masks), len(background)).mean(1)


def shapley_from_values(values: np.ndarray, n_features: int) -> np.ndarray:
    """Shapley values (F,) of the game where coalition S (bit i of its index: feature i) earns values[S]."""
    codes = np.arange(2**n_features)
    sizes = np.array([bin(c).count("1") for c in codes])  # |S| of each coalition
    phi = np.zeros(n_features)
    # BEGIN EXERCISE p6.1: weigh each feature's marginal contributions v(S + i) - v(S) by |S|!(F-|S|-1)!/F!
    for i in range(n_features):
        without = codes[(codes >> i) & 1 == 0]  # the coalitions S that lack feature i
        s = sizes[without]
        weights = np.array([factorial(k) * factorial(n_features - k - 1) for k in s]) / factorial(n_features)
        phi[i] = np.sum(weights * (values[without | (1 << i)] - values[without]))
    # END EXERCISE
    return phi


def exact_shapley(f: Explained, x: np.ndarray, background: np.ndarray) -> np.ndarray:
    """Shapley values (F,) of f at x by enumerating all 2^F coalitions (F up to about 12)."""
    masks = coalition_masks(len(x))
    return shapley_from_values(coalition_values(f, x, background, masks), len(x))


def shapley_kernel(n_features: int, sizes: np.ndarray) -> np.ndarray:
    """The Shapley kernel weight of a coalition of each size (0 < size < F)."""
    n = n_features
    return np.array([(n - 1) / (comb(n, int(s)) * s * (n - s)) for s in sizes])


def sampled_masks(n_features: int, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """n_samples coalitions (neither empty nor full) in complementary pairs, sizes drawn with probability
    proportional to the kernel's total weight per size, (F - 1) / (s (F - s)); members uniform."""
    sizes = np.arange(1, n_features)
    p = (n_features - 1) / (sizes * (n_features - sizes))
    drawn = rng.choice(sizes, size=(n_samples + 1) // 2, p=p / p.sum())
    half = np.array([np.isin(np.arange(n_features), rng.permutation(n_features)[:s]) for s in drawn])
    return np.concatenate([half, ~half])[:n_samples]


def kernel_shap(
    f: Explained, x: np.ndarray, background: np.ndarray, n_samples: int, rng: np.random.Generator
) -> np.ndarray:
    """KernelSHAP values (F,): the weighted least squares fit of v(S) - v(empty) = sum_{i in S} phi_i,
    solved with sum_i phi_i = f(x) - E f exactly (the last phi is eliminated)."""
    n = len(x)
    ends = coalition_values(f, x, background, np.array([np.zeros(n, bool), np.ones(n, bool)]))
    base, total = ends[0], ends[1] - ends[0]  # E f over the background; f(x) - E f
    if n_samples >= 2**n - 2:  # the budget covers every coalition: exact, as shap does
        masks = coalition_masks(n)[1:-1]
        weights = shapley_kernel(n, masks.sum(1))
    else:  # drawn by the kernel, so each counts the same
        masks = sampled_masks(n, n_samples, rng)
        weights = np.ones(len(masks))
    z = masks.astype(np.float64)  # (M, F)
    target = coalition_values(f, x, background, masks) - base - z[:, -1] * total  # (M,)
    design = z[:, :-1] - z[:, -1:]  # phi_last = total - sum of the others
    root = np.sqrt(weights)[:, None]
    head, *_ = np.linalg.lstsq(design * root, target * root[:, 0], rcond=None)
    return np.append(head, total - head.sum())


def lime_neighbourhood(x: np.ndarray, scale: np.ndarray, n_samples: int, seed: int) -> np.ndarray:
    """lime_tabular's samples around x (n_samples, F): x + scale * N(0, 1), drawn as lime draws them
    (one RandomState(seed).normal call), the first row x itself."""
    data = np.random.RandomState(seed).normal(0, 1, n_samples * len(x)).reshape(n_samples, len(x))
    data = data * scale + x
    data[0] = x
    return data


def weighted_ridge(
    design: np.ndarray, target: np.ndarray, weights: np.ndarray, alpha: float = 1.0
) -> tuple[np.ndarray, float]:
    """Ridge regression with an intercept and sample weights: (coefficients (F,), intercept). The intercept
    is not penalised: centre by the weighted means, then solve (X'WX + alpha I) b = X'Wy."""
    w = weights / weights.sum()
    x_mean, y_mean = w @ design, w @ target
    xc, yc = design - x_mean, target - y_mean
    gram = xc.T @ (weights[:, None] * xc) + alpha * np.eye(design.shape[1])
    coef = np.linalg.solve(gram, xc.T @ (weights * yc))
    return coef, float(y_mean - x_mean @ coef)


def lime(
    f: Explained,
    x: np.ndarray,
    mean: np.ndarray,
    scale: np.ndarray,
    n_samples: int,
    seed: int,
    kernel_width: float | None = None,
) -> np.ndarray:
    """LIME's local linear coefficients (F,) per background std, lime_tabular's defaults without
    discretisation (kernel width 0.75 sqrt(F), ridge alpha 1)."""
    width = kernel_width or 0.75 * np.sqrt(len(x))
    data = lime_neighbourhood(x, scale, n_samples, seed)  # (S, F)
    scaled = (data - mean) / scale
    distance = np.linalg.norm(scaled - scaled[0], axis=1)
    weights = np.sqrt(np.exp(-(distance**2) / width**2))
    coef, _ = weighted_ridge(scaled, f(data), weights)
    return coef


def lime_attribution(coef: np.ndarray, x: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """A LIME explanation as an attribution (F,): each coefficient times x's standardised value."""
    return coef * (x - mean) / scale


def integrated_gradients(
    forward: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, baseline: torch.Tensor, n_steps: int
) -> torch.Tensor:
    """Integrated gradients (B, F) of forward: (N, F) -> (N,) at each row of x (B, F), from baseline (F,):
    (x - x0) times the mean gradient at the midpoints of n_steps equal pieces of the path x0 -> x."""
    # BEGIN EXERCISE p6.2: the midpoint Riemann sum of the gradient along the path, times (x - baseline)
    alphas = (torch.arange(n_steps, dtype=x.dtype) + 0.5) / n_steps  # (S,)
    path = baseline + alphas[:, None, None] * (x - baseline)  # (S, B, F)
    path = path.detach().requires_grad_(True)
    (grads,) = torch.autograd.grad(forward(path.reshape(-1, x.shape[1])).sum(), path)  # rows independent
    return (x - baseline) * grads.mean(0)
    # END EXERCISE
