"""The `dlp` command through its real entry point: output, exit codes, and one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlpractice.checkpoint import read_checkpoint
from dlpractice.formatting import number
from dlpractice.runner import RunSpec, resume_run, start_run

pytestmark = pytest.mark.slow  # end to end: runs labs or the dlp command

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
    assert "makemore-mlp" in out and "implemented" in out and "needs l1" in out
    assert "last " in out and "(smoke, embedded)" in out


def test_show_describes_the_lab(dlp):
    result = dlp("show", "makemore-mlp")
    assert result.returncode == 0, result.stderr
    for text in ("Bengio", "n_hidden", "smoke", "quick", "full", "val_loss ≤ 2.12", "names"):
        assert text in result.stdout


def test_run_runs_report_sample(dlp):
    result = dlp("run", "l2", "--preset", "smoke", "--data", "embedded", "--set", "steps=50", "--seed", "7")
    assert result.returncode == 0, result.stderr
    assert "--set steps=50" in result.stdout and '"steps"' not in result.stdout  # overrides, not the config
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
        (("run", "l1", "--device", "mps"), "this machine has no mps device"),
        (("report", "nope"), "no run 'nope'"),
        (("run", "--resume", "nope"), "no run 'nope'"),
    ],
)
def test_bad_input_is_one_line(dlp, args, fragment):
    one_line_error(dlp(*args), fragment)


def test_a_planned_lab_is_listed_as_planned_and_refused_in_one_line(planned_lab, monkeypatch, capsys):
    from dlpractice import cli

    def dlp_here(*args: str) -> int:  # in this process, where the fixture hides the lab's module
        monkeypatch.setattr(sys, "argv", ["dlp", *args])
        with pytest.raises(SystemExit) as stopped:
            cli.main()
        return stopped.value.code

    monkeypatch.setenv("COLUMNS", "200")
    assert dlp_here("list") == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if f" {planned_lab} " in line)
    assert "planned" in row, row
    assert dlp_here("run", planned_lab) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1 and "planned but not implemented" in lines[0], lines


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

    # time and throughput cover the whole run, not only the segment after the resume: seconds times
    # tokens per second counts every token trained on, as in the unbroken run
    def targets(metrics: dict[str, float]) -> float:
        return metrics["tokens_per_second"] * metrics["train_seconds"]

    assert targets(resumed.metrics) == pytest.approx(targets(unbroken.metrics), rel=1e-9)


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


def dlp_at(columns: int, *args: str) -> str:
    """`dlp ARGS` in a terminal `columns` wide; its output, whose lines must fit that width.

    A path longer than the terminal is the one exception: it is printed whole, for copying."""
    env = {**os.environ, "COLUMNS": str(columns)}
    dlp_path = Path(sys.executable).parent / "dlp"
    result = subprocess.run([str(dlp_path), *args], capture_output=True, text=True, timeout=240, env=env)
    assert result.returncode == 0, result.stderr
    too_wide = [line for line in result.stdout.splitlines() if len(line) > columns and " /" not in line]
    assert not too_wide, f"dlp {' '.join(args)} at {columns} columns: {too_wide}"
    return result.stdout


def test_narrow_terminals_keep_run_ids_and_values_whole():
    outcome = start_run(RunSpec("l1", "smoke", data="embedded"))
    value = number(outcome.value)  # 4 significant digits, not the 17 of the stored tag
    for columns in (60, 80, 100, 200):
        listing = dlp_at(columns, "runs")
        assert outcome.run_id in listing and value in listing and repr(outcome.value) not in listing
        assert "…" not in listing
    syllabus = dlp_at(80, "list").splitlines()
    assert any(line.endswith("bar torch_parity_max_diff ≤ 1e-6") for line in syllabus)  # f5's bar, whole
    assert any(line.endswith(f"last {value} (smoke, embedded) met") for line in syllabus)
    summary = dlp_at(80, "report", outcome.run_id)
    assert f"report: {outcome.report}" in summary  # the path is never broken
    assert f"params: {number(outcome.metrics['params'])}\n" in summary and ".0000" not in summary


def test_show_rewraps_the_docstring_to_the_terminal():
    wide = dlp_at(200, "show", "l2").splitlines()
    # in the source, "...the embeddings are" ends one line and "concatenated and passed" starts the next
    assert any("embeddings are concatenated and passed" in line for line in wide)
    narrow = dlp_at(80, "show", "l2")  # every line within 80 columns (checked by dlp_at)
    assert "Bengio" in narrow


def test_help_names_only_commands_that_exist():
    assert "dlp info" not in dlp_at(200, "run", "--help")
