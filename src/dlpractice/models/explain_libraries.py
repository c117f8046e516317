"""Lab p6's hand-written explanations (models/explain.py) beside the libraries, on the same model and rows:
shap's exact explainer and KernelExplainer, lime_tabular with the same random draws, captum's integrated
gradients (the midpoint rule); and the completeness error of integrated gradients as the steps grow.
The libraries are imported inside the functions: they belong to the production extra."""

from __future__ import annotations

import numpy as np
import torch

from dlpractice.models import explain as ex


def torch_log_odds(model: torch.nn.Module):
    """The MLP's log-odds of class 1 as a torch function (N, F) -> (N,), differentiable."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        logits, _ = model(x)  # (N, 2)
        return logits[:, 1] - logits[:, 0]

    return forward


def log_odds_of(model: torch.nn.Module) -> ex.Explained:
    """The same as a NumPy function (N, F) -> (N,) float64, for the model-agnostic methods."""
    forward = torch_log_odds(model)

    @torch.no_grad()
    def f(x: np.ndarray) -> np.ndarray:
        return forward(torch.as_tensor(x, dtype=torch.float32)).double().numpy()

    return f


def lime_tabular_explainer(background: np.ndarray, seed: int):
    """lime_tabular set up as models/explain.lime works: regression on the raw (standardised, not
    discretised) features, samples drawn around the instance, no feature selection, RandomState(seed)."""
    from lime.lime_tabular import LimeTabularExplainer

    return LimeTabularExplainer(
        background,
        mode="regression",
        discretize_continuous=False,
        sample_around_instance=True,
        feature_selection="none",
        random_state=seed,
    )


def library_checks(
    model: torch.nn.Module,
    rows: np.ndarray,
    background: np.ndarray,
    budgets: dict[str, int],
    seed: int,
    shap_exact: bool = False,
) -> dict[str, float]:
    """The hand-written methods against shap, lime_tabular and captum on the same MLP and rows (N, F);
    budgets: "kernel_samples", "lime_samples", "ig_steps". KernelExplainer with every coalition
    is exact; shap's Exact explainer too when `shap_exact`."""
    import shap
    from captum.attr import IntegratedGradients

    f, n = log_odds_of(model), rows.shape[1]
    exact = np.array([ex.exact_shapley(f, x, background) for x in rows])
    kernel = shap.KernelExplainer(f, background)
    full = kernel.shap_values(rows, nsamples=2**n, silent=True)
    sampled = kernel.shap_values(rows, nsamples=budgets["kernel_samples"], silent=True)
    rng = np.random.default_rng(seed)
    mine_sampled = np.array([ex.kernel_shap(f, x, background, budgets["kernel_samples"], rng) for x in rows])
    lime_gap = 0.0
    for x in rows:  # one explainer a row: the same RandomState(seed) draws as ours
        found = (
            lime_tabular_explainer(background, seed)
            .explain_instance(x, f, num_features=n, num_samples=budgets["lime_samples"])
            .local_exp[1]
        )
        coef = np.zeros(n)
        coef[[i for i, _ in found]] = [c for _, c in found]
        mine = ex.lime(f, x, background.mean(0), background.std(0), budgets["lime_samples"], seed)
        lime_gap = max(lime_gap, float(np.abs(coef - mine).max()))
    forward = torch_log_odds(model)
    x, baseline = torch.from_numpy(rows), torch.from_numpy(background.mean(0, keepdims=True))
    captum = IntegratedGradients(forward).attribute(
        x, baseline, n_steps=budgets["ig_steps"], method="riemann_middle"
    )
    ours = ex.integrated_gradients(forward, x, baseline[0], budgets["ig_steps"])
    gaps = {
        "shap_kernel_full_max_abs_diff": float(np.abs(full - exact).max()),
        "shap_kernel_sampled_mae": float(np.abs(sampled - exact).mean()),
        "kernel_sampled_mae": float(np.abs(mine_sampled - exact).mean()),
        "lime_max_abs_diff": lime_gap,
        "captum_ig_max_abs_diff": float((captum - ours).abs().max()),
    }
    if shap_exact:  # numba compiles shap's masking code on the first call: about 30 s here
        masker = shap.maskers.Independent(background, max_samples=len(background))
        theirs = shap.explainers.Exact(f, masker)(rows, silent=True).values
        gaps["shap_exact_max_abs_diff"] = float(np.abs(theirs - exact).max())
    return gaps


def completeness(
    model: torch.nn.Module, rows: np.ndarray, background: np.ndarray, steps: tuple[int, ...]
) -> dict[str, float]:
    """Integrated gradients' largest |sum of attributions - (f(x) - f(baseline))| per number of steps."""
    forward, f = torch_log_odds(model), log_odds_of(model)
    baseline = background.mean(0)
    x, x0 = torch.from_numpy(rows), torch.from_numpy(baseline.astype(np.float32))
    gap = f(rows) - f(baseline[None].astype(np.float32))[0]
    return {
        f"ig_completeness_{n}": float(
            np.abs(ex.integrated_gradients(forward, x, x0, n).sum(1).detach().numpy() - gap).max()
        )
        for n in steps
    }
