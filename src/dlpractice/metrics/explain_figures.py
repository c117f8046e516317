"""Lab p6's figures: a SHAP summary (beeswarm-like), one prediction's waterfall, the methods side by side
against the truth, per-group rates before and after mitigation, and the accuracy / fairness trade-off."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from dlpractice.metrics.fairness import Outcome


def summary_figure(phi: np.ndarray, x: np.ndarray, names: tuple[str, ...]) -> plt.Figure:
    """One row per feature (most important on top), one dot per example at its Shapley value, coloured
    by the feature's standardised value: phi (N, F), x (N, F)."""
    order = np.argsort(np.abs(phi).mean(0))  # least important first: drawn at the bottom
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.4))
    rng = np.random.default_rng(0)
    for row, i in enumerate(order):
        jitter = row + rng.uniform(-0.3, 0.3, len(phi))
        dots = ax.scatter(phi[:, i], jitter, c=np.clip(x[:, i], -2, 2), cmap="coolwarm", s=8, vmin=-2, vmax=2)
    ax.set_yticks(range(len(order)), [names[i] for i in order], fontsize=8)
    ax.axvline(0, color="grey", lw=0.8)
    ax.set_xlabel("Shapley value (contribution to the log-odds)")
    fig.colorbar(dots, ax=ax, label="feature value (standardised)")
    return fig


def waterfall_figure(phi: np.ndarray, x: np.ndarray, base: float, names: tuple[str, ...]) -> plt.Figure:
    """From E f (the background's mean log-odds) to f(x), one feature's Shapley value (F,) a step."""
    order = np.argsort(-np.abs(phi))
    fig, ax = plt.subplots(figsize=(7.0, 0.45 * len(names) + 1.4))
    start = base
    for row, i in enumerate(order):
        colour = "tab:red" if phi[i] > 0 else "tab:blue"
        ax.barh(row, phi[i], left=start, color=colour)
        ax.annotate(
            f"{phi[i]:+.2f}",
            (start + phi[i], row),
            fontsize=7,
            va="center",
            xytext=(3, 0),
            textcoords="offset points",
        )
        start += phi[i]
    ax.set_yticks(range(len(order)), [f"{names[i]} = {x[i]:+.2f}" for i in order], fontsize=8)
    ax.invert_yaxis()
    ax.axvline(base, color="grey", ls="--", lw=0.8, label=f"E f = {base:.2f}")
    ax.axvline(start, color="black", lw=0.8, label=f"f(x) = {start:.2f}")
    ax.set_xlabel("log-odds")
    ax.legend(fontsize=8, loc="lower right")
    return fig


def methods_figure(
    attributions: dict[str, np.ndarray], names: tuple[str, ...], truth: np.ndarray | None
) -> plt.Figure:
    """For a few examples (one panel each), every method's attribution per feature, beside the truth:
    attributions {method: (K, F)}, truth (K, F) or None."""
    methods = dict(attributions) | ({"truth": truth} if truth is not None else {})
    k = len(next(iter(methods.values())))
    fig, axes = plt.subplots(1, k, figsize=(3.4 * k, 0.35 * len(names) + 1.6), sharey=True, squeeze=False)
    height = 0.8 / len(methods)
    for panel, ax in enumerate(axes[0]):
        for m, (name, values) in enumerate(methods.items()):
            colour = "black" if name == "truth" else None
            rows = np.arange(len(names)) + m * height
            ax.barh(rows, values[panel], height=height, label=name, color=colour)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"example {panel}", fontsize=9)
        ax.set_xlabel("attribution (log-odds)", fontsize=8)
    axes[0, 0].set_yticks(np.arange(len(names)) + 0.4 - height / 2, names, fontsize=8)
    axes[0, 0].invert_yaxis()
    axes[0, -1].legend(fontsize=7)
    return fig


def group_rates_figure(
    rates: dict[str, dict[int, dict[str, float]]], group_names: tuple[str, str]
) -> plt.Figure:
    """Selection rate, TPR and FPR per group, for each decision rule: rates {rule: {group: {rate: v}}}."""
    measures = ("selection_rate", "tpr", "fpr")
    fig, axes = plt.subplots(1, len(rates), figsize=(3.6 * len(rates), 3.4), sharey=True, squeeze=False)
    for ax, (rule, by_group) in zip(axes[0], rates.items(), strict=True):
        for g, name in enumerate(group_names):
            values = [by_group[g][m] for m in measures]
            ax.bar(np.arange(len(measures)) + 0.4 * g, values, width=0.4, label=name)
        ax.set_xticks(np.arange(len(measures)) + 0.2, ["selection", "TPR", "FPR"])
        ax.set_title(rule, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    axes[0, 0].set_ylabel("rate (test)")
    axes[0, 0].legend(fontsize=8)
    return fig


def tradeoff_figure(curve: list[tuple[float, Outcome]], points: dict[str, Outcome]) -> plt.Figure:
    """Test accuracy against the test equalised-odds difference: one dot per tolerance of the per-group
    thresholds (chosen on validation), and the other rules as labelled markers."""
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    ax.plot(
        [o.eo_difference for _, o in curve],
        [o.accuracy for _, o in curve],
        marker="o",
        label="per-group thresholds",
    )
    for tolerance, o in curve:
        ax.annotate(
            f"{tolerance:g}",
            (o.eo_difference, o.accuracy),
            fontsize=7,
            xytext=(3, -8),
            textcoords="offset points",
        )
    for (name, o), marker in zip(points.items(), "s^vD", strict=False):
        ax.scatter(o.eo_difference, o.accuracy, marker=marker, s=50, label=name, zorder=3)
    ax.set(xlabel="equalised-odds difference (test)", ylabel="accuracy (test)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig
