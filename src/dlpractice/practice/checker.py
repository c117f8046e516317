"""`dlp check`: grade a workspace, one exercise at a time, each in its own pytest process.

An exercise passes when every one of its checks (the tests marked `@pytest.mark.exercise(id)`) passes
against the learner's file. Its points count toward the lab's score out of 100; the lab passes at 70.
A check that runs past the time limit fails (an endless loop must not hang the grader).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from dlpractice.errors import DlpError
from dlpractice.extras import extra_for, install_line
from dlpractice.practice.exercises import Exercise, check_files, exercises_for
from dlpractice.practice.workspace import ENV_DIR, read_manifest

PASS_MARK = 70.0
DEFAULT_TIMEOUT = 120.0
PLUGIN = "dlpractice.practice.pytest_plugin"
MISSING_MODULE = re.compile(r"No module named '(?P<name>[\w.]+)'")


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


def hint_for(failure: str, exercise: Exercise, files: list[Path], timed_out: bool, timeout: float) -> str:
    where = f"{exercise.path.name} ({exercise.function})"
    if timed_out:
        return f"stopped after {timeout:.0f} s: look for a loop that never ends in {where}"
    missing = MISSING_MODULE.search(failure)
    if missing and extra_for(missing["name"]):
        extra = extra_for(missing["name"])
        return f"the checks need the {extra} extra: {install_line(extra)}"
    if failure.startswith("the process running the checks exited"):
        return f"{where} ends the process (exit(), os._exit()): return a value instead"
    if "NotImplementedError" in failure:
        return f"not started: replace the `raise NotImplementedError` in {where}"
    if failure.startswith(
        ("SyntaxError", "IndentationError", "ImportError", "NameError", "your file exited")
    ):
        return f"{exercise.path.name} does not run as written; fix it first"
    checks = ", ".join(f"practice/checks/{path.name}" for path in files) or "its checks"
    return f"re-read the task ({exercise.task}); the checks are in dlpractice/{checks}"


def pytest_command(files: list[Path], exercises: str, report: Path, first_failure: bool) -> list[str]:
    """The pytest run that grades `exercises` ("l2.1" or "all") with the checks in `files`.

    It takes no configuration from where it runs (`-c` names an empty one beside the report), so an
    installed package grades the same as the repository, whatever pytest settings the learner has."""
    config = report.with_name("pytest.ini")
    config.write_text("[pytest]\n", encoding="utf-8")
    return [
        sys.executable,
        "-m",
        "pytest",
        *map(str, files),
        "-q",
        "-c",
        str(config),
        "--rootdir",
        str(report.parent),
        "-p",
        "no:cacheprovider",
        "-p",
        PLUGIN,
        "--dlp-exercise",
        exercises,
        "--dlp-report",
        str(report),
        *(["--dlp-first-failure"] if first_failure else []),
    ]


def run_checks(
    exercise_id: str, files: list[Path], workspace: Path, timeout: float
) -> tuple[dict, bool, float]:
    """Run one exercise's checks in a subprocess; (the report JSON, timed out?, seconds)."""
    with tempfile.TemporaryDirectory(prefix="dlp-check-") as tmp:
        report = Path(tmp) / "report.json"
        command = [
            *pytest_command(files, exercise_id, report, first_failure=True),
            "--timeout",
            str(int(timeout)),
        ]
        env = {**os.environ, ENV_DIR: str(workspace.resolve())}
        start = time.perf_counter()
        try:
            done = subprocess.run(
                command, cwd=tmp, env=env, capture_output=True, text=True, timeout=timeout + 30
            )
        except subprocess.TimeoutExpired:
            return {}, True, time.perf_counter() - start
        seconds = time.perf_counter() - start
        if not report.exists():
            return {"errors": [no_report(done)]}, False, seconds
        return json.loads(report.read_text()), False, seconds


def no_report(done: subprocess.CompletedProcess) -> str:
    """Why the checks' process ended without writing its report, from its exit code and last words."""
    said = [line.strip() for line in (done.stderr + done.stdout).splitlines() if line.strip()]
    last = f": {said[-1][:120]}" if said else ""
    if MISSING_MODULE.search(last) and "pytest" in last:
        return f"pytest is not installed where dlp runs ({sys.executable}){last}"
    return (
        f"the process running the checks exited with code {done.returncode} before reporting "
        f"(does your code call exit(), os._exit() or kill the process?){last}"
    )


def grade(exercise: Exercise, files: list[Path], workspace: Path, timeout: float) -> ExerciseResult:
    if not files:
        outcome, timed_out, seconds = {"errors": ["this exercise has no checks yet"]}, False, 0.0
    else:
        outcome, timed_out, seconds = run_checks(exercise.id, files, workspace, timeout)
    checks = [
        c
        for c in outcome.get("checks", {}).values()
        if c["exercise"] == exercise.id and c["outcome"] != "skipped"
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
        id=exercise.id,
        task=exercise.task,
        points=exercise.points,
        passed=not failures,
        checks=len(checks),
        failure=failure[:200],
        hint=hint_for(failure, exercise, files, timed_out, timeout) if failures else "",
        seconds=round(seconds, 2),
    )


def check_workspace(
    lab_id: str, directory: Path, only: str | None = None, timeout: float = DEFAULT_TIMEOUT
) -> CheckReport:
    """Grade the workspace in `directory` (all of the lab's exercises, or only one).

    Which exercises the lab has and what each is worth come from the installed package, never from
    the workspace's practice.json: an exercise missing there is graded (and fails), not skipped."""
    if not directory.is_dir():
        raise DlpError(f"no workspace at {directory}; `dlp practice {lab_id}` writes one")
    manifest = read_manifest(directory)
    if manifest.get("lab") != lab_id:
        raise DlpError(f"{directory} is the workspace of lab {manifest.get('lab')}, not {lab_id}")
    exercises = exercises_for(lab_id)
    if only is not None:
        chosen = [e for e in exercises if e.id == only]
        if not chosen:
            ids = ", ".join(e.id for e in exercises)
            raise DlpError(f"lab {lab_id} has no exercise {only!r}; it has {ids}")
        exercises = chosen
    files = check_files()
    workers = max(1, min(len(exercises), (os.cpu_count() or 2) // 2))  # each check is a process of its own
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda e: grade(e, files.get(e.id, []), directory, timeout), exercises))
    return CheckReport(lab_id, str(directory), results, partial=only is not None)
