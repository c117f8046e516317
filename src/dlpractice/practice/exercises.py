"""The exercise registry: every `# BEGIN EXERCISE <id>: <task>` region in the package's source.

Regions are found by reading the files (nothing is imported), so listing exercises is instant and a
region in a file that does not import yet is still listed. A region is the lines strictly between

    # BEGIN EXERCISE l2.1: <one-line task>[ (N points)]
    # END EXERCISE

at any indentation; the id is `<lab>.<n>` (`l2.1` belongs to lab `l2`). Points default to 1; a lab's
score is the share of its points whose checks pass, out of 100.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from dlpractice.errors import DlpError, did_you_mean

PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/dlpractice
CHECKS_DIR = PACKAGE_DIR / "practice" / "checks"  # shipped with the package, so an installed wheel grades

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN EXERCISE (?P<id>[a-z]+\d+\.\d+): (?P<task>.+?)\s*$")
END = re.compile(r"^[ \t]*# END EXERCISE\s*$")
POINTS = re.compile(r"\s*\((?P<points>\d+) points?\)$")
CHECK_MARK = re.compile(r"""@pytest\.mark\.exercise\(\s*["'](?P<id>[a-z]+\d+\.\d+)["']\s*\)""")


@dataclass(frozen=True)
class Exercise:
    """One region a learner writes: where it is, what to do, what it is worth."""

    id: str  # "l2.1"
    lab: str  # "l2"
    path: Path  # the source file
    module: str  # "dlpractice.models.makemore_numpy"
    function: str  # qualified name of the enclosing function, e.g. "WordPieceTokenizer.tokenize_word"
    task: str
    points: int
    begin: int  # 0-based line index of the BEGIN comment
    end: int  # 0-based line index of the END comment
    indent: str  # the BEGIN comment's indentation

    @property
    def relpath(self) -> str:
        """The file relative to the package, e.g. 'models/makemore_numpy.py'."""
        return self.path.relative_to(PACKAGE_DIR).as_posix()


def module_name(path: Path) -> str:
    return ".".join(("dlpractice", *path.relative_to(PACKAGE_DIR).with_suffix("").parts))


def enclosing_functions(source: str) -> list[tuple[int, int, str]]:
    """(first line, last line, qualified name) of every function, 1-based, outermost first."""
    found: list[tuple[int, int, str]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    found.append((child.lineno, child.end_lineno or child.lineno, name))
                visit(child, f"{name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(source), "")
    return found


def innermost_function(functions: list[tuple[int, int, str]], line: int) -> str | None:
    """The most deeply nested function whose lines contain `line` (1-based)."""
    containing = [(first, name) for first, last, name in functions if first <= line <= last]
    return max(containing)[1] if containing else None


def scan_source(path: Path, source: str) -> list[Exercise]:
    """The regions of one file; malformed regions (unclosed, nested, outside a function) are errors."""
    lines = source.splitlines()
    functions = enclosing_functions(source) if "# BEGIN EXERCISE" in source else []
    exercises, open_region = [], None
    for index, line in enumerate(lines):
        begin = BEGIN.match(line)
        if begin:
            if open_region is not None:
                raise DlpError(
                    f"{path}:{index + 1}: exercise {begin['id']} begins inside {open_region['id']}"
                )
            open_region, open_index = begin, index
        elif END.match(line):
            if open_region is None:
                raise DlpError(f"{path}:{index + 1}: END EXERCISE without a BEGIN")
            exercises.append(make_exercise(path, functions, open_region, open_index, index))
            open_region = None
    if open_region is not None:
        raise DlpError(f"{path}:{open_index + 1}: exercise {open_region['id']} has no END EXERCISE")
    return exercises


def make_exercise(
    path: Path, functions: list[tuple[int, int, str]], begin: re.Match, start: int, stop: int
) -> Exercise:
    function = innermost_function(functions, start + 1)
    if function is None:
        raise DlpError(f"{path}:{start + 1}: exercise {begin['id']} is not inside a function")
    task, points = begin["task"], 1
    weight = POINTS.search(task)
    if weight:
        task, points = task[: weight.start()], int(weight["points"])
    return Exercise(
        id=begin["id"],
        lab=begin["id"].split(".")[0],
        path=path,
        module=module_name(path),
        function=function,
        task=task,
        points=points,
        begin=start,
        end=stop,
        indent=begin["indent"],
    )


@cache
def all_exercises() -> tuple[Exercise, ...]:
    """Every exercise in the package, ordered by lab then number; ids are unique."""
    found: list[Exercise] = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        if "practice" in path.relative_to(PACKAGE_DIR).parts[:1]:
            continue  # this package talks about the markers without being an exercise
        found.extend(scan_source(path, path.read_text(encoding="utf-8")))
    seen: dict[str, Exercise] = {}
    for exercise in found:
        if exercise.id in seen:
            raise DlpError(
                f"exercise {exercise.id} is defined twice: {seen[exercise.id].path}, {exercise.path}"
            )
        seen[exercise.id] = exercise
    return tuple(sorted(found, key=exercise_order))


def exercise_order(exercise: Exercise) -> tuple:
    lab, number = exercise.id.split(".")
    return (lab[0], int(lab[1:]), int(number))


def exercises_for(lab_id: str) -> list[Exercise]:
    """The exercises of one lab (by id); an unknown lab or one with no exercises is a one-line error."""
    mine = [exercise for exercise in all_exercises() if exercise.lab == lab_id]
    if not mine:
        labs = sorted({exercise.lab for exercise in all_exercises()})
        raise DlpError(f"lab {lab_id} has no exercises yet; labs with exercises: {', '.join(labs)}")
    return mine


def find_exercise(exercise_id: str) -> Exercise:
    for exercise in all_exercises():
        if exercise.id == exercise_id:
            return exercise
    known = [exercise.id for exercise in all_exercises()]
    raise DlpError(f"unknown exercise {exercise_id!r}{did_you_mean(exercise_id, known)}")


def practice_labs() -> list[str]:
    """Ids of the labs that have at least one exercise."""
    return sorted({exercise.lab for exercise in all_exercises()}, key=lambda lab: (lab[0], int(lab[1:])))


def check_files(checks_dir: Path = CHECKS_DIR) -> dict[str, list[Path]]:
    """Exercise id -> the files that hold its checks (tests marked `@pytest.mark.exercise(id)`)."""
    found: dict[str, list[Path]] = {}
    for path in sorted(checks_dir.rglob("test_*.py")):
        for exercise_id in sorted(set(CHECK_MARK.findall(path.read_text(encoding="utf-8")))):
            found.setdefault(exercise_id, []).append(path)
    return found
