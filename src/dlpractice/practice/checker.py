"""`dlp check`: grade a workspace, one exercise at a time, each in its own pytest process.

An exercise passes when every one of its checks (the tests marked `@pytest.mark.exercise(id)`) passes
against the learner's file. Its points count toward the lab's score out of 100; the lab passes at 70.
A check that runs past the time limit fails (an endless loop must not hang the grader).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from dlpractice.errors import DlpError
from dlpractice.practice.exercises import TESTS_DIR, check_files, exercises_for
from dlpractice.practice.workspace import ENV_DIR, read_manifest

PASS_MARK = 70.0
DEFAULT_TIMEOUT = 120.0


@dataclass
class ExerciseResult:
    id: str
    task: str
    points: int
    passed: bool
    checks: int  # how many checks ran
    failure: str  # the first failing assertion, in one line ("" when passed)
    hint: str
    seconds: float


@dataclass
class CheckReport:
    lab: str
    directory: str
    results: list[ExerciseResult]
    partial: bool  # only some exercises were checked (--exercise): not a lab score

    @property
    def score(self) -> float:
        total = sum(r.points for r in self.results)
        return round(100.0 * sum(r.points for r in self.results if r.passed) / total, 1) if total else 0.0

    @property
    def passed(self) -> bool:
        return self.score >= PASS_MARK

    def to_json(self) -> dict:
        return {
            "lab": self.lab,
            "directory": self.directory,
            "score": self.score,
            "passed": self.passed,
            "pass_mark": PASS_MARK,
            "partial": self.partial,
            "exercises": [asdict(r) for r in self.results],
        }


def hint_for(failure: str, entry: dict, timed_out: bool, timeout: float) -> str:
    where = f"{entry['file']} ({entry['function']})"
    if timed_out:
        return f"stopped after {timeout:.0f} s: look for a loop that never ends in {where}"
    if "NotImplementedError" in failure:
        return f"not started: replace the `raise NotImplementedError` in {where}"
    if failure.startswith(("SyntaxError", "IndentationError", "ImportError", "NameError")):
        return f"{entry['file']} does not run as written; fix it first"
    return f"re-read the task ({entry['task']}) and the check's docstring in tests/"


def run_checks(
    exercise_id: str, files: list[Path], workspace: Path, timeout: float
) -> tuple[dict, bool, float]:
    """Run one exercise's checks in a subprocess; (the report JSON, timed out?, seconds)."""
    import time

    with tempfile.TemporaryDirectory(prefix="dlp-check-") as tmp:
        report = Path(tmp) / "report.json"
        command = [
            sys.executable, "-m", "pytest", *map(str, files), "-q", "-p", "no:cacheprovider",
            "--dlp-exercise", exercise_id, "--dlp-report", str(report), "--dlp-first-failure",
            "--timeout", str(int(timeout)),
        ]  # fmt: skip
        env = {**os.environ, ENV_DIR: str(workspace.resolve())}
        start = time.perf_counter()
        try:
            subprocess.run(
                command, cwd=TESTS_DIR.parent, env=env, capture_output=True, text=True, timeout=timeout + 30
            )
        except subprocess.TimeoutExpired:
            return {}, True, time.perf_counter() - start
        seconds = time.perf_counter() - start
        if not report.exists():
            return (
                {"errors": ["pytest did not start: is the dev install complete (pip install -e .[dev])?"]},
                False,
                seconds,
            )
        return json.loads(report.read_text()), False, seconds


def grade(
    exercise_id: str, entry: dict, files: list[Path], workspace: Path, timeout: float
) -> ExerciseResult:
    if not files:
        outcome, timed_out, seconds = {"errors": ["this exercise has no checks yet"]}, False, 0.0
    else:
        outcome, timed_out, seconds = run_checks(exercise_id, files, workspace, timeout)
    checks = [
        c
        for c in outcome.get("checks", {}).values()
        if c["exercise"] == exercise_id and c["outcome"] != "skipped"
    ]
    failures = [c["message"] for c in checks if c["outcome"] == "failed"] + outcome.get("errors", [])
    if timed_out:
        failures.insert(0, f"timed out after {timeout:.0f} s")
    elif not checks and not failures:
        failures.append("no check ran")
    failure = failures[0] if failures else ""
    if "Timeout" in failure:
        timed_out = True
    return ExerciseResult(
        id=exercise_id,
        task=entry["task"],
        points=int(entry["points"]),
        passed=not failures,
        checks=len(checks),
        failure=failure[:200],
        hint=hint_for(failure, entry, timed_out, timeout) if failures else "",
        seconds=round(seconds, 2),
    )


def check_workspace(
    lab_id: str, directory: Path, only: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> CheckReport:
    """Grade the workspace in `directory` (all of the lab's exercises, or only one)."""
    if not TESTS_DIR.is_dir():
        raise DlpError(
            f"the checks live in the repository's tests/ ({TESTS_DIR} is missing): clone the repository"
        )
    if not directory.is_dir():
        raise DlpError(f"no workspace at {directory}; `dlp practice {lab_id}` writes one")
    manifest = read_manifest(directory)
    if manifest.get("lab") != lab_id:
        raise DlpError(f"{directory} is the workspace of lab {manifest.get('lab')}, not {lab_id}")
    entries = manifest["exercises"]
    ids = [e.id for e in exercises_for(lab_id) if e.id in entries]
    if only is not None:
        if only not in entries:
            raise DlpError(f"lab {lab_id}'s workspace has no exercise {only!r}; it has {', '.join(ids)}")
        ids = [only]
    files = check_files()
    workers = max(1, min(len(ids), (os.cpu_count() or 2) // 2))  # each check is a process of its own
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: grade(i, entries[i], files.get(i, []), directory, timeout), ids))
    return CheckReport(lab_id, str(directory), results, partial=only is not None)
