"""The pytest side of practice mode (loaded by tests/conftest.py).

- A test marked `@pytest.mark.exercise("l2.1")` that takes an `impl` argument receives the module that
  holds the exercise: the package's own (reference) module, or the learner's file when the checker
  sets $DLP_PRACTICE_DIR. So one test grades both. `impl` is a parameter, not a fixture, so it also
  works under hypothesis's `@given`.
- `--dlp-exercise ID[,ID...]` (or `all`) keeps only the checks of those exercises.
- `--dlp-report PATH` writes each check's outcome and first failure line as JSON, for `dlp check`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dlpractice.practice.workspace import implementation


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("dlpractice practice mode")
    group.addoption("--dlp-exercise", default=None, help="only the checks of these exercise ids (or 'all')")
    group.addoption("--dlp-report", default=None, help="write the checks' outcomes as JSON to this path")
    group.addoption(
        "--dlp-first-failure",
        action="store_true",
        help="skip an exercise's remaining checks once one has failed (it cannot pass any more)",
    )


def exercise_of(node) -> str | None:
    marker = node.get_closest_marker("exercise")
    return marker.args[0] if marker and marker.args else None


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" not in metafunc.fixturenames:
        return
    exercise_id = exercise_of(metafunc.definition)
    if exercise_id is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: `impl` needs @pytest.mark.exercise(id)")
    module = implementation(exercise_id)
    source = "workspace" if module.__name__.startswith("dlp_workspace_") else "reference"
    metafunc.parametrize("impl", [module], ids=[source])


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    wanted = config.getoption("--dlp-exercise")
    if not wanted:
        return
    ids = None if wanted == "all" else set(wanted.split(","))
    keep, drop = [], []
    for item in items:
        exercise_id = exercise_of(item)
        chosen = exercise_id is not None and (ids is None or exercise_id in ids)
        (keep if chosen else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def first_line(report) -> str:
    """The failure in one line: the exception's message where pytest has one, else the last line."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "failed"
    return lines[0] if crash is not None else lines[-1]


class Recorder:
    """Collects each check's outcome; a failure in setup or teardown fails the check too."""

    def __init__(self, path: Path):
        self.path = path
        self.checks: dict[str, dict] = {}
        self.errors: list[str] = []
        self.exercise_ids: dict[str, str | None] = {}

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        self.exercise_ids = {item.nodeid: exercise_of(item) for item in items}

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.errors.append(f"{report.nodeid}: {first_line(report)}")

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        check = self.checks.setdefault(
            report.nodeid,
            {
                "exercise": self.exercise_ids.get(report.nodeid),
                "outcome": "passed",
                "message": "",
                "seconds": 0.0,
            },
        )
        check["seconds"] += report.duration
        if report.failed and check["outcome"] == "passed":
            check.update(outcome="failed", message=first_line(report), doc=report.head_line or "")
        elif report.skipped and check["outcome"] == "passed":
            check["outcome"] = "skipped"

    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        if not item.config.getoption("--dlp-first-failure"):
            return
        exercise_id = exercise_of(item)
        if any(c["exercise"] == exercise_id and c["outcome"] == "failed" for c in self.checks.values()):
            pytest.skip(f"exercise {exercise_id} already failed a check")

    def pytest_sessionfinish(self) -> None:
        self.path.write_text(json.dumps({"checks": self.checks, "errors": self.errors}, indent=2))


def pytest_configure(config: pytest.Config) -> None:
    path = config.getoption("--dlp-report")
    if path:
        config.pluginmanager.register(Recorder(Path(path)), "dlp-report")
