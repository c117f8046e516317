"""Practice mode from an installed wheel, far from the repository: `dlp practice` writes a workspace and
`dlp check` grades it with the checks shipped inside the package (the repository's tests/ is not there).

The wheel goes into a fresh virtual environment whose other dependencies are this environment's (a .pth
file names its site-packages), so torch is not installed again; the editable install of the repository
must not be what runs, which the test proves by where `dlpractice` is imported from.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(*command: str | Path, cwd: Path, timeout: float = 300, env: dict | None = None):
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


def build_wheel(root: Path) -> Path:
    """The project's wheel, built from a copy of its sources (nothing is written into the repository, and
    no stale build/ directory can slip an old file in)."""
    source = root / "source"
    shutil.copytree(REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, source / name)
    wheel = [sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-q"]
    built = run(*wheel, "-w", root, cwd=root)
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = root.glob("dlpractice-*.whl")
    return wheel


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv outside the repository with the project's wheel installed in it; its bin/ directory."""
    root = tmp_path_factory.mktemp("wheel")
    wheel = build_wheel(root)
    env_dir = root / "venv"
    venv.create(env_dir, with_pip=False)
    python = env_dir / "bin" / "python"
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))", cwd=root)
    # this environment's libraries after the venv's own (a path in a .pth file is appended to sys.path)
    (Path(site.stdout.strip()) / "dlp-test-deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=root)
    assert pip.returncode == 0, pip.stderr[-2000:]
    return env_dir / "bin"


@pytest.mark.slow
def test_practice_and_check_from_the_installed_wheel(installed: Path, tmp_path: Path) -> None:
    code = "import dlpractice.practice.exercises as e; print(e.__file__); print(len(e.check_files()))"
    where, checks = run(installed / "python", "-c", code, cwd=tmp_path).stdout.split()
    assert Path(where).is_relative_to(installed.parent), where  # the wheel runs, not the repository
    assert int(checks) > 0  # the checks are in the wheel

    env = {**os.environ, "DLP_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    made = run(installed / "dlp", "practice", "l2", cwd=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "practice" / "l2" / "makemore_numpy.py").exists()
    checked = run(installed / "dlp", "check", "l2", "--json", cwd=tmp_path, env=env)
    assert checked.returncode == 1, checked.stderr
    report = json.loads(checked.stdout)
    assert report["score"] < 70 and not report["passed"]
    assert all(row["checks"] > 0 for row in report["exercises"])  # the checks ran, and failed on the stubs
    assert all(row["failure"].startswith("NotImplementedError") for row in report["exercises"]), report
