"""The sweep engine: the study, its workers, each trial an ordinary tracked run.

A sweep is an Optuna study in a database: $DLP_HOME/sweeps.db (SQLite, nothing to start) by default, any
SQLAlchemy URL by `--storage` (PostgreSQL for workers on several machines). The study keeps the plan (lab,
preset, search space, metric) as a user attribute, so `dlp sweep --join STUDY` anywhere runs trials of the
same sweep, and the same `dlp sweep` command again resumes it: it counts the finished trials and runs only
the missing ones. Each trial is a run (`runner.open_run`/`execute`): its own run directory and MLflow run,
nested under the sweep's MLflow run. Workers beat a heartbeat; a trial whose worker died is run again.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlpractice.config import build_config
from dlpractice.errors import DlpError, RunInterrupted, did_you_mean
from dlpractice.formatting import number
from dlpractice.home import dlp_home
from dlpractice.registry import load_lab
from dlpractice.runner import RunPruned, RunSpec, execute, open_run
from dlpractice.studies import open_storage, storage_url_shown
from dlpractice.sweep.plan import Plan
from dlpractice.sweep.report import write_sweep_report
from dlpractice.tracking import Tracker

FINISHED = ("COMPLETE", "PRUNED")  # trial states that count towards the budget
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a study name is also a folder name


def storage_or_default(url: str | None) -> str:
    """`url`, else the SQLite file $DLP_HOME/sweeps.db (its folder created)."""
    if url:
        return url
    dlp_home().mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{dlp_home() / 'sweeps.db'}"


def sweeps_dir() -> Path:
    return dlp_home() / "sweeps"


# ---- the study ----------------------------------------------------------------------------------


def open_sweep(plan: Plan, name: str, url: str) -> Any:
    """Create the study, or load it and check it is this sweep (then its budget becomes plan.trials)."""
    import optuna

    if not NAME.fullmatch(name):
        raise DlpError(f"study name {name!r}: use letters, digits, '.', '_' and '-' (at most 100)")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    study = optuna.create_study(
        storage=storage, study_name=name, direction=plan.direction, load_if_exists=True
    )
    known = study.user_attrs.get("plan")
    if known is None:
        study.set_user_attr("plan", plan.to_json())
        return study
    old = Plan.from_json(known)
    if old.identity() != plan.identity():
        raise DlpError(
            f"study {name!r} in {storage_url_shown(url)} is another sweep ({describe(old)}); "
            "pick another --study name, or give the same lab, preset, search and --set"
        )
    study.set_user_attr("plan", plan.to_json())  # a new budget, pruning or heartbeat
    return study


def join_sweep(name: str, url: str) -> tuple[Any, Plan]:
    """The study and plan of an existing sweep, for `dlp sweep --join`."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = open_storage(url)
    try:
        study = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = optuna.get_all_study_names(storage)
        raise DlpError(
            f"no study {name!r} in {storage_url_shown(url)}{did_you_mean(name, names)}; "
            f"studies there: {', '.join(names) or 'none'}"
        ) from None
    if "plan" not in study.user_attrs:
        raise DlpError(f"study {name!r} was not made by `dlp sweep`: nothing to join")
    return study, Plan.from_json(study.user_attrs["plan"])


def describe(plan: Plan) -> str:
    axes = "; ".join(a.describe() for a in plan.axes)
    return f"{plan.lab} --preset {plan.preset}, {plan.method} over {axes}"


def counts(study: Any) -> Counter:
    return Counter(t.state.name for t in study.get_trials(deepcopy=False))


def finished(study: Any) -> int:
    tally = counts(study)
    return sum(tally[s] for s in FINISHED)


def _sampler(plan: Plan, seed: int) -> Any:
    import optuna

    if plan.method == "grid":
        space = {a.name: list(a.choices) for a in plan.axes}
        return optuna.samplers.GridSampler(space, seed=plan.seed)
    if plan.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # TPE models the trials after a few random ones: a third of the budget, between 2 and 10 (Optuna's
    # default); constant_liar counts running trials as bad so parallel workers spread out
    startup = max(2, min(10, plan.trials // 3))
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=startup, constant_liar=True)


def _pruner(plan: Plan) -> Any:
    import optuna

    if not plan.prune:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=plan.prune_startup)


