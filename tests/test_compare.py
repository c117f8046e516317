"""`dlp runs compare`: the diff and best-value rules, bad input, and two real l2 runs through `dlp`."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from dlpractice.compare import (
    ABSENT,
    best_indices,
    compare,
    differing,
    load_runs,
    loss_figure,
    write_comparison,
)
from dlpractice.errors import DlpError
from dlpractice.formatting import number
from dlpractice.runner import RunRecord, RunSpec


def test_differing_keeps_only_the_keys_that_differ_in_first_seen_order():
    runs = [{"lr": 0.1, "steps": 30, "a": 1}, {"lr": 0.05, "steps": 30, "a": 1, "b": 2}]
    assert differing(runs) == {"lr": [0.1, 0.05], "b": [ABSENT, 2]}
    assert differing([{"x": 1}, {"x": 1}, {"x": 1}]) == {}
    assert differing([{"x": 1}, {"x": 1}, {"x": 2}]) == {"x": [1, 1, 2]}  # any run differing counts
    assert differing([{"x": None}, {}]) == {"x": [None, ABSENT]}  # a None value is not a missing key


def test_best_indices_by_goal_with_ties_and_gaps():
    assert best_indices([3.0, 2.5, 2.7], "min") == {1}
    assert best_indices([3.0, 2.5, 2.7], "max") == {0}
    assert best_indices([2.5, None, 2.5], "min") == {0, 2}  # a tie marks both; a missing value none
    assert best_indices([2.5, math.nan, 3.0], "min") == {0}
    assert best_indices([2.5, None], "min") == set()  # nothing to beat


def _fake_run(lab: str, config: dict, metrics: dict, status: str = "finished", **spec) -> str:
    """A run directory holding only run.json (no training): what the comparison reads."""
    from dlpractice.home import runs_dir

    run_id = f"{lab}-20260101-000000-{len(list(runs_dir().glob('*'))) if runs_dir().exists() else 0:04x}"
    run_dir = runs_dir() / run_id
    run_dir.mkdir(parents=True)
    record = RunRecord(
        RunSpec(lab=lab, preset="smoke", **spec), run_id, config, status=status, metrics=metrics
    )
    record.save(run_dir)
    return run_id


def test_metrics_mark_the_best_only_on_the_labs_headline_metric():
    a = _fake_run("l2", {"lr": 0.1}, {"val_loss": 2.4, "params": 100.0}, overrides=("lr=0.1",))
    b = _fake_run("l2", {"lr": 0.2}, {"val_loss": 2.2, "params": 50.0}, overrides=("lr=0.2",), seed=3)
    comparison = compare(load_runs([a, b]))
    rows = {row.name: row for row in comparison.metrics}
    assert rows["val_loss"].best == {1} and rows["val_loss"].cells == ["2.4", "2.2"]
    assert rows["params"].best == set()  # not l2's metric: fewer is not better by any rule we know
    differences = {row.name: row.cells for row in comparison.differences}
    assert differences == {"--seed": ["1337", "3"], "--set": ["lr=0.1", "lr=0.2"], "lr": ["0.1", "0.2"]}


def test_runs_of_two_labs_and_an_unfinished_run_say_so(dlp_home: Path):
    a = _fake_run("l1", {"smoothing": 1}, {"test_nll": 2.4})
    b = _fake_run("l2", {"n_hidden": 64}, {}, status="interrupted")
    runs = load_runs([a, b])
    comparison = compare(runs)
    notes = " ".join(comparison.notes)
    assert "different labs (l1, l2)" in notes and f"{b} is interrupted" in notes
    assert f"{a} has no loss history" in notes  # no checkpoint, nothing tracked
    assert {row.name: row.cells for row in comparison.differences}["smoothing"] == ["1", "—"]
    assert runs[1].label == f"{b} (interrupted)"
    assert loss_figure(runs, dlp_home / "loss.png") is None
    report = write_comparison(comparison).read_text()
    assert "No run has a loss history." in report and f"{b} (interrupted)" in report


def test_bad_input_is_one_line():
    a = _fake_run("l2", {}, {})
    with pytest.raises(DlpError, match="two runs or more, got 1"):
        load_runs([a])
    with pytest.raises(DlpError, match="given twice"):
        load_runs([a, a[:-2]])  # the same run by its id and by a prefix
    with pytest.raises(DlpError, match="no run 'l9-nope'"):
        load_runs([a, "l9-nope"])
    _fake_run("l2", {}, {})
    with pytest.raises(DlpError, match="ambiguous"):
        load_runs([a, "l2-"])


def _run_id(stdout: str) -> str:
    return next(line.split()[2] for line in stdout.splitlines() if line.startswith("run id:"))


@pytest.mark.slow
def test_compare_two_l2_runs_through_dlp(dlp, dlp_home: Path):
    ids = []
    for lr in ("0.003", "0.05"):
        result = dlp(
            "run", "l2", "--preset", "smoke", "--set", "steps=30", "--set", f"lr={lr}", "--no-progress"
        )
        assert result.returncode == 0, result.stderr
        ids.append(_run_id(result.stdout))
    a, b = ids
    shown = dlp("runs", "compare", a[:-2], b)  # a unique prefix is enough
    assert shown.returncode == 0, shown.stderr
    assert "lr" in shown.stdout and "0.003" in shown.stdout and "0.05" in shown.stdout
    assert "n_hidden" not in shown.stdout  # the same in both: not a difference
    folder = dlp_home / "compare" / f"{a}-vs-{b}"
    assert f"report: {folder / 'compare.md'}" in shown.stdout
    assert (folder / "loss.png").stat().st_size > 0  # curves from the checkpoints
    markdown = (folder / "compare.md").read_text()
    losses = [
        json.loads((dlp_home / "runs" / i / "run.json").read_text())["metrics"]["val_loss"] for i in ids
    ]
    best = min(losses)
    assert "| val_loss | " in markdown and f"**{number(best)}**" in markdown
    assert markdown.count("**") == 2  # one best cell: the params and other rows are not marked

    # no checkpoints: the curves come from MLflow's metric history; an interrupted run is compared as it is
    for run_id in ids:
        (dlp_home / "runs" / run_id / "checkpoint.safetensors").unlink()
    record = json.loads((dlp_home / "runs" / b / "run.json").read_text())
    (dlp_home / "runs" / b / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    shutil.rmtree(folder)
    again = dlp("runs", "compare", a, b)
    assert again.returncode == 0, again.stderr
    assert "(interrupted)" in again.stdout and "no loss history" not in again.stdout
    assert (folder / "loss.png").stat().st_size > 0

    twice = dlp("runs", "compare", a, a)
    assert twice.returncode == 2 and twice.stderr.count("\n") == 1 and "given twice" in twice.stderr
