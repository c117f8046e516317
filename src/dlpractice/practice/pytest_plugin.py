"""The pytest side of practice mode (loaded by tests/conftest.py, and by `-p` where `dlp check` runs).

- A test marked `@pytest.mark.exercise("l2.1")` that takes an `impl` argument receives the module that
  holds the exercise: the package's own (reference) module, or the learner's file when the checker
  sets $DLP_PRACTICE_DIR. So one test grades both. `impl` is a parameter, not a fixture, so it also
  works under hypothesis's `@given`. A learner's file that does not import (a syntax error, an exit)
  fails each of its checks with the reason in one line.
- `--dlp-exercise ID[,ID...]` (or `all`) keeps only the checks of those exercises.
- `--dlp-report PATH` writes each check's outcome and first failure line as JSON, for `dlp check`.
"""

from __future__ import annotations

import json
import traceback
from dataclasses import dataclass
from pathlib import Path

import pytest

from dlpractice.errors import DlpError
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


@dataclass(frozen=True)
class Unloadable:
    """The `impl` of a learner's file that could not be imported: its checks fail with `reason`."""

    reason: str


def selected(config: pytest.Config, exercise_id: str | None) -> bool:
    """Whether `--dlp-exercise` keeps the checks of `exercise_id` (no option: every test is kept)."""
    wanted = config.getoption("--dlp-exercise")
    if not wanted:
        return True
    return exercise_id is not None and (wanted == "all" or exercise_id in wanted.split(","))


def import_failure(error: BaseException) -> str:
    """Why a learner's file did not import, in one line: "SyntaxError: invalid syntax (x.py, line 51)"."""
    if isinstance(error, SyntaxError):  # its str() names the file and line; IndentationError too
        return f"{type(error).__name__}: {error}"
    if isinstance(error, SystemExit):
        return f"your file exited while it was being imported (SystemExit: {error.code})"
    if isinstance(error, DlpError):
        return str(error)
    frames = [f for f in traceback.extract_tb(error.__traceback__) if not f.filename.startswith("<frozen")]
    where = f" ({Path(frames[-1].filename).name}, line {frames[-1].lineno})" if frames else ""
    return f"{type(error).__name__}: {error}{where}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "impl" not in metafunc.fixturenames:
        return
    exercise_id = exercise_of(metafunc.definition)
    if exercise_id is None:
        raise pytest.UsageError(f"{metafunc.definition.nodeid}: `impl` needs @pytest.mark.exercise(id)")
    if not selected(metafunc.config, exercise_id):  # deselected below: load nothing for it
        metafunc.parametrize("impl", [None], ids=["unselected"])
        return
    try:
        module = implementation(exercise_id)
    except (Exception, SystemExit) as error:  # the learner's file: fail its checks, not the whole run
        metafunc.parametrize("impl", [Unloadable(import_failure(error))], ids=["workspace"])
        return
    source = "workspace" if module.__name__.startswith("dlp_workspace_") else "reference"
    metafunc.parametrize("impl", [module], ids=[source])


def pytest_runtest_setup(item: pytest.Item) -> None:
    impl = getattr(item, "callspec", None) and item.callspec.params.get("impl")
    if isinstance(impl, Unloadable):
        pytest.fail(impl.reason, pytrace=False)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not config.getoption("--dlp-exercise"):
        return
    keep, drop = [], []
    for item in items:
        (keep if selected(config, exercise_of(item)) else drop).append(item)
    config.hook.pytest_deselected(items=drop)
    items[:] = keep


def first_line(report) -> str:
    """The failure in one line: the exception's message where pytest has one, else the last line.

    A message that starts on a line of its own (NumPy's `AssertionError:` then the report) gets the
    next line joined on; pytest's `Failed: ` and `E   ` prefixes are dropped."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(report.longrepr)
    lines = [line.strip().removeprefix("E ").strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return "failed"
    index = 0 if crash is not None else len(lines) - 1
    line = lines[index].removeprefix("Failed: ")
    if line.endswith(":") and index + 1 < len(lines):
        line = f"{line} {lines[index + 1]}"
    return line


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
        if report.failed:  # a check file that does not import: the learner needs the reason, not its path
            self.errors.append(first_line(report))

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
    # registered here too, so the checks run under any configuration (an installed package has no pyproject)
    config.addinivalue_line("markers", "exercise(id): the check grades practice exercise ID")
    path = config.getoption("--dlp-report")
    if path:
        config.pluginmanager.register(Recorder(Path(path)), "dlp-report")
