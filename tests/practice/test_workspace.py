"""Workspaces: stubs keep signatures and docstrings, import cleanly, raise; edited files are protected."""

from __future__ import annotations

import ast
import json

import pytest

from dlpractice.errors import DlpError
from dlpractice.practice.exercises import all_exercises, practice_labs
from dlpractice.practice.workspace import (
    ENV_DIR,
    MANIFEST,
    implementation,
    workspace_files,
    write_workspace,
)


def functions(source: str) -> dict[str, ast.FunctionDef]:
    found = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if isinstance(child, ast.FunctionDef):
                    found[name] = child
                visit(child, f"{name}.")

    visit(ast.parse(source), "")
    return found


@pytest.mark.parametrize("lab", practice_labs())
def test_stubs_compile_and_keep_signature_types_and_docstring(lab: str) -> None:
    files, manifest = workspace_files(lab, f"practice/{lab}")
    texts = {f.name: f.text for f in files}
    for exercise_id, entry in manifest["exercises"].items():
        exercise = next(e for e in all_exercises() if e.id == exercise_id)
        stub = functions(texts[entry["file"]])[exercise.function]
        reference = functions(exercise.path.read_text())[exercise.function]
        assert ast.unparse(stub.args) == ast.unparse(reference.args)
        assert ast.unparse(stub.returns or ast.Constant(None)) == ast.unparse(
            reference.returns or ast.Constant(None)
        )
        assert ast.get_docstring(stub) == ast.get_docstring(reference)
        assert (
            f"raise NotImplementedError({f'exercise {exercise_id}: {exercise.task}'!r})"
            in texts[entry["file"]]
        )
    for name, text in texts.items():
        if name.endswith(".py"):
            compile(text, name, "exec")
    assert "dlp check" in texts["README.md"]


def test_written_workspace_is_graded_through_impl(tmp_path, monkeypatch) -> None:
    workspace = tmp_path / "ws"
    write_workspace("l1", workspace)
    manifest = json.loads((workspace / MANIFEST).read_text())
    assert set(manifest["exercises"]) == {"l1.1", "l1.2"} and set(manifest["sha256"]) == {
        "l1_makemore_bigram.py",
        "README.md",
    }
    monkeypatch.setenv(ENV_DIR, str(workspace))
    module = implementation("l1.2")
    assert module.__name__.startswith("dlp_workspace_") and module.LAB.id == "l1"
    with pytest.raises(NotImplementedError, match="exercise l1.2: smooth and normalise"):
        module.count_probabilities(None, 1.0)
    assert implementation("l2.1").__name__ == "dlpractice.models.makemore_numpy"  # not in this workspace


def test_never_overwrites_edits_without_force(tmp_path) -> None:
    workspace = tmp_path / "ws"
    write_workspace("l2", workspace)
    write_workspace("l2", workspace)  # unchanged files are simply written again
    learner = workspace / "makemore_numpy.py"
    learner.write_text(learner.read_text() + "\n# my work\n")
    with pytest.raises(DlpError, match="has your edits in makemore_numpy.py; nothing written"):
        write_workspace("l2", workspace)
    assert learner.read_text().endswith("# my work\n")
    write_workspace("l2", workspace, force=True)
    assert "# my work" not in learner.read_text()


def test_a_foreign_file_in_the_way_counts_as_edited(tmp_path) -> None:
    (tmp_path / "README.md").write_text("mine")
    with pytest.raises(DlpError, match="README.md"):
        write_workspace("l1", tmp_path)
