"""fit() on two processes (torchrun, DDP on gloo): the same loss curve as one process with the same global
batch, one writer, a Ctrl-C to one process stops both at the same step, and that checkpoint resumes in one
process exactly where an unbroken one-process run would be."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from dlpractice.checkpoint import read_checkpoint
from dlpractice.errors import DlpError
from dlpractice.runner import read_run
from dlpractice.tracking import tracked_runs
from dlpractice.train import FitConfig, fit, micro_batch_size, shard

WORKER = Path(__file__).with_name("distributed_worker.py")
TOLERANCE = 1e-5


def torchrun(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """Two CPU processes; --standalone: rendezvous on a free loopback port, so parallel runs never collide."""
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DLP_THREADS": "1"}
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=timeout)


def load_worker():
    # tests import in importlib mode (no sys.path entry for tests/), so the worker is loaded by its path
    spec = importlib.util.spec_from_file_location("distributed_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


worker = load_worker()


def assert_same_curve(got: list[dict[str, float]], want: list[dict[str, float]]) -> None:
    assert [sorted(e) for e in got] == [sorted(e) for e in want]
    assert [e["step"] for e in got] == [e["step"] for e in want]
    for g, w in zip(got, want, strict=True):
        for key in g.keys() - {"step"}:
            assert abs(g[key] - w[key]) <= TOLERANCE, f"step {g['step']} {key}: {g[key]} != {w[key]}"


def max_gap(a: list[float], b: list[float]) -> float:
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Run the worker on two CPU processes once; its reports and run directories are under the path."""
    out = tmp_path_factory.mktemp("ddp")
    done = torchrun(str(WORKER), str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory):
    """The same training in this one process: the reference curve and weights."""
    torch.set_num_threads(1)
    model, result, _ = worker.train(tmp_path_factory.mktemp("single"), worker.toy_data())
    return result, worker.weights(model)


def report(out: Path, rank: int) -> dict:
    return json.loads((out / f"rank{rank}.json").read_text())


@pytest.mark.slow
def test_two_processes_follow_the_one_process_curve(two_processes, one_process):
    single, single_weights = one_process
    vals = [e["val_loss"] for e in single.history if "val_loss" in e]
    assert vals.index(min(vals)) < len(vals) - 1, (
        "the best weights must not be the last, or restoring is invisible"
    )
    for rank in (0, 1):
        seen = report(two_processes, rank)
        assert seen["world"] == 2
        assert_same_curve(seen["history"], single.history)
        assert seen["targets_seen"] == single.targets_seen == worker.CFG.steps * worker.CFG.batch_size
        # both processes end on the restored best weights; the second received them from the first
        assert max_gap(seen["weights"], single_weights) <= TOLERANCE


@pytest.mark.slow
def test_only_the_main_process_logs_and_writes(two_processes):
    main, other = report(two_processes, 0), report(two_processes, 1)
    assert main["logged"] > 0 and main["cut_logged"] > 0
    assert other["logged"] == other["cut_logged"] == 0
    assert {p.name for p in (two_processes / "full" / "rank0").iterdir()} == {
        "checkpoint.safetensors",
        "model.safetensors",
        "best.safetensors",
    }
    assert not any((two_processes / "full" / "rank1").iterdir())
    assert not any((two_processes / "cut" / "rank1").iterdir())


@pytest.mark.slow
def test_a_two_process_checkpoint_resumes_in_one_process(two_processes, one_process, tmp_path):
    single, single_weights = one_process
    # only the second process got the Ctrl-C, and both stopped after the same step
    assert not report(two_processes, 0)["cut_finished"] and not report(two_processes, 1)["cut_finished"]
    cut_dir = two_processes / "cut" / "rank0"
    state = read_checkpoint(cut_dir / "checkpoint.safetensors")
    assert state.step == worker.CUT_AT
    model, ctx = worker.new_model(), worker.Ctx(cut_dir, resume=state)
    resumed = fit(model, worker.toy_data(), worker.CFG, ctx)
    assert_same_curve(resumed.history, single.history)
    assert max_gap(worker.weights(model), single_weights) <= TOLERANCE


def test_each_process_trains_on_its_own_slice_of_the_batch():
    batch = (torch.arange(8), torch.arange(8) * 10)
    slices = [shard(batch, rank, 2) for rank in (0, 1)]
    assert [s[0].tolist() for s in slices] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    assert slices[1][1].tolist() == [40, 50, 60, 70]
    assert shard(batch, 0, 1) is batch


def test_a_batch_the_processes_cannot_share_evenly_is_one_line():
    assert micro_batch_size(FitConfig(batch_size=32, grad_accum=2), 2) == 16
    with pytest.raises(DlpError, match="divisible by 4"):
        micro_batch_size(FitConfig(batch_size=30, grad_accum=2), 2)


@pytest.mark.slow
def test_dlp_run_on_two_processes_is_one_run(dlp_home):
    """The README's command: one run directory, one MLflow run, finished, whatever the process count."""
    done = torchrun(
        "-m", "dlpractice", "run", "l2", "--preset", "smoke", "--set", "steps=30", "--data", "embedded"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((dlp_home / "runs").iterdir())
    assert len(runs) == 1 and read_run(runs[0]).status == "finished"
    assert [run.info.run_name for run in tracked_runs("l2")] == [runs[0].name]
