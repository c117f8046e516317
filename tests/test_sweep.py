"""`dlp sweep`: the plan and its bad inputs, trials as nested runs, pruning, resuming, a killed worker, and
a sweep on a real PostgreSQL server with two workers."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import optuna
import pytest

from dlpractice.config import build_config
from dlpractice.errors import DlpError
from dlpractice.registry import load_lab
from dlpractice.runner import RunSpec, open_run, read_run
from dlpractice.sweep.engine import Worker, join_sweep, open_sweep, parent_run, run_sweep
from dlpractice.sweep.plan import plan_sweep
from dlpractice.sweep.report import write_sweep_report
from dlpractice.tracking import Tracker, client

DLP = str(Path(sys.executable).parent / "dlp")
# l2's smoke preset cut to seconds a trial: evaluations at steps 20 and 40
TINY = ("steps=40", "eval_every=20", "log_every=20", "ckpt_every=1000", "n_samples=0")


def plan(method_args: dict, **options):
    grid, space = method_args.get("grid", []), method_args.get("space", [])
    return plan_sweep(
        "l2", "smoke", grid, space, method_args.get("random"), method_args.get("optuna"),
        overrides=options.pop("overrides", TINY), data="embedded", **options,
    )  # fmt: skip


def run_records(home: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((home / "runs").glob("*/run.json"))]


@pytest.mark.parametrize(
    ("space", "fragment"),
    [
        ("lr=lo:hi", "LOW and HIGH must be floats"),
        ("lr=0.01:0.001", "LOW must be below HIGH"),
        ("lr=0.01:0.01", "LOW must be below HIGH"),
        ("lr=0:0.1:log", "a log scale needs LOW > 0"),
        ("lr=0.001:0.1:ln", "expected lr=LOW:HIGH or lr=LOW:HIGH:log"),
        ("lr=0.001", "expected lr=LOW:HIGH"),
        ("lrr=0.001:0.1", "unknown config key 'lrr' in --space (did you mean 'lr'?)"),
        ("batchnorm=0:1", "batchnorm is not a number; give its values with --grid"),
        ("n_hidden=8.5:64", "LOW and HIGH must be ints"),
        (
            "lr=-1:0.1",
            "lr=-1 is out of range: lr must be a finite number > 0",
        ),  # the field's own range, checked at both ends
        ("lr", "--space expects key=..."),
    ],
)
def test_a_bad_space_is_one_line_before_anything_runs(space, fragment, dlp_home):
    with pytest.raises(DlpError) as error:
        plan({"space": [space], "random": 2})
    assert fragment in str(error.value) and "\n" not in str(error.value)
    assert not dlp_home.exists()


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        ({}, "nothing to search"),
        ({"space": ["lr=0.001:0.1"]}, "--space needs --random N or --optuna N"),
        ({"space": ["lr=0.001:0.1"], "random": 2, "optuna": 2}, "not both"),
        ({"grid": ["n_hidden=8,16"], "space": ["n_hidden=8:16"], "random": 2}, "given twice"),
        ({"grid": ["n_hidden=8,x"]}, "n_hidden='x' is not a valid int"),
        ({"grid": ["n_hidden=8,0"]}, "n_hidden=0 is out of range"),
        ({"grid": ["steps=10,20"]}, "given twice"),  # also in --set
        ({"grid": ["optimizer=adamw,adam"]}, "is not one of adamw, sgd"),
    ],
)
def test_a_bad_search_is_one_line(args, fragment):
    with pytest.raises(DlpError) as error:
        plan(args)
    assert fragment in str(error.value), str(error.value)


def test_the_plan_types_each_axis_from_the_config_and_names_the_study():
    made = plan(
        {"grid": ["n_hidden=16,32", "batchnorm=true,false"], "space": ["lr=1e-4:1e-2:log"], "optuna": 5}
    )
    grid, flag, lr = made.axes
    assert grid.choices == (16, 32) and flag.choices == (True, False)
    assert (lr.low, lr.high, lr.log, lr.integer) == (1e-4, 1e-2, True, False)
    assert made.method == "tpe" and made.trials == 5 and made.metric == "val_loss" and made.goal == "min"
    assert plan({"grid": ["n_hidden=16,32", "block_size=2,3,4"]}).trials == 6  # a grid: every combination
    assert plan({"space": ["n_hidden=16:64:log"], "random": 3}).axes[0].integer
    # the budget does not change the study (a resumption may raise it); the search does
    search = {"grid": ["n_hidden=16,32", "batchnorm=true,false"], "space": ["lr=1e-4:1e-2:log"]}
    assert made.default_name() == plan({**search, "optuna": 9}).default_name()
    assert made.default_name() != plan({**search, "random": 5}).default_name()
    assert made.rerun_command({"n_hidden": 32, "batchnorm": False, "lr": 0.003}) == (
        "dlp run l2 --preset smoke --set steps=40 --set eval_every=20 --set log_every=20 "
        "--set ckpt_every=1000 --set n_samples=0 --set n_hidden=32 --set batchnorm=False --set lr=0.003 "
        "--data embedded"
    )


def test_a_study_of_another_sweep_is_refused_and_joining_a_missing_one_names_those_there(dlp_home):
    url = f"sqlite:///{dlp_home / 'sweeps.db'}"
    dlp_home.mkdir()
    open_sweep(plan({"grid": ["n_hidden=16,32"]}), "mine", url)
    open_sweep(plan({"grid": ["n_hidden=16,32"]}), "mine", url)  # the same sweep: loaded again
    with pytest.raises(DlpError, match="study 'mine' in sqlite:.* is another sweep"):
        open_sweep(plan({"grid": ["n_hidden=16,64"]}), "mine", url)
    with pytest.raises(DlpError, match=r"no study 'mien' .* \(did you mean 'mine'\?\); studies there: mine"):
        join_sweep("mien", url)
    with pytest.raises(DlpError, match="study name 'a/b'"):
        open_sweep(plan({"grid": ["n_hidden=16,32"]}), "a/b", url)


def test_an_unreachable_or_unknown_storage_is_one_line(dlp_home):
    with pytest.raises(DlpError, match="cannot open the study storage"):
        open_sweep(plan({"grid": ["n_hidden=16,32"]}), "s", "nosuchdb://x")
    with pytest.raises(DlpError, match=r"postgresql://u:\*\*\*@127.0.0.1:1/db"):  # the password hidden
        open_sweep(plan({"grid": ["n_hidden=16,32"]}), "s", "postgresql://u:secret@127.0.0.1:1/db")


@pytest.mark.slow  # a fresh MLflow database
def test_a_run_spec_nests_its_run_under_a_parent_and_a_child_run_has_no_pruner():
    parent = Tracker.start("l1-makemore-bigram", "a sweep", {"lab": "l1"})
    module = load_lab("l1")
    cfg = build_config(module.Config, module.PRESETS, "smoke")
    ctx = open_run(RunSpec("l1", "smoke", data="embedded", parent_run_id=parent.run_id, origin="sweep"), cfg)
    ctx.on_eval = lambda step, val_loss: None
    assert client().get_run(ctx.tracker.run_id).data.tags["mlflow.parentRunId"] == parent.run_id
    assert read_run(ctx.run_dir).spec.parent_run_id == parent.run_id
    assert ctx.child("baseline").on_eval is None  # a sweep judges the lab's main model only


@pytest.mark.slow
def test_a_sweep_resumes_runs_only_missing_trials_and_nests_each_trial(dlp_home):
    search = {"space": ["lr=1e-3:3e-2:log", "n_hidden=8:32"], "random": 2}
    first = run_sweep(plan(search), None, None, 1, print)
    assert first.ran == 2 and [r["state"] for r in first.rows] == ["complete", "complete"]
    again = run_sweep(plan(search), None, None, 1, print)  # the same command: nothing left to run
    assert again.ran == 0 and again.rows == first.rows and len(run_records(dlp_home)) == 2
    more = run_sweep(plan({**search, "random": 3}), None, None, 1, print)  # a bigger budget: one more
    assert more.name == first.name and more.ran == 1 and len(more.rows) == 3
    records = run_records(dlp_home)
    assert len(records) == 3 and {r["status"] for r in records} == {"finished"}
    best = min(more.rows, key=lambda r: r["value"])
    assert more.best == best and best["run"] in {r["run_id"] for r in records}
    # every trial is an MLflow run nested under the sweep's run, with the trial's parameters as its config
    study, _ = join_sweep(more.name, f"sqlite:///{dlp_home / 'sweeps.db'}")
    sweep_run = study.user_attrs["mlflow_run_id"]
    by_run = {record["run_id"]: record for record in records}  # run ids sort by second, not by trial
    for row in more.rows:
        record = by_run[row["run"]]
        tracked = client().get_run(record["mlflow_run_id"])
        assert tracked.data.tags["mlflow.parentRunId"] == sweep_run
        assert tracked.data.tags["dlp_sweep"] == more.name
        assert record["config"]["n_hidden"] == row["params"]["n_hidden"]
    assert client().get_run(sweep_run).data.tags["value"] == repr(best["value"])
    report = more.report.read_text()
    assert (
        "## Best trial" in report and more.best["run"] in report and "## Parameter importances" not in report
    )
    assert f"--set n_hidden={best['params']['n_hidden']}" in report
    assert (more.report.parent / "figures" / "parallel_coordinates.png").stat().st_size > 0


@pytest.mark.slow
def test_pruning_stops_a_trial_worse_than_the_median_and_records_it(dlp_home):
    made = plan({"space": ["lr=1e-6:1e-2:log"], "random": 2}, prune=True, prune_startup=1)
    url = f"sqlite:///{dlp_home / 'sweeps.db'}"
    dlp_home.mkdir()
    study = open_sweep(made, "pruned", url)
    study.enqueue_trial({"lr": 1e-2})  # a good rate first, then one that barely moves the weights
    study.enqueue_trial({"lr": 1e-6})
    Worker("pruned", url, made, parent_run(study, made, "pruned")).run()
    good, bad = sorted(study.get_trials(), key=lambda t: t.number)
    assert good.state == optuna.trial.TrialState.COMPLETE and bad.state == optuna.trial.TrialState.PRUNED
    assert list(bad.intermediate_values) == [20]  # stopped at its first evaluation
    record = read_run(dlp_home / "runs" / bad.user_attrs["run_id"])
    assert record.status == "pruned" and record.state == "pruned"  # not failed
    tracked = client().get_run(record.mlflow_run_id)
    assert tracked.info.status == "KILLED" and tracked.data.tags["pruned_at_step"] == "20"
    assert tracked.data.tags["mlflow.parentRunId"] == study.user_attrs["mlflow_run_id"]


@pytest.mark.slow
def test_bad_input_through_the_command_is_one_line(dlp):
    result = dlp("sweep", "l2", "--preset", "smoke", "--random", "2", "--space", "lr=lo:hi")
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and "LOW and HIGH must be floats" in lines[0], (
        result.stderr
    )


def sweep_command(*args: str) -> list[str]:
    sets = [part for pair in TINY for part in ("--set", pair)]
    return [DLP, "sweep", "l2", "--preset", "smoke", "--data", "embedded", *sets, "--no-prune", *args]


@pytest.mark.slow
def test_a_worker_killed_mid_trial_leaves_a_sweep_that_finishes_its_budget(dlp_home):
    # longer trials, so that the kill lands mid-trial; a 1 s heartbeat: the dead trial is retried ~10 s later
    command = sweep_command("--set", "steps=400", "--random", "3", "--space", "lr=1e-3:1e-2:log")
    command += ["--workers", "2", "--heartbeat", "1", "--study", "killed"]
    env = {**os.environ, "COLUMNS": "200"}
    main = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        victim = wait_for_worker_trial(dlp_home, main.pid, timeout=180)
        os.kill(victim, signal.SIGKILL)
        out, _ = main.communicate(timeout=300)
    finally:
        main.kill()
    assert main.returncode == 0, out
    assert "worker 1 exited with signal 9" in out
    study, _ = join_sweep("killed", f"sqlite:///{dlp_home / 'sweeps.db'}")
    states = [t.state.name for t in study.get_trials()]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1, states
    failed = next(t for t in study.get_trials() if t.state.name == "FAIL")
    retried = [t for t in study.get_trials() if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params  # the same trial, run again


def wait_for_worker_trial(home: Path, main_pid: int, timeout: float) -> int:
    """The pid of a worker other than the main process once it is training a trial."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for record in run_records(home) if (home / "runs").is_dir() else []:
            if record["status"] == "running" and record["pid"] != main_pid:
                return record["pid"]
        time.sleep(0.2)
    raise AssertionError("no worker started a trial")


