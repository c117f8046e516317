"""A practice workspace: the files that hold a lab's exercises, with each region replaced by a stub.

`dlp practice l2` writes ./practice/l2/ with one file per source file (makemore_numpy.py, ...), a
README.md listing the tasks, and practice.json, the manifest: which exercise lives in which file and
the hash of every file as written, so that a file the learner has edited is never overwritten without
--force. The checker reads the same manifest to load the learner's code (see `implementation`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from dlpractice.errors import DlpError
from dlpractice.practice.exercises import Exercise, exercises_for, find_exercise

MANIFEST = "practice.json"
ENV_DIR = "DLP_PRACTICE_DIR"  # set by the checker: grade the workspace in this directory


def stub_line(exercise: Exercise) -> str:
    return f"{exercise.indent}raise NotImplementedError({f'exercise {exercise.id}: {exercise.task}'!r})"


def replace_region(source: str, exercise: Exercise, body: list[str]) -> str:
    """`source` with the lines between the exercise's BEGIN and END comments replaced by `body`.

    The region is found again by its BEGIN line (the file may have shifted since it was scanned)."""
    lines = source.splitlines()
    marker = f"# BEGIN EXERCISE {exercise.id}:"
    begin = next(i for i, line in enumerate(lines) if line.lstrip().startswith(marker))
    end = next(i for i in range(begin + 1, len(lines)) if lines[i].strip() == "# END EXERCISE")
    return "\n".join([*lines[: begin + 1], *body, *lines[end:]]) + "\n"


def stub_source(source: str, exercises: list[Exercise]) -> str:
    """The file as the learner gets it: every region of `exercises` raises NotImplementedError."""
    for exercise in exercises:
        source = replace_region(source, exercise, [stub_line(exercise)])
    return source


def indent_code(code: str, indent: str) -> list[str]:
    """Dedented code (a mutation, a solution) re-indented to sit inside a region."""
    import textwrap

    return [
        f"{indent}{line}" if line.strip() else "" for line in textwrap.dedent(code).strip("\n").splitlines()
    ]


@dataclass(frozen=True)
class WorkspaceFile:
    name: str  # file name inside the workspace
    text: str


def workspace_name(exercise: Exercise, exercises: list[Exercise]) -> str:
    """The file's name in the workspace: its base name, or its package path when two base names clash."""
    clash = {e.path for e in exercises if e.path.name == exercise.path.name and e.path != exercise.path}
    return exercise.relpath.replace("/", "__") if clash else exercise.path.name


def workspace_files(lab_id: str, target: str) -> tuple[list[WorkspaceFile], dict]:
    """The files of the lab's workspace and its manifest (file hashes are added when written)."""
    exercises = exercises_for(lab_id)
    by_file: dict[str, list[Exercise]] = {}
    for exercise in exercises:
        by_file.setdefault(workspace_name(exercise, exercises), []).append(exercise)
    files = [
        WorkspaceFile(name, stub_source(group[0].path.read_text(encoding="utf-8"), group))
        for name, group in by_file.items()
    ]
    files.append(WorkspaceFile("README.md", readme(lab_id, exercises, by_file, target)))
    manifest = {
        "lab": lab_id,
        "exercises": {
            e.id: {
                "file": name,
                "module": e.module,
                "function": e.function,
                "task": e.task,
                "points": e.points,
            }
            for name, group in by_file.items()
            for e in group
        },
    }
    return files, manifest


