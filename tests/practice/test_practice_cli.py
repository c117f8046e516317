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


@pytest.mark.slow
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
        cli.practice("n1")


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
    assert any(" r4 " in line and "locked" in line for line in everything.output.splitlines())

    kept = CliRunner().invoke(cli.app, ["progress", "--reset"], input="n\n")
    assert "nothing changed" in kept.stdout and best_scores() == {"l1": 100.0}
    gone = answer("progress", "--reset", text="y\n")  # the real entry point, prompt included
    assert "progress reset" in gone.stdout and best_scores() == {}


def edit_manifest(workspace: Path, change) -> None:
    path = workspace / "practice.json"
    manifest = json.loads(path.read_text())
    change(manifest["exercises"])
    path.write_text(json.dumps(manifest))


@pytest.mark.slow
@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda entries: entries.pop("l1.2"), id="exercise-deleted"),
        pytest.param(lambda entries: entries["l1.2"].update(points=0), id="points-zeroed"),
    ],
)
def test_practice_json_cannot_raise_the_score(dlp, tmp_path, tamper) -> None:
    """Which exercises a lab has and their points come from the package: with l1.2 still a stub, editing
    the workspace's manifest leaves the score at 50 and records no pass."""
    workspace = tmp_path / "ws"
    assert dlp("practice", "l1", "--dir", str(workspace)).returncode == 0
    solve(workspace, "l1.1")
    edit_manifest(workspace, tamper)
    checked = dlp("check", "l1", "--dir", str(workspace), "--json")
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    by_id = {row["id"]: row for row in report["exercises"]}
    assert set(by_id) == {"l1.1", "l1.2"} and by_id["l1.2"]["points"] == 1
    assert by_id["l1.1"]["passed"] and not by_id["l1.2"]["passed"]
    assert report["score"] == 50.0 and best_scores() == {"l1": 50.0}
    shown = CliRunner().invoke(cli.app, ["progress"], env={"COLUMNS": "200"})
    assert "open · best 50" in shown.output and "passed" not in shown.output.split("l1   ")[1].splitlines()[0]


def break_region(workspace: Path, exercise_id: str, code: str) -> int:
    """Put `code` in place of the exercise's stub; the 1-based line it lands on."""
    exercise = find_exercise(exercise_id)
    path = workspace / exercise.path.name
    lines = path.read_text().splitlines()
    index = next(i for i, line in enumerate(lines) if f"exercise {exercise_id}:" in line)
    lines[index] = exercise.indent + code
    path.write_text("\n".join(lines) + "\n")
    return index + 1


@pytest.mark.slow
def test_check_names_a_syntax_error_and_an_exiting_process(tmp_path) -> None:
    """A syntax error is reported as the SyntaxError and where it is; code that ends the process is
    reported as that, with the exit code, not as pytest failing to start."""
    from dlpractice.practice.checker import check_workspace
    from dlpractice.practice.workspace import write_workspace

    broken = tmp_path / "broken"
    write_workspace("l1", broken)
    line = break_region(broken, "l1.1", "counts = = 1")
    (row,) = check_workspace("l1", broken, only="l1.1").results
    assert row.failure == f"SyntaxError: invalid syntax (l1_makemore_bigram.py, line {line})", row.failure
    assert "does not run as written" in row.hint

    exiting = tmp_path / "exiting"
    write_workspace("l1", exiting)
    break_region(exiting, "l1.2", "import os; os._exit(3)")
    (row,) = check_workspace("l1", exiting, only="l1.2").results
    assert not row.passed and "exited with code 3 before reporting" in row.failure, row.failure
    assert "pytest did not start" not in row.failure and "ends the process" in row.hint


def test_progress_shows_a_passed_lab_whose_prerequisite_is_not_passed() -> None:
    record_check(CheckReport("l2", "ws", [result("l2.1", True), result("l2.2", True)], partial=False))
    shown = CliRunner().invoke(cli.app, ["progress"], env={"COLUMNS": "200"})
    assert shown.exit_code == 0, shown.output
    line = next(line for line in shown.output.splitlines() if "makemore-mlp" in line)
    assert "passed · best 100 · 2 exercises · needs l1" in line
    assert "1 of " in shown.output  # the footer counts what the tree shows


def test_progress_reads_a_read_only_home(dlp_home, monkeypatch) -> None:
    """`dlp progress` only reads: it works where nothing can be written, and changes no byte."""
    from dlpractice.practice import progress

    record_check(CheckReport("l1", "ws", [result("l1.1", True), result("l1.2", True)], partial=False))
    db = progress.db_path()
    before = db.read_bytes()
    dlp_home.chmod(0o555)
    db.chmod(0o444)

    def refuse(path: Path) -> Path:  # what a read-only home does (root writes through chmod)
        raise DlpError(f"cannot write to {path}")

    monkeypatch.setattr(progress, "ensure_writable", refuse)
    try:
        shown = CliRunner().invoke(cli.app, ["progress"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0, shown.output
        assert "passed · best 100" in shown.output
        assert db.read_bytes() == before and sorted(p.name for p in dlp_home.iterdir()) == ["progress.db"]
    finally:
        dlp_home.chmod(0o755)