# ---- a real PostgreSQL server ----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def postgres() -> Iterator[str]:
    """A PostgreSQL server of its own on a free loopback port, in a temporary directory; its URL."""
    bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    found = shutil.which("pg_ctl")
    pg_ctl = Path(found) if found else (bins[-1] if bins else None)
    if pg_ctl is None:
        pytest.skip(
            "PostgreSQL is not installed (apt-get install postgresql): the real-server sweep is skipped"
        )
    pytest.importorskip("psycopg", reason="psycopg is not installed: pip install 'dlpractice[postgres]'")
    folder = Path(tempfile.mkdtemp(prefix="dlp-postgres-"))
    as_user = []
    if os.geteuid() == 0:  # initdb refuses to run as root: the server runs as the postgres user
        shutil.chown(folder, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", free_port()
    run = lambda *args: subprocess.run([*as_user, *map(str, args)], check=True, capture_output=True)  # noqa: E731
    try:
        run(pg_ctl.parent / "initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8")
        options = f"-p {port} -h 127.0.0.1 -k {folder} -c fsync=off"
        run(pg_ctl, "-D", data, "-l", folder / "server.log", "-o", options, "-w", "start")
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            [*as_user, str(pg_ctl), "-D", str(data), "-m", "immediate", "stop"], capture_output=True
        )
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.slow
def test_two_workers_share_a_sweep_on_a_real_postgresql_server(postgres, dlp_home):
    command = sweep_command("--set", "steps=300", "--random", "4", "--space", "lr=1e-3:1e-2:log")
    command += ["--workers", "2", "--storage", postgres, "--study", "on-postgres"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=400, env=os.environ)
    assert result.returncode == 0, result.stdout + result.stderr
    study, plan_ = join_sweep("on-postgres", postgres)
    assert plan_.lab == "l2" and [t.state.name for t in study.get_trials()] == ["COMPLETE"] * 4
    assert "sqlite" not in result.stdout and (dlp_home / "sweeps" / "on-postgres" / "report.md").exists()
    assert not (dlp_home / "sweeps.db").exists()  # nothing went to the default storage
    pids = {record["pid"] for record in run_records(dlp_home)}
    assert len(pids) == 2, "both workers ran trials"


def test_the_report_ranks_parameter_importances_with_two_fields_and_enough_trials(tmp_path):
    made = plan({"space": ["lr=1e-4:1e-1:log", "n_hidden=8:64"], "random": 8})
    study = optuna.create_study(direction="minimize")
    distributions = {
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True),
        "n_hidden": optuna.distributions.IntDistribution(8, 64),
    }
    for i in range(8):  # the value follows lr alone: lr must rank first
        lr = 10 ** (-4 + 3 * i / 7)
        params = {"lr": lr, "n_hidden": 8 + (i * 5) % 57}
        trial = optuna.create_trial(params=params, distributions=distributions, value=abs(lr - 0.01))
        study.add_trial(trial)
    rows = [
        {
            "trial": t.number,
            "state": "complete",
            "value": t.value,
            "params": t.params,
            "run": "r",
            "seconds": 1.0,
        }
        for t in study.trials
    ]
    report = write_sweep_report(study, made, "s", "sqlite:///x", rows, rows[0], tmp_path).read_text()
    section = report.split("## Parameter importances")[1].split("##")[0]
    assert section.index("| lr |") < section.index("| n_hidden |")
    assert "--set n_hidden=8 " in report and "## Trials" in report and report.count("| complete |") == 8
