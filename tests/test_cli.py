"""The `dlp` command through its real entry point: output, exit codes, and one-line errors."""

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlpractice.checkpoint import read_checkpoint
from dlpractice.runner import RunSpec, resume_run, start_run

LONG_SMOKE = (
    "--set",
    "steps=4000",
    "--set",
    "ckpt_every=100",
    "--set",
    "log_every=1",
    "--set",
    "eval_every=2000",
)


def one_line_error(result: subprocess.CompletedProcess, fragment: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert fragment in lines[0]


def test_list_shows_every_track_and_the_last_result(dlp):
    start_run(RunSpec("l1", "smoke", data="embedded"))
    result = dlp("list")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "L · Language modelling" in out and "R · Beyond" in out
    assert "makemore-mlp" in out and "implemented" in out and "planned" in out and "needs l1" in out
    assert "last " in out and "(smoke, embedded)" in out


def test_show_describes_the_lab(dlp):
    result = dlp("show", "makemore-mlp")
    assert result.returncode == 0, result.stderr
    for text in ("Bengio", "n_hidden", "smoke", "quick", "full", "val_loss ≤ 2.12", "names"):
        assert text in result.stdout


def test_run_runs_report_sample(dlp):
    result = dlp("run", "l2", "--preset", "smoke", "--data", "embedded", "--set", "steps=50", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert '"steps": 50' in result.stdout  # the final config is printed
    assert "val_loss ≤ 2.12" in result.stdout and "report:" in result.stdout
    run_id = next(line.split()[2] for line in result.stdout.splitlines() if line.startswith("run id:"))

    listing = dlp("runs", "--lab", "l2")
    assert run_id in listing.stdout and "smoke" in listing.stdout and "embedded" in listing.stdout

    report = dlp("report", run_id[:-2])  # a unique prefix is enough
    assert report.returncode == 0 and "report.md" in report.stdout and "val_loss" in report.stdout

    samples = dlp("sample", run_id, "-n", "5")
    names = samples.stdout.split()
    assert samples.returncode == 0 and len(names) == 5 and all(n.isalpha() for n in names)
    assert dlp("sample", run_id, "-n", "5").stdout == samples.stdout  # seeded


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("run", "makemore-mpl"), "unknown lab 'makemore-mpl' (did you mean 'makemore-mlp'?)"),
        (("show", "l99"), "unknown lab 'l99'"),
        (("run", "l2", "--set", "steps=abc"), "steps='abc' is not a valid int"),
        (
            ("run", "l2", "--set", "n_hiden=3"),
            "unknown config key 'n_hiden' in --set (did you mean 'n_hidden'?)",
        ),
        (("run", "l2", "--model", "bert-base-cased"), "unknown config key 'model'"),
        (
            ("run", "n6", "--preset", "smoke", "--model", "/no/such/model"),
            "cannot load model '/no/such/model'",
        ),
        (("run", "l2", "--data", "real"), "names.txt not found"),
        (("run", "l8", "--preset", "fst"), "unknown preset 'fst' (did you mean 'fast'?)"),
        (("notebook", "l2", "--preset", "ful"), "unknown preset 'ful' (did you mean 'full'?)"),
        (("run", "r4"), "planned but not implemented"),
        (("run", "l1", "--device", "mps"), "this machine has no mps device"),
        (("report", "nope"), "no run 'nope'"),
        (("run", "--resume", "nope"), "no run 'nope'"),
    ],
)
def test_bad_input_is_one_line(dlp, args, fragment):
    one_line_error(dlp(*args), fragment)


def test_runs_directory_not_writable(dlp, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("DLP_HOME", str(blocker / "home"))  # a path under a file can never be created
    one_line_error(
        dlp("run", "l1", "--preset", "smoke", "--data", "embedded"), "set DLP_HOME to a writable directory"
    )


def start_long_run(dlp_home: Path) -> tuple[subprocess.Popen, Path]:
    """Start a smoke run of l2 long enough to be stopped, and wait for its first checkpoint."""
    dlp_path = Path(sys.executable).parent / "dlp"
    proc = subprocess.Popen(
        [str(dlp_path), "run", "l2", "--preset", "smoke", "--data", "embedded", *LONG_SMOKE],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline:
        found = list((dlp_home / "runs").glob("l2-*/checkpoint.safetensors"))
        if found:
            return proc, found[0].parent
        time.sleep(0.02)
    proc.kill()
    raise AssertionError("no checkpoint appeared")


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(dlp_home):
    proc, run_dir = start_long_run(dlp_home)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert f"resume with: dlp run l2 --resume {run_dir.name}" in stderr and "Traceback" not in stderr
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    assert read_checkpoint(run_dir / "checkpoint.safetensors").step < 4000


def test_sigkill_then_resume_reaches_the_same_losses(dlp_home, quality):
    """Kill -9 right after the first checkpoint; resume; every logged loss equals an unbroken run's."""
    proc, run_dir = start_long_run(dlp_home)
    proc.kill()
    proc.wait()
    killed_at = read_checkpoint(run_dir / "checkpoint.safetensors").step
    assert 0 < killed_at < 4000
    resumed = resume_run(run_dir.name)
    unbroken = start_run(RunSpec("l2", "smoke", tuple(LONG_SMOKE[1::2]), data="embedded"))
    assert quality(resumed.metrics) == quality(unbroken.metrics)
    history = read_checkpoint(run_dir / "checkpoint.safetensors").extra["history"]
    assert history == read_checkpoint(unbroken.run_dir / "checkpoint.safetensors").extra["history"]
    assert len([h for h in history if "train_loss" in h]) == 4000


def test_tampered_checkpoint_is_refused_and_left_alone(dlp, dlp_home):
    proc, run_dir = start_long_run(dlp_home)
    proc.kill()
    proc.wait()
    checkpoint = run_dir / "checkpoint.safetensors"
    damaged = checkpoint.read_bytes()[:-100]
    checkpoint.write_bytes(damaged)
    one_line_error(dlp("run", "--resume", run_dir.name), "unreadable (truncated or corrupt)")
    assert checkpoint.read_bytes() == damaged  # nothing overwritten


def test_finished_run_cannot_be_resumed(dlp):
    outcome = start_run(RunSpec("l1", "smoke", ("steps=20",), data="embedded"))
    one_line_error(dlp("run", "--resume", outcome.run_id), "already finished")
