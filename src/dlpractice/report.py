"""The run's report: report.md with the config, the metrics against the bar, and the figures."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import matplotlib

from dlpractice.formatting import number, plural

matplotlib.use("Agg")  # files only: no display needed
import matplotlib.pyplot as plt  # noqa: E402


def loss_curve(
    history: list[dict[str, float]],
    path: Path,
    title: str = "Loss",
    xlabel: str = "step",
    ylabel: str = "loss (nats/token)",
) -> Path:
    """Train and val loss against the optimiser step (or whatever `history`'s "step" counts)."""
    train = [(h["step"], h["train_loss"]) for h in history if "train_loss" in h]
    val = [(h["step"], h["val_loss"]) for h in history if "val_loss" in h]
    fig, ax = plt.subplots(figsize=(6, 3.5))
    if train:
        ax.plot(*zip(*train), label="train (minibatch)", alpha=0.6, linewidth=0.8)
    if val:
        ax.plot(*zip(*val), label="val", marker="o", markersize=3)
    ax.set(xlabel=xlabel, ylabel=ylabel, title=title)
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def save_figure(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if fig.get_layout_engine() is None:  # a figure built with layout="constrained" keeps its own
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A Markdown table: the header, a rule, one line per row (cells as str())."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def failures_table(cases: Sequence[dict[str, Any]], header: Sequence[str], n: int) -> str:
    """The first n failure cases (input, label, prediction, confidence) as a Markdown table, or "None."."""
    rows = [[c["input"], c["label"], c["prediction"], f"{c['confidence']:.3f}"] for c in cases[:n]]
    return markdown_table(header, rows) if rows else "None."


def result_line(summary: dict[str, Any]) -> str:
    """The headline metric against the lab's bar, or alone when the lab sets no bar."""
    value = number(summary["value"])
    if summary.get("bar") is None:  # nothing to meet: the value alone
        return f"{summary['metric']} = {value}" if summary.get("metric") else "no headline metric"
    sign = "≤" if summary["goal"] == "min" else "≥"
    verdict = "met" if summary["met"] else "not met"
    line = f"{summary['metric']} = {value} against the bar {sign} {summary['bar']}: **{verdict}**"
    if summary["preset"] != "full" or summary["data_source"] != "real":
        line += " (the bar is set for the full preset on real data)"
    return line


def write_report(
    run_dir: Path,
    summary: dict[str, Any],
    config: dict[str, Any],
    metrics: dict[str, float],
    figures: list[tuple[str, Path]],
    sections: list[tuple[str, str]],
) -> Path:
    """Write run_dir/report.md; figure paths are linked relative to the run directory."""
    parts = [
        f"# {summary['lab']} · {summary['title']}",
        f"Run `{summary['run_id']}` · preset `{summary['preset']}` · data `{summary['data_source']}` "
        f"({summary.get('data_origin', '')}) · seed {summary['seed']} · device {summary['device']} · "
        f"{plural(summary['threads'], 'thread')} · {summary['seconds']:.1f} s · commit {summary['commit']}",
        f"## Result\n{result_line(summary)}",
        markdown_table(("metric", "value"), [(k, number(v)) for k, v in metrics.items()]),
        "## Figures",
        *[f"### {title}\n![{title}]({path.relative_to(run_dir)})" for title, path in figures],
        *[f"## {title}\n{body}" for title, body in sections],
        "## Config",
        "```json\n" + json.dumps(config, indent=2) + "\n```",
    ]
    path = run_dir / "report.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path
