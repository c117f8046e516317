"""P6 · Explainability and fairness: Shapley values, KernelSHAP, LIME and integrated gradients written by
hand and scored against the truth; group fairness metrics and a per-group-threshold mitigation.

Data (data/tabular.py): embedded, a generated loan table (eight features, a logistic label with known
weights, a protected group the label never uses but a neighbourhood score stands in for); real, the UCI
Adult census (sex as the protected attribute). Two models read the features, never the group: an MLP
(models/mlp.py, trained by fit()) and scikit-learn's HistGradientBoostingClassifier. Each explains its
log-odds of approval.
Explanations (models/explain.py), for test applicants against a background of training rows: exact
Shapley values by enumerating the 2^F coalitions, KernelSHAP on a budget of coalitions, LIME, and (MLP)
integrated gradients from the background's mean. Each is checked on the same model and inputs against
shap's KernelExplainer (and its Exact explainer in the full preset), lime_tabular (same random draws)
and captum, and scored (metrics/explain.py) by its rank correlation with the true contributions
w_i (x_i - E x_i) (generated data) and with the exact Shapley values (both data sources).
Fairness (metrics/fairness.py), on the MLP's decisions (log-odds >= 0): selection rate, TPR and FPR per
group, the demographic-parity and equalised-odds differences (checked against fairlearn.metrics); then a
threshold per group, chosen on validation as the most accurate pair within an equalised-odds tolerance,
across tolerances (the trade-off curve), beside fairlearn's ThresholdOptimizer.
Simplified: independent (interventional) masking, one background set, two groups.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from threadpoolctl import threadpool_limits

from dlpractice.config import Fraction, PositiveFloat, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.tabular import Table, load_table
from dlpractice.extras import require_modules
from dlpractice.metrics import explain as score
from dlpractice.metrics import explain_figures as figs
from dlpractice.metrics import fairness as fair
from dlpractice.models import explain as ex
from dlpractice.models.explain_libraries import completeness, library_checks, log_odds_of, torch_log_odds
from dlpractice.models.mlp import MLP
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("p6", requires=("v4",), data=("adult",), metric="mitigated_eod", goal="min")


@dataclass
class Config(FitConfig):
    n_generated: PositiveInt = 20000  # generated loan applicants (embedded data), split 60/20/20
    width: PositiveInt = 64
    depth: PositiveInt = 2
    hgb_iterations: PositiveInt = 200
    hgb_lr: PositiveFloat = 0.1
    background: PositiveInt = 100  # training rows the explanations average over (their mean is E f)
    n_explain: PositiveInt = 200  # test rows every method explains
    kernel_samples: PositiveInt = 64  # coalitions per KernelSHAP explanation (2^8 - 2 = 254: exact)
    lime_samples: PositiveInt = 1000
    ig_steps: PositiveInt = 64
    completeness_steps: tuple[PositiveInt, ...] = (2, 4, 8, 16, 32, 64, 128)
    n_compare: PositiveInt = 5  # rows also explained by shap, lime_tabular and captum
    shap_exact: bool = False  # shap's Exact explainer as well (numba compiles it first: about 30 s)
    n_shown: PositiveInt = 3  # rows of the methods figure
    top_k: PositiveInt = 3
    tolerances: tuple[Fraction, ...] = (0.2, 0.1, 0.05, 0.03, 0.02, 0.01)
    eod_tolerance: Fraction = 0.02  # the headline rule: per-group thresholds within this on validation


PRESETS = {
    "smoke": {
        "n_generated": 1500,
        "steps": 60,
        "batch_size": 64,
        "lr": 3e-3,
        "eval_every": 30,
        "log_every": 10,
        "width": 16,
        "hgb_iterations": 20,
        "background": 10,
        "n_explain": 6,
        "kernel_samples": 32,
        "lime_samples": 100,
        "ig_steps": 16,
        "completeness_steps": (2, 8, 32),
        "n_compare": 2,
        "n_shown": 2,
        "tolerances": (0.2, 0.05),
        "eod_tolerance": 0.05,
    },
    "quick": {
        "n_generated": 8000,
        "steps": 600,
        "batch_size": 128,
        "lr": 3e-3,
        "eval_every": 200,
        "n_explain": 60,
        "background": 50,
        "hgb_iterations": 100,
    },
    "full": {
        "n_generated": 50000,
        "n_explain": 500,
        "n_compare": 20,
        "steps": 3000,
        "batch_size": 128,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "eval_every": 250,
        "restore_best": True,
        "shap_exact": True,
    },
}


def train_models(table: Table, cfg: Config, ctx: RunContext) -> tuple[MLP, HistGradientBoostingClassifier]:
    splits = {s: (torch.from_numpy(table.x[s]), torch.from_numpy(table.y[s])) for s in ("train", "val")}
    mlp = MLP(len(table.features), 2, cfg.width, cfg.depth)
    fit(mlp, TensorData(splits), cfg, ctx)
    mlp.eval()
    hgb = HistGradientBoostingClassifier(
        max_iter=cfg.hgb_iterations, learning_rate=cfg.hgb_lr, random_state=ctx.seed
    )
    hgb.fit(table.x["train"], table.y["train"])
    return mlp, hgb


def timed(method, rows: np.ndarray) -> tuple[np.ndarray, float]:
    """Attributions (N, F) of `method` on each row, and its seconds per row."""
    start = time.perf_counter()
    values = np.array([method(x) for x in rows])
    return values, (time.perf_counter() - start) / len(rows)


def explain_all(f, rows, background, cfg: Config, seed: int, model=None) -> tuple[dict, dict]:
    """{method: attributions (N, F)} and {method: seconds per row}; integrated gradients needs `model`."""
    rng = np.random.default_rng(seed)
    mean, scale = background.mean(0), background.std(0)
    methods = {
        "exact shapley": lambda x: ex.exact_shapley(f, x, background),
        "kernel shap": lambda x: ex.kernel_shap(f, x, background, cfg.kernel_samples, rng),
        "lime": lambda x: ex.lime_attribution(
            ex.lime(f, x, mean, scale, cfg.lime_samples, seed), x, mean, scale
        ),
    }
    if model is not None:
        forward = torch_log_odds(model)
        baseline = torch.from_numpy(mean.astype(np.float32))
        methods["integrated gradients"] = lambda x: (
            ex.integrated_gradients(forward, torch.from_numpy(x)[None], baseline, cfg.ig_steps)[0]
            .detach()
            .numpy()
        )
    results = {name: timed(method, rows) for name, method in methods.items()}
    return {k: v[0] for k, v in results.items()}, {k: v[1] for k, v in results.items()}


def method_scores(name: str, attributions: dict, seconds: dict, truth, cfg: Config) -> dict[str, float]:
    exact = attributions["exact shapley"]
    metrics = {}
    for method, values in attributions.items():
        key = f"{name}_{method.replace(' ', '_')}"
        metrics[f"{key}_seconds_per_row"] = seconds[method]
        metrics[f"{key}_exact_rank_corr"] = score.rank_correlation(values, exact)
        if truth is not None:
            metrics[f"{key}_truth_rank_corr"] = score.rank_correlation(values, truth)
            metrics[f"{key}_truth_global_rank_corr"] = score.global_rank_correlation(values, truth)
            metrics[f"{key}_truth_top{cfg.top_k}"] = score.top_k_agreement(values, truth, cfg.top_k)
    return metrics


def fairness(table: Table, f, cfg: Config) -> tuple[dict[str, float], dict, list, dict]:
    """Before and after mitigation on the test split: metrics, per-group rates, the curve, the rules."""
    from fairlearn.metrics import demographic_parity_difference, equalized_odds_difference
    from fairlearn.postprocessing import ThresholdOptimizer

    split = {s: (f(table.x[s]), table.y[s], table.group[s]) for s in ("val", "test")}
    scores, y, group = split["test"]
    before = (scores >= 0).astype(np.int64)
    pair = fair.fair_thresholds(*split["val"], cfg.eod_tolerance)
    after = fair.per_group_predictions(scores, group, pair)
    optimiser = ThresholdOptimizer(
        estimator=fair.ScoreAsFeature(),
        constraints="equalized_odds",
        prefit=True,
        predict_method="decision_function",
    )
    optimiser.fit(split["val"][0][:, None], split["val"][1], sensitive_features=split["val"][2])
    theirs = optimiser.predict(scores[:, None], sensitive_features=group, random_state=0)
    rules = {
        "one threshold (0)": before,
        "per-group thresholds": after,
        "fairlearn ThresholdOptimizer": theirs,
    }
    outcomes = {name: fair.outcome(y, pred, group) for name, pred in rules.items()}
    metrics = {
        "dp_fairlearn_abs_diff": abs(
            outcomes["one threshold (0)"].dp_difference
            - demographic_parity_difference(y, before, sensitive_features=group)
        ),
        "eod_fairlearn_abs_diff": abs(
            outcomes["one threshold (0)"].eo_difference
            - equalized_odds_difference(y, before, sensitive_features=group)
        ),
        "group0_threshold": pair[0],
        "group1_threshold": pair[1],
    }
    for prefix, o in zip(("unmitigated", "mitigated", "fairlearn_to"), outcomes.values(), strict=True):
        metrics |= {
            f"{prefix}_accuracy": o.accuracy,
            f"{prefix}_dp": o.dp_difference,
            f"{prefix}_eod": o.eo_difference,
        }
    rates = {name: fair.group_rates(y, pred, group) for name, pred in rules.items()}
    curve = fair.tradeoff_curve(split["val"], split["test"], cfg.tolerances)
    return metrics, rates, curve, outcomes


def report(
    ctx: RunContext, metrics: dict[str, float], methods: list[str], truth: bool, curve, outcomes, top_k: int
) -> None:
    header = ["model", "method", "s / row", "rank corr. vs exact Shapley"]
    header += ["rank corr. vs truth", "global rank corr. vs truth", f"top-{top_k} vs truth"] if truth else []
    rows = []
    for name in ("mlp", "hgb"):
        for method in methods:
            key = f"{name}_{method.replace(' ', '_')}"
            if f"{key}_seconds_per_row" not in metrics:
                continue
            suffixes = ["seconds_per_row", "exact_rank_corr"]
            suffixes += ["truth_rank_corr", "truth_global_rank_corr", f"truth_top{top_k}"] if truth else []
            rows.append([name, method] + [f"{metrics.get(f'{key}_{s}', float('nan')):.4g}" for s in suffixes])
    ctx.section("Explanations (test rows)", markdown_table(header, rows))
    checks = [[k, f"{v:.3g}"] for k, v in metrics.items() if "diff" in k or "mae" in k or "completeness" in k]
    ctx.section("Against the libraries (same model, same rows)", markdown_table(["check", "value"], checks))
    table = [
        [n, f"{o.accuracy:.4f}", f"{o.dp_difference:.4f}", f"{o.eo_difference:.4f}"]
        for n, o in outcomes.items()
    ]
    table += [
        [
            f"per-group, tolerance {t:g}",
            f"{o.accuracy:.4f}",
            f"{o.dp_difference:.4f}",
            f"{o.eo_difference:.4f}",
        ]
        for t, o in curve
    ]
    ctx.section(
        "Fairness of the MLP's decisions (test)",
        markdown_table(["rule", "accuracy", "demographic-parity diff.", "equalised-odds diff."], table),
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    require_modules("lab p6", "shap", "lime", "fairlearn", "captum")  # captum: the vision extra
    torch.manual_seed(ctx.seed)
    table = load_table(ctx.data, cfg.n_generated, ctx.data_dir)
    ctx.record_data(table.describe())
    with threadpool_limits(ctx.threads):  # scikit-learn's OpenMP threads obey --threads too
        mlp, hgb = train_models(table, cfg, ctx)
        models = {"mlp": log_odds_of(mlp), "hgb": hgb.decision_function}
        x_test, y_test = table.x["test"], table.y["test"]
        metrics = {}
        for name, f in models.items():
            logits = f(x_test)
            metrics[f"{name}_test_accuracy"] = float(((logits >= 0) == y_test).mean())
            metrics[f"{name}_test_auc"] = float(roc_auc_score(y_test, logits))
        n_train = len(table.y["train"])
        pick = np.random.default_rng(ctx.seed).choice(n_train, min(cfg.background, n_train), replace=False)
        background, rows = table.x["train"][pick], x_test[: cfg.n_explain]
        truth = (
            None
            if table.true_weights is None
            else score.true_contributions(table.true_weights, rows, background)
        )
        attributions = {}
        for name, f in models.items():
            values, seconds = explain_all(f, rows, background, cfg, ctx.seed, mlp if name == "mlp" else None)
            attributions[name] = values
            metrics |= method_scores(name, values, seconds, truth, cfg)
            base = f(background).mean()
            metrics[f"{name}_shapley_efficiency_gap"] = score.efficiency_gap(
                values["exact shapley"], f(rows), base
            )
        budgets = {
            "kernel_samples": cfg.kernel_samples,
            "lime_samples": cfg.lime_samples,
            "ig_steps": cfg.ig_steps,
        }
        metrics |= library_checks(mlp, rows[: cfg.n_compare], background, budgets, ctx.seed, cfg.shap_exact)
        metrics |= completeness(mlp, rows, background, cfg.completeness_steps)
        fair_metrics, rates, curve, outcomes = fairness(table, models["mlp"], cfg)
    metrics |= fair_metrics
    mlp_values = attributions["mlp"]
    phi = mlp_values["exact shapley"]
    ctx.figure(
        "summary", figs.summary_figure(phi, rows, table.features), "Shapley values of the MLP (test rows)"
    )
    base = float(models["mlp"](background).mean())
    ctx.figure(
        "waterfall", figs.waterfall_figure(phi[0], rows[0], base, table.features), "One applicant's waterfall"
    )
    shown = {k: v[: cfg.n_shown] for k, v in mlp_values.items()}
    ctx.figure(
        "methods",
        figs.methods_figure(shown, table.features, None if truth is None else truth[: cfg.n_shown]),
        "SHAP, LIME and integrated gradients against the truth",
    )
    ctx.figure(
        "group-rates", figs.group_rates_figure(rates, table.group_names), "Per-group rates before and after"
    )
    ctx.figure(
        "tradeoff",
        figs.tradeoff_figure(curve, {k: v for k, v in outcomes.items() if k != "per-group thresholds"}),
        "Accuracy against equalised odds",
    )
    report(ctx, metrics, list(mlp_values), truth is not None, curve, outcomes, cfg.top_k)
    return metrics
