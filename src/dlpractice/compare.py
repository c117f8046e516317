"""`dlp runs compare`: two or more runs side by side.

What differs in how they were asked for (the spec and the final config, only the keys that differ), their
metrics (best marked where the metric is the lab's headline), and their train and val loss overlaid in one
figure. The loss history comes from the run's checkpoint, else from MLflow's metric history. The report
is written under $DLP_HOME/compare/<a>-vs-<b>/ (compare.md and loss.png).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlpractice.checkpoint import read_checkpoint
from dlpractice.errors import DlpError
from dlpractice.formatting import number
from dlpractice.home import dlp_home, ensure_writable
from dlpractice.registry import Lab, lab_record
from dlpractice.runner import RunRecord, find_run, read_run


class _Absent:
    """A key one run has and another has not (a config field of another lab)."""

    def __repr__(self) -> str:
        return "ABSENT"


ABSENT = _Absent()
LOSSES = ("train_loss", "val_loss")


def differing(values: Sequence[Mapping[str, Any]]) -> dict[str, list[Any]]:
    """The keys whose values are not the same in every mapping, in first-seen order, with each mapping's
    value (ABSENT where it lacks the key)."""
    keys = list(dict.fromkeys(key for mapping in values for key in mapping))
    rows = {key: [mapping.get(key, ABSENT) for mapping in values] for key in keys}
    return {key: row for key, row in rows.items() if any(v != row[0] for v in row[1:])}


def best_indices(values: Sequence[Any], goal: str) -> set[int]:
    """Where the best of `values` lies (every index of a tie); none when fewer than two are numbers."""
    numbers = {i: float(v) for i, v in enumerate(values) if _is_number(v)}
    if len(numbers) < 2:
        return set()
    best = min(numbers.values()) if goal == "min" else max(numbers.values())
    return {i for i, v in numbers.items() if v == best}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def cell(value: Any) -> str:
    """A value as the table shows it: numbers by formatting.number, a missing key as a dash."""
    if value is ABSENT:
        return "—"
    if value is None:
        return "None"
    return number(value)


@dataclass
class Row:
    """One line of a comparison table: a name and one cell per run; `best` marks the best cells."""

    name: str
    cells: list[str]
    best: set[int] = field(default_factory=set)


@dataclass
class ComparedRun:
    """One run as the comparison sees it: its record, its lab and its loss history (None: none found)."""

    run_dir: Path
    record: RunRecord
    lab: Lab
    history: list[dict[str, float]] | None

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def label(self) -> str:
        """The run id, with its state where it did not finish."""
        state = self.record.state
        return self.run_id if state == "finished" else f"{self.run_id} ({state})"


@dataclass
class Comparison:
    runs: list[ComparedRun]
    about: list[Row]  # always shown: lab, status, seconds
    differences: list[Row]  # the spec and config keys that differ
    metrics: list[Row]
    notes: list[str]


def load_runs(names: Sequence[str]) -> list[ComparedRun]:
    """The runs that ids or unique prefixes name; fewer than two, or one run twice, is an error."""
    if len(names) < 2:
        raise DlpError(f"compare needs two runs or more, got {len(names)}; `dlp runs` lists them")
    seen: dict[Path, str] = {}
    runs = []
    for name in names:
        run_dir = find_run(name)
        if run_dir in seen:
            raise DlpError(f"run {run_dir.name} is given twice ({seen[run_dir]!r} and {name!r})")
        seen[run_dir] = name
        record = read_run(run_dir)
        runs.append(ComparedRun(run_dir, record, lab_record(record.lab), loss_history(run_dir, record)))
    return runs


def loss_history(run_dir: Path, record: RunRecord) -> list[dict[str, float]] | None:
    """Train and val loss by step: the checkpoint's history, else MLflow's; None when neither has one."""
    path = run_dir / "checkpoint.safetensors"
    if path.is_file():
        try:
            history = read_checkpoint(path).extra.get("history")
        except DlpError:  # a damaged checkpoint: MLflow may still have the curve
            history = None
        if history:
            return list(history)
    return _tracked_history(record.mlflow_run_id)


def _tracked_history(mlflow_run_id: str) -> list[dict[str, float]] | None:
    from dlpractice.tracking import client, uses_local_store

    if not mlflow_run_id or (uses_local_store() and not (dlp_home() / "mlflow.db").exists()):
        return None
    try:
        from mlflow.exceptions import MlflowException

        mlflow_client = client()
        history = [
            {"step": point.step, name: point.value}
            for name in LOSSES
            for point in mlflow_client.get_metric_history(mlflow_run_id, name)
        ]
    except (MlflowException, OSError):  # the run is gone from the store: no curve, the rest still compares
        return None
    return sorted(history, key=lambda h: h["step"]) or None


def spec_values(record: RunRecord) -> dict[str, Any]:
    """What the user asked for, as `dlp run` flags: the spec fields a comparison shows."""
    spec = record.spec
    return {
        "--preset": spec.preset,
        "--data": record.data_source or spec.data,
        "--seed": spec.seed,
        "--set": " ".join(spec.overrides) or "—",
    }


def compare(runs: Sequence[ComparedRun]) -> Comparison:
    """The tables and notes of a comparison (no files written)."""
    records = [run.record for run in runs]
    about = [
        Row("lab", [run.lab.id for run in runs]),
        Row("status", [run.record.state for run in runs]),
        Row("seconds", [number(round(r.seconds, 1)) for r in records]),
    ]
    differences = [
        Row(key, [cell(v) for v in values])
        for key, values in differing([{**spec_values(r), **r.config} for r in records]).items()
    ]
    return Comparison(list(runs), about, differences, metric_rows(runs), _notes(runs))


def metric_rows(runs: Sequence[ComparedRun]) -> list[Row]:
    """The union of the runs' metrics; the best marked on a row that is a compared lab's headline metric."""
    names = list(dict.fromkeys(name for run in runs for name in run.record.metrics))
    rows = []
    for name in names:
        values = [run.record.metrics.get(name) for run in runs]
        goals = {run.lab.goal for run in runs if run.lab.metric == name}
        best = best_indices(values, goals.pop()) if len(goals) == 1 else set()
        rows.append(Row(name, [number(v) for v in values], best))
    return rows


def _notes(runs: Sequence[ComparedRun]) -> list[str]:
    notes = []
    labs = list(dict.fromkeys(run.lab.id for run in runs))
    if len(labs) > 1:
        notes.append(
            f"runs of different labs ({', '.join(labs)}): their configs and metrics differ by design, "
            "and a loss may count different things"
        )
    for run in runs:
        if run.record.state != "finished":
            notes.append(f"{run.run_id} is {run.record.state}: what it recorded so far is compared")
        if run.history is None:
            notes.append(f"{run.run_id} has no loss history (no checkpoint, nothing in MLflow): no curve")
    return notes


def report_dir(runs: Sequence[ComparedRun]) -> Path:
    """$DLP_HOME/compare/<a>-vs-<b>[-and-N-more]: one folder per set of runs, rewritten on each compare."""
    name = f"{runs[0].run_id}-vs-{runs[1].run_id}"
    if len(runs) > 2:
        name += f"-and-{len(runs) - 2}-more"
    return dlp_home() / "compare" / name


def loss_figure(runs: Sequence[ComparedRun], path: Path) -> Path | None:
    """Every run's train loss (thin) and val loss (markers) in one colour per run; None: no run has one."""
    curves = [run for run in runs if run.history]
    if not curves:
        return None
    import matplotlib.pyplot as plt

    from dlpractice.report import save_figure

    fig, ax = plt.subplots(figsize=(7, 4))
    for colour, run in zip(plt.rcParams["axes.prop_cycle"].by_key()["color"] * len(runs), curves):
        for name, style in (("train_loss", {"alpha": 0.5, "linewidth": 0.8}), ("val_loss", {"marker": "o"})):
            points = [(h["step"], h[name]) for h in run.history if name in h]
            if points:
                label = f"{run.run_id} {name.removesuffix('_loss')}"
                ax.plot(*zip(*points), color=colour, label=label, markersize=3, **style)
    ax.set(xlabel="step", ylabel="loss", title="Loss curves")
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    return save_figure(fig, path)


def write_comparison(comparison: Comparison) -> Path:
    """compare.md (and loss.png when a run has a curve) under report_dir(); the Markdown's path."""
    from dlpractice.report import markdown_table

    folder = ensure_writable(report_dir(comparison.runs))
    figure = loss_figure(comparison.runs, folder / "loss.png")
    header = ["", *(run.label for run in comparison.runs)]
    parts = [
        f"# Comparing {len(comparison.runs)} runs",
        *[f"- {note}" for note in comparison.notes],
        markdown_table(header, _markdown_rows(comparison.about)),
        "## What differs",
        markdown_table(header, _markdown_rows(comparison.differences))
        if comparison.differences
        else "Nothing: the same spec and config.",
        "## Metrics",
        "The best value is in bold where the metric is the lab's headline metric.",
        markdown_table(header, _markdown_rows(comparison.metrics))
        if comparison.metrics
        else "None recorded.",
        "## Loss curves",
        f"![Loss curves]({figure.name})" if figure else "No run has a loss history.",
    ]
    path = folder / "compare.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def _markdown_rows(rows: Sequence[Row]) -> list[list[str]]:
    return [
        [row.name, *(f"**{c}**" if i in row.best else c for i, c in enumerate(row.cells))] for row in rows
    ]