def readme(lab_id: str, exercises: list[Exercise], by_file: dict[str, list[Exercise]], target: str) -> str:
    from dlpractice.registry import lab_record

    lab = lab_record(lab_id)
    rows = "\n".join(
        f"| {e.id} | `{name}` · `{e.function}` | {e.task} | {e.points} |"
        for name, group in by_file.items()
        for e in group
    )
    where = "" if target == default_dir(lab_id).as_posix() else f" --dir {target}"
    return f"""# Practice · {lab.id} · {lab.title}

Each function below has its body (between `# BEGIN EXERCISE` and `# END EXERCISE`) replaced by
`raise NotImplementedError`. Write the code there; keep the signature, the types and the docstring.

| exercise | where | task | points |
|---|---|---|---|
{rows}

Check your work (each exercise runs its checks in a fresh process; pass at 70 out of 100):

    dlp check {lab_id}{where}
    dlp check {lab_id}{where} --exercise {exercises[0].id}

`dlp progress` shows what you have passed. `dlp show {lab_id}` names the lab's article.
`dlp practice {lab_id}{where} --force` starts again from the stubs (your edits are lost).
"""


def default_dir(lab_id: str) -> Path:
    return Path("practice") / lab_id


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_manifest(directory: Path) -> dict:
    path = directory / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DlpError(
            f"{directory} is not a practice workspace (no {MANIFEST}); `dlp practice` writes one"
        ) from None
    except (OSError, json.JSONDecodeError) as err:
        raise DlpError(f"{path} is unreadable ({err}); `dlp practice --force` writes it again") from None


def edited_files(directory: Path, names: list[str]) -> list[str]:
    """Files in `directory` that exist and differ from what `dlp practice` last wrote there."""
    try:
        written = read_manifest(directory).get("sha256", {})
    except DlpError:
        written = {}
    edited = []
    for name in names:
        path = directory / name
        if path.exists() and written.get(name) != digest(path.read_text(encoding="utf-8")):
            edited.append(name)
    return edited


def write_workspace(lab_id: str, directory: Path, force: bool = False) -> list[Path]:
    """Write the lab's workspace; refuse (and write nothing) if a learner-edited file would be lost."""
    files, manifest = workspace_files(lab_id, directory.as_posix())
    edited = [] if force else edited_files(directory, [f.name for f in files])
    if edited:
        raise DlpError(
            f"{directory} has your edits in {', '.join(edited)}; nothing written "
            "(--force overwrites them, or choose another --dir)"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for file in files:
            (directory / file.name).write_text(file.text, encoding="utf-8")
        manifest["sha256"] = {file.name: digest(file.text) for file in files}
        (directory / MANIFEST).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
    except OSError as err:
        raise DlpError(f"cannot write the workspace in {directory}: {err.strerror or err}") from None
    return [directory / file.name for file in files]


# ----- loading the implementation under test -----

_loaded: dict[Path, ModuleType] = {}


def load_file(path: Path, package_module: str) -> ModuleType:
    """Import a workspace file under a name of its own (the package's module is left untouched)."""
    path = path.resolve()
    if path not in _loaded:
        name = f"dlp_workspace_{digest(str(path))[:10]}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ImportError(f"cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        module.__package__ = package_module.rpartition(".")[0]
        sys.modules[name] = module  # dataclasses look their module up while the file runs
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        _loaded[path] = module
    return _loaded[path]


def implementation(exercise_id: str) -> ModuleType:
    """The module a check grades: with $DLP_PRACTICE_DIR set, the learner's file that holds the exercise
    (never the reference: a manifest without one of its lab's exercises fails their checks), else the
    package's module (also for another lab's exercise, which this workspace does not practise)."""
    exercise = find_exercise(exercise_id)  # the package says which module it is, not the workspace
    workspace = os.environ.get(ENV_DIR)
    manifest = read_manifest(Path(workspace)) if workspace else {}
    entry = manifest.get("exercises", {}).get(exercise_id)
    if entry is None and manifest.get("lab") != exercise.lab:
        return importlib.import_module(exercise.module)
    if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
        raise DlpError(
            f"{MANIFEST} in {workspace} names no file for exercise {exercise_id}; "
            f"`dlp practice {exercise.lab} --force` writes the workspace again"
        )
    return load_file(Path(workspace) / entry["file"], exercise.module)
