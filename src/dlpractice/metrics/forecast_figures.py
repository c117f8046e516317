"""Lab r1's figures and its anomaly table: each series with the forecasts over its test span, the error by
horizon step, the anomaly scores with the true and the flagged anomalies, and the loss curves."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from dlpractice.data.series import AnomalySeries, Series
from dlpractice.report import markdown_table

COLOURS = {
    "naive": "tab:grey",
    "seasonal naive": "tab:brown",
    "sarima": "tab:purple",
    "mlp": "tab:orange",
    "gru": "tab:green",
    "lstm": "tab:blue",
    "forecaster": "tab:cyan",  # the anomaly detectors' networks
    "autoencoder": "tab:red",
}


def forecasts_figure(series: Series, result: dict, coverage: float) -> plt.Figure:
    """The series around its test span and each model's forecasts from every H-th origin, so that the
    H-step paths tile the span; the LSTM's interval shaded."""
    origins, horizon = result["origins"], result["truth"].shape[1]
    test_start = result["test_start"]
    fig, ax = plt.subplots(figsize=(10, 4.2))
    shown = slice(max(0, test_start - 3 * horizon), None)
    ax.plot(series.years[shown], series.values[shown], color="black", lw=1.2, label="observed")
    ax.axvline(series.years[test_start], color="grey", ls=":", lw=1)
    tiles = np.arange(0, len(origins), horizon)  # every H-th origin
    for model, forecast in result["forecasts"].items():
        for j, row in enumerate(tiles):
            steps = origins[row] + np.arange(horizon)
            label = model if j == 0 else None
            ax.plot(series.years[steps], forecast[row], color=COLOURS.get(model), lw=1, label=label)
            if model == "lstm" and "interval" in result:
                lower, upper = forecast[row] + result["interval"]
                interval_label = f"lstm {coverage:.0%} interval" if j == 0 else None
                ax.fill_between(
                    series.years[steps], lower, upper, color="tab:blue", alpha=0.15, label=interval_label
                )
    ax.set(xlabel="year", ylabel=series.unit, title=f"{series.name}: forecasts {horizon} steps ahead")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, ncol=4)
    fig.tight_layout()
    return fig


def horizon_figure(per_horizon: dict[str, dict[str, np.ndarray]], loaded: list[Series]) -> plt.Figure:
    """Test MAE against steps ahead, one panel per series."""
    fig, axes = plt.subplots(1, len(per_horizon), figsize=(5.2 * len(per_horizon), 3.8), squeeze=False)
    units = {s.name: s.unit for s in loaded}
    for ax, (name, by_model) in zip(axes[0], per_horizon.items()):
        for model, errors in by_model.items():
            ax.plot(np.arange(1, len(errors) + 1), errors, "o-", ms=3, color=COLOURS.get(model), label=model)
        ax.set(xlabel="steps ahead", ylabel=f"test MAE ({units[name]})", title=name)
        ax.grid(alpha=0.3)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return fig


def anomaly_figure(
    gen: AnomalySeries, scores: dict[str, np.ndarray], flags: dict[str, np.ndarray], split: tuple[int, int]
) -> plt.Figure:
    """The test span: the series with the true anomalies shaded and each detector's flags, then each
    detector's score."""
    start = split[1]
    steps = np.arange(start, len(gen.values))
    fig, axes = plt.subplots(1 + len(scores), 1, figsize=(10, 2.2 * (1 + len(scores))), sharex=True)
    axes[0].plot(steps, gen.values[start:], color="black", lw=0.7)
    for b, e, kind in gen.events:
        if e > start:  # an anomaly that began in validation shows its part in the test span
            for ax in axes:
                ax.axvspan(max(b, start) - 0.5, e - 0.5, color="tab:red", alpha=0.2)
            axes[0].annotate(kind, (max(b, start), gen.values.max()), fontsize=7, color="tab:red")
    for i, (name, flagged) in enumerate(flags.items()):
        marks = steps[flagged]
        axes[0].plot(
            marks, np.full(len(marks), gen.values.min() - 0.5 - i), "|", ms=6, label=f"{name}: flagged"
        )
    axes[0].set(ylabel="value", title="generated series, test span (red: true anomalies)")
    axes[0].legend(fontsize=7, loc="lower right")
    for ax, (name, score) in zip(axes[1:], scores.items()):
        ax.plot(steps, score[start:], lw=0.8)
        ax.set(ylabel=name)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return fig


def loss_figure(histories: dict[str, dict[str, list[dict[str, float]]]]) -> plt.Figure:
    """Validation (solid) and training (faint) loss of every network, one panel per series."""
    fig, axes = plt.subplots(1, len(histories), figsize=(4.6 * len(histories), 3.6), squeeze=False)
    for ax, (name, by_model) in zip(axes[0], histories.items()):
        for model, history in by_model.items():
            colour = COLOURS.get(model)
            for kind, style in (("train_loss", {"alpha": 0.3}), ("val_loss", {"label": model})):
                points = [(h["step"], h[kind]) for h in history if kind in h]
                ax.plot(*zip(*points), color=colour, lw=1, **style)
        ax.set(xlabel="step", ylabel="MSE (scaled)", yscale="log", title=name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def anomaly_table(metrics: dict[str, float]) -> str:
    """Markdown: each detector's step-wise precision, recall, F1, average precision and event recall."""
    rows = [
        [
            name,
            *(
                f"{metrics[f'{key}_{m}']:.3f}"
                for m in ("precision", "recall", "f1", "average_precision", "event_recall")
            ),
        ]
        for name, key in (("residual z-score", "residual_z_score"), ("LSTM autoencoder", "autoencoder"))
        if f"{key}_f1" in metrics
    ]
    header = ["detector", "precision", "recall", "F1", "average precision", "events found"]
    return markdown_table(header, rows) + "\n\n(threshold: best F1 on the validation span)"
