"""`dlp practice`, `dlp check`, `dlp progress` through the real entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dlpractice import cli
from dlpractice.errors import DlpError
from dlpractice.practice.checker import CheckReport, ExerciseResult
from dlpractice.practice.exercises import find_exercise
from dlpractice.practice.progress import best_scores, record_check, syllabus_progress
from dlpractice.practice.workspace import replace_region


def answer(*args: str, text: str) -> subprocess.CompletedProcess:
    """`dlp` with `text` typed at its prompt."""
    dlp = str(Path(sys.executable).parent / "dlp")
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([dlp, *args], input=text, capture_output=True, text=True, timeout=120, env=env)


def solve(workspace, exercise_id: str) -> None:
    """Put the reference solution back into one region of the workspace file."""
    exercise = find_exercise(exercise_id)
    reference = exercise.path.read_text().splitlines()
    path = workspace / exercise.path.name
    path.write_text(replace_region(path.read_text(), exercise, reference[exercise.begin + 1 : exercise.end]))


def result(exercise_id: str, passed: bool) -> ExerciseResult:
    return ExerciseResult(exercise_id, "task", 1, passed, 1, "" if passed else "AssertionError", "", 0.1)


def test_practice_then_check_half_solved_workspace(dlp, tmp_path) -> None:
    workspace = tmp_path / "ws"
    made = dlp("practice", "l1", "--dir", str(workspace))
    assert made.returncode == 0, made.stderr
    assert "l1.1" in made.stdout and (workspace / "l1_makemore_bigram.py").exists()

    solve(workspace, "l1.1")
    again = dlp("practice", "l1", "--dir", str(workspace))
    assert again.returncode == 2 and "has your edits in l1_makemore_bigram.py" in again.stderr

    checked = dlp("check", "l1", "--dir", str(workspace), "--json")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    by_id = {row["id"]: row for row in report["exercises"]}
    assert by_id["l1.1"]["passed"] and by_id["l1.1"]["checks"] == 2
    assert not by_id["l1.2"]["passed"] and by_id["l1.2"]["failure"].startswith("NotImplementedError")
    assert "not started" in by_id["l1.2"]["hint"]
    assert report["score"] == 50.0 and not report["passed"] and best_scores() == {"l1": 50.0}


def test_check_errors_are_one_line(dlp, tmp_path) -> None:
    missing = dlp("check", "l1", "--dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "dlp practice l1" in missing.stderr


def test_practice_suggests_and_refuses_labs_without_exercises() -> None:
    with pytest.raises(DlpError, match="did you mean 'makemore-bigram'"):
        cli.practice("makemore-bigramm")
    with pytest.raises(DlpError, match="no exercises yet"):
        cli.practice("r4")


def test_progress_unlocks_after_a_pass_and_resets_after_asking() -> None:
    assert not next(p for p in syllabus_progress() if p.id == "l2").unlocked
    record_check(CheckReport("l1", "ws", [result("l1.1", True), result("l1.2", False)], partial=False))
    record_check(CheckReport("l1", "ws", [result("l1.1", True), result("l1.2", True)], partial=False))
    record_check(CheckReport("l1", "ws", [result("l1.1", False)], partial=True))  # not a lab score
    assert best_scores() == {"l1": 100.0}
    labs = {p.id: p for p in syllabus_progress()}
    assert labs["l1"].passed and labs["l2"].unlocked and labs["l2"].best is None

    shown = CliRunner().invoke(cli.app, ["progress"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    assert "l1   makemore-bigram" in shown.output and "passed · best 100" in shown.output
    assert "hidden (--all shows them)" in shown.output
    everything = CliRunner().invoke(cli.app, ["progress", "--all"], env={"COLUMNS": "200"})
    assert "r4" in everything.output and "planned" in everything.output

    kept = CliRunner().invoke(cli.app, ["progress", "--reset"], input="n\n")
    assert "nothing changed" in kept.stdout and best_scores() == {"l1": 100.0}
    gone = answer("progress", "--reset", text="y\n")  # the real entry point, prompt included
    assert "progress reset" in gone.stdout and best_scores() == {}
