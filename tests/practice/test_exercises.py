"""The exercise registry: regions parsed from source, with their enclosing function, task and points."""

from __future__ import annotations

from pathlib import Path

import pytest

from dlpractice.errors import DlpError
from dlpractice.practice.exercises import (
    PACKAGE_DIR,
    all_exercises,
    exercises_for,
    find_exercise,
    practice_labs,
    scan_source,
)
from dlpractice.registry import SYLLABUS

SOURCE = '''
class Tokenizer:
    def split(self, word: str) -> list[str]:
        """Doc."""
        pieces = []
        # BEGIN EXERCISE n9.2: split it (3 points)
        pieces.append(word)
        # END EXERCISE
        return pieces


def outer(x):
    def _backward(g):
        # BEGIN EXERCISE n9.1: the gradient
        return g * x
        # END EXERCISE

    return _backward
'''


def scan(text: str):
    return scan_source(PACKAGE_DIR / "models" / "fake.py", text)


def test_regions_know_their_function_task_and_points() -> None:
    split, backward = scan(SOURCE)
    found = (split.id, split.lab, split.function, split.task, split.points)
    assert found == ("n9.2", "n9", "Tokenizer.split", "split it", 3)
    assert (backward.function, backward.points, backward.indent) == ("outer._backward", 1, " " * 8)
    assert split.module == "dlpractice.models.fake" and split.relpath == "models/fake.py"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("def f():\n    # BEGIN EXERCISE a1.1: x\n    pass\n", "has no END"),
        ("def f():\n    pass\n    # END EXERCISE\n", "without a BEGIN"),
        ("def f():\n    # BEGIN EXERCISE a1.1: x\n    # BEGIN EXERCISE a1.2: y\n    pass\n", "inside a1.1"),
        ("# BEGIN EXERCISE a1.1: x\nx = 1\n# END EXERCISE\n", "not inside a function"),
    ],
)
def test_malformed_regions_are_one_line_errors(text: str, message: str) -> None:
    with pytest.raises(DlpError, match=message):
        scan(text)


def test_the_package_registry_is_clean_and_every_lab_is_in_the_syllabus() -> None:
    exercises = all_exercises()
    assert len({e.id for e in exercises}) == len(exercises)
    assert {e.lab for e in exercises} <= {lab.id for lab in SYLLABUS}
    assert {"l1", "l2"} <= set(practice_labs())
    assert all(len(exercises_for(lab)) >= 2 for lab in ("l1", "l2"))


def test_registry_lists_l2_exercises() -> None:
    l21 = find_exercise("l2.1")
    assert l21.function == "softmax_cross_entropy" and l21.path == Path(
        PACKAGE_DIR / "models/makemore_numpy.py"
    )


def test_unknown_exercise_and_lab_suggest() -> None:
    with pytest.raises(DlpError, match="did you mean 'l2.1'"):
        find_exercise("l2.11")
    with pytest.raises(DlpError, match="no exercises yet"):
        exercises_for("n1")


def test_every_assert_in_the_checks_says_what_was_expected() -> None:
    """`dlp check` shows a failing check's first line: a bare `assert` or NumPy/torch comparison would show
    `AssertionError:` and nothing a learner can act on."""
    import ast

    from dlpractice.practice.exercises import CHECKS_DIR

    bare = []
    for path in sorted(CHECKS_DIR.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Assert) and node.msg is None:
                bare.append(f"{path.name}:{node.lineno}")
            library = isinstance(node, ast.Attribute) and node.attr.startswith("assert_")
            if library and path.name != "support.py":
                bare.append(f"{path.name}:{node.lineno} ({node.attr}: use support.assert_close)")
    assert not bare, f"asserts without a message for the learner: {bare}"
