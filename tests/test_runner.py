"""The run plumbing: RunSpec -> run.json -> RunContext, child runs, and the faults a new user meets."""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlpractice.config import build_config
from dlpractice.errors import DlpError
from dlpractice.registry import load_lab
from dlpractice.runner import RunSpec, finish_run, open_run, read_run, resume_run, start_run
from dlpractice.tracking import Tracker, client, tracked_runs

DLP = str(Path(sys.executable).parent / "dlp")


def one_line(result: subprocess.CompletedProcess, fragment: str) -> None:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0], lines[0]


def open_l1(**spec) -> tuple:
    module = load_lab("l1")
    cfg = build_config(module.Config, module.PRESETS, "smoke")
    return module, cfg, open_run(RunSpec("l1", "smoke", data="embedded", **spec), cfg)


@pytest.mark.slow
def test_the_spec_is_run_json_and_comes_back_from_it():
    spec = RunSpec("makemore-bigram", "smoke", ("steps=20",), data="embedded", seed=5)
    outcome = start_run(spec)
    saved = json.loads((outcome.run_dir / "run.json").read_text())
    assert saved["lab"] == "l1" and saved["overrides"] == ["steps=20"] and saved["seed"] == 5
    assert saved["status"] == "finished" and saved["config"]["steps"] == 20
    record = read_run(outcome.run_dir)
    assert record.spec == RunSpec("l1", "smoke", ("steps=20",), data="embedded", seed=5, threads=1)
    assert record.metrics == outcome.metrics and record.state == "finished"


def test_a_bad_data_source_is_refused_before_anything_exists(dlp_home):
    with pytest.raises(DlpError, match="--data must be embedded, real or auto"):
        RunSpec("l1", data="somewhere")
    assert not (dlp_home / "runs").exists()


def test_child_runs_are_nested_mlflow_runs_with_their_own_folder():
    module, cfg, ctx = open_l1()
    child = ctx.child("baseline")
    child.tracker.log_metrics(1, {"train_loss": 2.5})
    ctx.tracker.log_metrics(1, {"train_loss": 2.0})
    finish_run(ctx, {"test_nll": 2.0})

    assert child.run_dir == ctx.run_dir / "baseline" and child.run_dir.is_dir()
    mlflow = client()
    parent_run, child_run = mlflow.get_run(ctx.tracker.run_id), mlflow.get_run(child.tracker.run_id)
    assert child_run.data.tags["mlflow.parentRunId"] == parent_run.info.run_id
    assert child_run.info.experiment_id == parent_run.info.experiment_id
    assert child_run.info.status == parent_run.info.status == "FINISHED"
    assert child_run.data.metrics["train_loss"] == 2.5  # the same metric name as the parent's
    assert read_run(ctx.run_dir).children == {"baseline": child_run.info.run_id}
    assert [r.info.run_id for r in tracked_runs()] == [parent_run.info.run_id]  # `dlp runs`: top level only


def test_a_resumed_run_reopens_its_child_runs():
    _, _, ctx = open_l1()
    first = ctx.child("glove").tracker.run_id
    ctx.record.status = "interrupted"
    again = Tracker.reopen(ctx.tracker.run_id).child("glove", read_run(ctx.run_dir).children["glove"])
    assert again.run_id == first


@pytest.mark.slow
def test_a_run_whose_process_died_is_reported_as_died(dlp_home):
    """A notebook kernel (or any process) that stops mid-run leaves a run marked died, not running."""
    script = (
        "import os\n"
        "from dlpractice.config import build_config\n"
        "from dlpractice.registry import load_lab\n"
        "from dlpractice.runner import RunSpec, open_run\n"
        "m = load_lab('l1')\n"
        "cfg = build_config(m.Config, m.PRESETS, 'smoke')\n"
        "ctx = open_run(RunSpec('l1', 'smoke', data='embedded', origin='notebook'), cfg)\n"
        "print(ctx.run_id, flush=True)\n"
        "os._exit(1)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    run_id = done.stdout.strip()
    assert read_run(dlp_home / "runs" / run_id).state == "died"
    one_line(subprocess.run([DLP, "report", run_id], capture_output=True, text=True, timeout=60), "died")
    wide = {**os.environ, "COLUMNS": "200"}
    listing = subprocess.run([DLP, "runs"], capture_output=True, text=True, timeout=60, env=wide)
    assert next(line for line in listing.stdout.splitlines() if run_id in line).rstrip(" │").endswith("died")


@pytest.mark.slow
def test_a_run_directory_without_run_json_reports_that_it_failed(dlp_home):
    (dlp_home / "runs" / "l1-20260101-000000-abcd").mkdir(parents=True)
    result = subprocess.run([DLP, "report", "l1-20260101"], capture_output=True, text=True, timeout=60)
    one_line(result, "failed before it started")


@pytest.mark.slow
def test_resume_with_another_lab_is_an_error():
    outcome = start_run(RunSpec("l1", "smoke", ("steps=20",), data="embedded"))
    with pytest.raises(DlpError, match=f"run {outcome.run_id} is a run of lab l1, not l2"):
        resume_run(outcome.run_id, "l2")
    result = subprocess.run(
        [DLP, "run", "l2", "--resume", outcome.run_id], capture_output=True, text=True, timeout=60
    )
    one_line(result, "is a run of lab l1, not l2")


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]  # nothing listens there once the probe closes


@pytest.mark.slow
def test_an_unreachable_tracking_server_is_one_line_at_once(dlp_home):
    env = {**os.environ, "DLP_TRACKING_URI": f"http://127.0.0.1:{closed_port()}"}
    started = time.perf_counter()
    result = subprocess.run(
        [DLP, "run", "l1", "--preset", "smoke"], capture_output=True, text=True, timeout=120, env=env
    )
    one_line(result, "does not answer")
    assert time.perf_counter() - started < 60  # not MLflow's minutes of retries
    assert not list((dlp_home / "runs").glob("*"))  # nothing half-made


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_earlier_runs_intact(monkeypatch):
    earlier = start_run(RunSpec("l1", "smoke", ("steps=20",), data="embedded"))
    before = (earlier.run_dir / "run.json").read_text()

    def disk_full(self, step, metrics):
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(Tracker, "log_metrics", disk_full)
    with pytest.raises(DlpError, match="no space left on the disk") as caught:
        start_run(RunSpec("l1", "smoke", ("steps=20",), data="embedded"))
    assert "\n" not in str(caught.value)
    assert (earlier.run_dir / "run.json").read_text() == before
    failed = [p for p in earlier.run_dir.parent.iterdir() if p != earlier.run_dir]
    assert [read_run(p).status for p in failed] == ["failed"]


@pytest.mark.slow
def test_two_first_runs_at_once_both_succeed(dlp_home):
    """A fresh DLP_HOME: both create the MLflow database and the lab's experiment at the same moment."""
    command = [DLP, "run", "l1", "--preset", "smoke", "--data", "embedded", "--no-progress"]
    procs = [
        subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in "ab"
    ]
    results = [(proc.wait(timeout=240), proc.stderr.read()) for proc in procs]
    for code, stderr in results:
        assert code == 0, stderr
    runs = sorted((dlp_home / "runs").iterdir())
    assert len(runs) == 2 and {read_run(p).status for p in runs} == {"finished"}
