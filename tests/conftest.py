"""Shared fixtures: every test gets its own DLP_HOME and one torch thread (two cores, shared)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)

# `impl` (the implementation an exercise check grades) and the options `dlp check` uses.
pytest_plugins = ["dlpractice.practice.pytest_plugin"]


@pytest.fixture(autouse=True)
def dlp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dlp-home"
    monkeypatch.setenv("DLP_HOME", str(home))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")  # tests never touch the network
    monkeypatch.delenv("DLP_DATA_DIR", raising=False)
    monkeypatch.delenv("DLP_TRACKING_URI", raising=False)
    return home


@pytest.fixture
def planned_lab(monkeypatch: pytest.MonkeyPatch) -> str:
    """A lab id the registry treats as planned for one test (r4, its module hidden): once every lab of the
    syllabus is implemented, this is how the planned state stays tested."""
    from dlpractice import registry

    implemented = registry.implemented_modules()
    monkeypatch.setattr(
        registry, "implemented_modules", lambda: {k: v for k, v in implemented.items() if k != "r4"}
    )
    return "r4"


DLP = str(Path(sys.executable).parent / "dlp")
REPO = Path(__file__).resolve().parents[1]
PEERS = REPO.parent / "shared" / "peers"  # nanoGPT, minbpe, ... unmodified, beside the repository


@pytest.fixture(scope="session")
def peers():
    """(benchmarks/peers.py imported by path, the peers folder): peers are compared only where they are."""
    if not PEERS.is_dir():
        pytest.skip(f"no peers folder at {PEERS}")
    spec = importlib.util.spec_from_file_location("peers_benchmark", REPO / "benchmarks" / "peers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, PEERS


@pytest.fixture
def dlp():
    """Run the real `dlp` entry point in a subprocess with the test's environment."""

    def call(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
        env = {**os.environ, "COLUMNS": "200"}
        return subprocess.run([DLP, *args], capture_output=True, text=True, timeout=timeout, env=env)

    return call


class Stub:
    """What practice mode leaves in place of an exercise: calling it, or anything taken from it, raises."""

    def __call__(self, *args, **kwargs):
        raise NotImplementedError("exercise")

    def __getattr__(self, name: str) -> Stub:
        return self


@pytest.fixture
def stub() -> Stub:
    """A stubbed implementation, to prove an exercise's checks fail on it."""
    return Stub()


TIMINGS = frozenset({"train_seconds", "tokens_per_second", "wall_seconds"})


@pytest.fixture
def quality():
    """A run's metrics without its wall-clock figures, which differ between two identical runs."""

    def numbers(metrics: dict[str, float]) -> dict[str, float]:
        assert metrics.keys() & TIMINGS, "expected the run to report its training time"
        return {k: v for k, v in metrics.items() if k not in TIMINGS}

    return numbers