@dataclass
class Worker:
    """One process running trials of a sweep until the study has its budget of finished trials."""

    name: str
    url: str
    plan: Plan
    parent_run_id: str
    index: int = 0  # 0 for the process that started the sweep; sets the sampler's stream apart
    say: Callable[[str], None] = print
    ran: list[int] = field(default_factory=list)  # trial numbers this worker ran

    def run(self) -> None:
        import optuna

        storage = open_storage(self.url, self.plan.heartbeat)
        study = optuna.load_study(study_name=self.name, storage=storage, pruner=_pruner(self.plan))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            while True:
                # a trial whose worker stopped beating: failed, and queued again with its parameters
                optuna.storages.fail_stale_trials(study)
                tally = counts(study)
                done = sum(tally[s] for s in FINISHED)
                if done >= self.plan.trials:
                    return
                if done + tally["RUNNING"] >= self.plan.trials and not tally["WAITING"]:
                    time.sleep(min(self.plan.heartbeat, 5))  # the rest runs elsewhere, unless a worker dies
                    continue
                # a fresh stream per trial: a resumed or parallel sampler must not repeat itself
                study.sampler = _sampler(
                    self.plan, hash((self.plan.seed, self.index, sum(tally.values()))) % 2**31
                )
                study.optimize(self.objective, n_trials=1, gc_after_trial=False)

    def objective(self, trial: Any) -> float:
        import optuna

        plan = self.plan
        params = {axis.name: axis.suggest(trial) for axis in plan.axes}
        spec = RunSpec(
            plan.lab,
            plan.preset,
            plan.overrides_for(params),
            plan.data,
            plan.data_dir,
            plan.device,
            plan.seed,
            origin="sweep",
            parent_run_id=self.parent_run_id,
        )
        module = load_lab(spec.lab)
        cfg = build_config(module.Config, module.PRESETS, spec.preset, spec.overrides)
        ctx = open_run(spec, cfg)
        ctx.tracker.set_tags({"dlp_sweep": self.name, "optuna_trial": trial.number})
        trial.set_user_attr("run_id", ctx.run_id)
        if plan.prune:
            ctx.on_eval = pruning_hook(trial, ctx.tracker, plan.direction)
        shown = ", ".join(f"{k}={number(v)}" for k, v in params.items())
        try:
            outcome = execute(module, cfg, ctx)
        except RunPruned as stop:
            self.say(f"trial {trial.number} ({shown}): {stop} · run {ctx.run_id}")
            self.ran.append(trial.number)
            raise optuna.TrialPruned(str(stop)) from None
        except RunInterrupted:
            raise RunInterrupted(f"sweep {self.name} stopped; the same command resumes it") from None
        value = outcome.metrics.get(plan.metric)
        if value is None:
            raise DlpError(
                f"lab {plan.lab} reports no metric {plan.metric!r}; it reports {', '.join(outcome.metrics)}"
            )
        self.say(f"trial {trial.number} ({shown}): {plan.metric} {number(value)} · run {ctx.run_id}")
        self.ran.append(trial.number)
        return float(value)


def pruning_hook(trial: Any, tracker: Tracker, direction: str) -> Callable[[int, float], None]:
    """fit()'s on_eval: report the val loss to the trial; stop the run when the pruner gives up on it.

    The pruner compares intermediate values in the study's direction; a study that maximises (accuracy)
    gets the negated loss, so that a lower loss still reads as better."""
    sign = 1.0 if direction == "minimize" else -1.0

    def on_eval(step: int, val_loss: float) -> None:
        trial.report(sign * val_loss, step)
        if trial.should_prune():
            tracker.set_tags({"pruned_at_step": step})
            raise RunPruned(f"pruned at step {step} (val_loss {number(val_loss)}, worse than the median)")

    return on_eval


# ---- the sweep as a whole -----------------------------------------------------------------------


@dataclass
class SweepResult:
    name: str
    plan: Plan
    rows: list[dict[str, Any]]  # one per trial: number, state, value, params, run, seconds
    best: dict[str, Any] | None
    report: Path
    ran: int  # trials this command ran itself
    notes: list[str]


def parent_run(study: Any, plan: Plan, name: str) -> str:
    """The sweep's MLflow run (in the lab's experiment), created once: every trial's run nests under it."""
    known = study.user_attrs.get("mlflow_run_id")
    if known:
        return known
    module = load_lab(plan.lab)
    tags = {
        "lab": plan.lab,
        "preset": plan.preset,
        "origin": "sweep",
        "dlp_sweep": name,
        "method": plan.method,
    }
    tracker = Tracker.start(f"{plan.lab}-{module.LAB.slug}", f"sweep {name}", tags)
    tracker.log_params({"method": plan.method, **{f"space.{a.name}": a.describe() for a in plan.axes}})
    study.set_user_attr("mlflow_run_id", tracker.run_id)
    return tracker.run_id


def spawn_workers(count: int, name: str, url: str) -> list[subprocess.Popen]:
    """`dlp sweep --join` in `count` more processes (each its own interpreter, torch and connections)."""
    env = {**os.environ, "DLP_SWEEP_WORKER": "1"}
    command = [sys.executable, "-m", "dlpractice", "sweep", "--join", name, "--storage", url]
    return [
        subprocess.Popen([*command, "--worker-index", str(i)], env=env, stdin=subprocess.DEVNULL)
        for i in range(1, count + 1)
    ]


def run_sweep(
    plan: Plan, name: str | None, url: str | None, workers: int, say: Callable[[str], None]
) -> SweepResult:
    """Create or resume the study, run it in `workers` processes, then write its report."""
    name = name or plan.default_name()
    url = storage_or_default(url)
    study = open_sweep(plan, name, url)
    parent = parent_run(study, plan, name)
    already = finished(study)
    say(f"sweep {name}: {describe(plan)}; {already}/{plan.trials} trials finished before")
    notes = []
    children = spawn_workers(workers - 1, name, url) if workers > 1 and already < plan.trials else []
    worker = Worker(name, url, plan, parent, 0, say)
    try:
        worker.run()
    finally:
        for i, child in enumerate(children, 1):
            code = child.wait()
            if code != 0:
                notes.append(
                    f"worker {i} exited with {'signal ' + str(-code) if code < 0 else 'code ' + str(code)}"
                )
    return finish_sweep(study, plan, name, url, parent, len(worker.ran), notes)


def join(name: str, url: str | None, index: int, say: Callable[[str], None]) -> int:
    """`dlp sweep --join`: run trials of an existing sweep until it has its budget; how many ran here."""
    url = storage_or_default(url)
    study, plan = join_sweep(name, url)
    worker = Worker(name, url, plan, study.user_attrs.get("mlflow_run_id", ""), index or os.getpid(), say)
    worker.run()
    return len(worker.ran)


def trial_rows(study: Any) -> list[dict[str, Any]]:
    rows = []
    for trial in sorted(study.get_trials(deepcopy=False), key=lambda t: t.number):
        seconds = trial.duration.total_seconds() if trial.duration else None
        rows.append(
            {
                "trial": trial.number,
                "state": trial.state.name.lower(),
                "value": trial.value,
                "params": dict(trial.params),
                "run": trial.user_attrs.get("run_id", "—"),
                "seconds": seconds,
            }
        )
    return rows


def finish_sweep(
    study: Any, plan: Plan, name: str, url: str, parent: str, ran: int, notes: list[str]
) -> SweepResult:
    """The report, and the sweep's MLflow run updated with the best value and each trial's."""
    rows = trial_rows(study)
    complete = [r for r in rows if r["state"] == "complete"]
    pick = min if plan.goal == "min" else max
    best = pick(complete, key=lambda r: r["value"]) if complete else None
    folder = sweeps_dir() / name
    report = write_sweep_report(study, plan, name, storage_url_shown(url), rows, best, folder)
    tracker = Tracker.reopen(parent)
    for row in complete:
        tracker.log_metrics(row["trial"], {plan.metric: row["value"]})
    if best is not None:
        tracker.set_tags({"metric": plan.metric, "value": best["value"], "best_run": best["run"]})
    tracker.log_artifact(report)
    tracker.finish("FINISHED")
    return SweepResult(name, plan, rows, best, report, ran, notes)
