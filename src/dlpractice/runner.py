"""One run of one lab: config, seed, threads, run directory, tracking, the lab itself, the report.

A run directory ($DLP_HOME/runs/<run id>/) holds run.json (what was asked and what came out), the
checkpoint, the final weights, report.md and figures/. `--resume` reads run.json and the checkpoint back.
"""

from __future__ import annotations

import errno
import json
import os
import random
import secrets
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from dlpractice.checkpoint import TrainState, read_checkpoint
from dlpractice.config import build_config, config_from_dict, config_to_dict
from dlpractice.device import pick_device
from dlpractice.distributed import NullTracker, follow_main, is_main_process, process_count, scratch_dir
from dlpractice.errors import DlpError, RunInterrupted, did_you_mean
from dlpractice.home import dlp_home, ensure_writable, runs_dir
from dlpractice.registry import Lab, lab_record, load_lab, resolve_id
from dlpractice.report import loss_curve, save_figure, write_report
from dlpractice.tracking import Tracker, tracker_check


class Progress:
    """The live progress bar fit() drives: step, loss, val, ETA. Silent when `show` is False."""

    def __init__(self, show: bool, description: str):
        self.show = show
        self.description = description
        self.bar = None
        self.task = None

    @contextmanager
    def __call__(self, total: int, completed: int = 0) -> Iterator[Progress]:
        if not self.show:
            yield self
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.progress import Progress as RichProgress

        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f} · val {task.fields[val]:.4f}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
        )
        with RichProgress(*columns, transient=False) as self.bar:
            self.task = self.bar.add_task(
                self.description, total=total, completed=completed, loss=float("nan"), val=float("nan")
            )
            yield self

    def update(self, step: int, **fields: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=step, **fields)


@dataclass(frozen=True)
class RunSpec:
    """What a user asks for: the whole request for one run. The CLI, notebooks and benchmarks build one;
    run.json keeps it, so `--resume` starts the same run again."""

    lab: str  # id or slug; open_run() stores the id
    preset: str = "quick"
    overrides: tuple[str, ...] = ()  # `--set key=value` pairs, in order
    data: str = "auto"  # embedded, real or auto
    data_dir: str | None = None
    device: str = "auto"  # auto, cpu, cuda or mps
    seed: int = 1337
    threads: int = 0  # torch CPU threads; 0 means default_threads()
    origin: str = "cli"  # who started it: cli, notebook, benchmark or sweep (an MLflow tag)
    parent_run_id: str = ""  # an MLflow run to nest this one under (a sweep's run); "" for none

    def __post_init__(self) -> None:
        if self.data not in DATA_SOURCES:
            raise DlpError(f"--data must be embedded, real or auto, not {self.data!r}")
        if self.threads < 0:
            raise DlpError(f"threads must be a positive integer, not {self.threads}")
        if self.threads == 0:
            object.__setattr__(self, "threads", default_threads())
        object.__setattr__(self, "overrides", tuple(self.overrides))


DATA_SOURCES = ("embedded", "real", "auto")
SPEC_FIELDS = tuple(f.name for f in fields(RunSpec))


@dataclass
class RunRecord:
    """run.json: the spec (its fields at the top level), the final config, and how the run went."""

    spec: RunSpec
    run_id: str
    config: dict[str, Any]
    mlflow_run_id: str = ""
    status: str = "running"  # running, interrupted, failed, pruned (stopped by a sweep), finished
    pid: int = field(default_factory=os.getpid)  # the process that runs it: a dead pid means it died
    host: str = field(default_factory=socket.gethostname)
    seconds: float = 0.0  # wall time over every segment of the run (a resumed run adds its own)
    metrics: dict[str, float] = field(default_factory=dict)
    value: float | None = None
    met: bool | None = None
    data_source: str | None = None
    data_info: dict[str, Any] = field(default_factory=dict)
    children: dict[str, str] = field(default_factory=dict)  # child name -> its MLflow run id

    @property
    def lab(self) -> str:
        return self.spec.lab

    @property
    def state(self) -> str:
        """The status, with a run whose process is gone (killed, a notebook's kernel stopped) as 'died'."""
        if self.status == "running" and self.host == socket.gethostname() and not _alive(self.pid):
            return "died"
        return self.status

    def to_json(self) -> dict[str, Any]:
        values = asdict(self)
        return {**values.pop("spec"), **values}

    @classmethod
    def from_json(cls, values: dict[str, Any], run_id: str) -> RunRecord:
        spec = RunSpec(**{k: values[k] for k in SPEC_FIELDS if k in values})
        known = {f.name for f in fields(cls)} - {"spec"}
        state = {k: v for k, v in values.items() if k in known}
        return cls(spec=spec, **{"run_id": run_id, **state})

    def save(self, run_dir: Path) -> None:
        """Write run.json atomically (a crash mid-write leaves the previous version)."""
        tmp = run_dir / ".run.json.tmp"
        tmp.write_text(json.dumps(self.to_json(), indent=2))
        os.replace(tmp, run_dir / "run.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunPruned(Exception):
    """Raised by a RunContext's on_eval to stop a run a sweep's pruner gave up on: recorded as pruned."""


@dataclass
class RunContext:
    """What a lab's run() gets besides its config: where to write, how to log, what to resume."""

    run_id: str
    run_dir: Path
    lab: Lab
    preset: str
    seed: int
    device: str
    data: str  # requested source: embedded, real or auto
    data_dir: str | None
    threads: int
    tracker: Tracker
    progress: Progress
    resume: TrainState | None = None
    figures: list[tuple[str, Path]] = field(default_factory=list)
    sections: list[tuple[str, str]] = field(default_factory=list)
    data_info: dict[str, Any] = field(default_factory=dict)
    record: RunRecord | None = None  # the run's run.json; a child shares its parent's
    children: list[RunContext] = field(default_factory=list)
    opened: float = field(default_factory=time.perf_counter)
    # fit() calls on_eval(step, val_loss) after each evaluation; a sweep's pruner raises RunPruned there
    on_eval: Callable[[int, float], None] | None = None

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"

    def child(self, name: str) -> RunContext:
        """A run of its own for one more model trained by this lab (a baseline, a second seed, ...).

        Its own sub-directory and a nested MLflow run in the lab's experiment, with the same metric names,
        so MLflow's comparison view shows the models side by side. Figures and report sections go to the
        parent's report. A child starts afresh when its parent resumes."""
        folder = self.run_dir / name
        folder.mkdir(exist_ok=True)
        known = self.record.children.get(name) if self.record else None
        tracker = self.tracker.child(name, known)
        if self.record is not None:
            self.record.children[name] = tracker.run_id
            self.record.save(self.run_dir)
        # on_eval stays with the parent: a sweep judges the run by its main model
        child = replace(
            self, run_dir=folder, tracker=tracker, resume=None, record=None, children=[], on_eval=None
        )
        self.children.append(child)
        return child

    def record_data(self, info: dict[str, Any]) -> None:
        """Record which data the run used (source, origin, split); tracked as params and tags."""
        self.data_info = dict(info)
        if self.resume is None:
            self.tracker.log_params(info)
        self.tracker.set_tags({"data_source": info["data_source"]})

    def figure(self, name: str, fig: Any, title: str) -> Path:
        path = save_figure(fig, self.run_dir / "figures" / f"{name}.png")
        self.figures.append((title, path))
        return path

    def loss_figure(
        self, history: list[dict[str, float]], name: str = "loss", title: str = "Loss curve", **labels: str
    ) -> Path:
        """The train/val loss figure; `labels` (xlabel, ylabel) when the loss is not per token per step."""
        path = loss_curve(history, self.run_dir / "figures" / f"{name}.png", title, **labels)
        self.figures.append((title, path))
        return path

    def section(self, title: str, markdown: str) -> None:
        self.sections.append((title, markdown))

    def save_json(self, name: str, value: Any) -> Path:
        path = self.run_dir / name
        path.write_text(json.dumps(value, indent=2))
        return path

    def finish_children(self, status: str) -> None:
        for child in self.children:
            child.finish_children(status)
            child.tracker.finish(status)


@dataclass
class RunOutcome:
    """A finished run: its record (run.json), where it lives, its lab and its report."""

    record: RunRecord
    run_dir: Path
    lab: Lab
    report: Path

    @property
    def run_id(self) -> str:
        return self.record.run_id

    @property
    def metrics(self) -> dict[str, float]:
        return self.record.metrics

    @property
    def value(self) -> float | None:
        return self.record.value

    @property
    def met(self) -> bool | None:
        return self.record.met

    @property
    def seconds(self) -> float:
        return self.record.seconds


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def default_threads() -> int:
    """$DLP_THREADS, else 1.

    One thread by default, not one per core: the same command must give the same numbers (the thread
    count changes float summation order), and on a busy 2-core machine two threads trained the small
    makemore nets 5-17x slower than one (OpenMP threads spin-waiting). Large models: pass --threads.
    """
    text = os.environ.get("DLP_THREADS", "1")
    if not text.isdigit() or int(text) < 1:
        raise DlpError(f"DLP_THREADS must be a positive integer, not {text!r}")
    return int(text)


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return out.stdout.strip() or "unknown"


def new_run_id(lab_id: str) -> str:
    return f"{lab_id}-{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


def find_run(name: str) -> Path:
    """A run directory from a full run id or a unique prefix of one."""
    root = runs_dir()
    exact = root / name
    if exact.is_dir() and exact.parent == root:
        return exact
    matches = sorted(p for p in root.glob(f"{name}*") if p.is_dir()) if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DlpError(f"run {name!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")
    known = [p.name for p in root.iterdir()] if root.is_dir() else []
    raise DlpError(f"no run {name!r} in {root}{did_you_mean(name, known)}; `dlp runs` lists them")


def read_run(run_dir: Path) -> RunRecord:
    """A run's run.json; a run that died before writing one is an error that says so."""
    path = run_dir / "run.json"
    if not path.exists():
        raise DlpError(f"run {run_dir.name} failed before it started (it has no run.json)")
    try:
        return RunRecord.from_json(json.loads(path.read_text()), run_dir.name)
    except (OSError, json.JSONDecodeError, TypeError) as err:
        raise DlpError(f"{path} is unreadable: {err}") from None


def open_run(spec: RunSpec, cfg: Any, show_progress: bool = False) -> RunContext:
    """Create a run from its spec and final config: run directory, run.json, tracked MLflow run, seeds.

    The one way a run comes to exist, whoever starts it (the CLI, a notebook, a benchmark). Launched on
    several processes, only the main one creates it; the others follow it (dlpractice.distributed)."""
    if process_count() > 1:
        return follow_main(
            lambda: _open_run(spec, cfg, show_progress),
            lambda run_id: _follow_run(spec, cfg, run_id),
            pick_device(spec.device),
        )
    return _open_run(spec, cfg, show_progress)


def _follow_run(spec: RunSpec, cfg: Any, run_id: str) -> RunContext:
    """A process other than the main one, in the main one's run: same spec and seed, nothing tracked."""
    lab = lab_record(resolve_id(spec.lab))
    record = RunRecord(spec=replace(spec, lab=lab.id), run_id=run_id, config=config_to_dict(cfg))
    device = pick_device(spec.device)
    return _context(lab, record, scratch_dir(run_id), NullTracker(run_id), device, None, False)


def _open_run(spec: RunSpec, cfg: Any, show_progress: bool = False) -> RunContext:
    lab = lab_record(resolve_id(spec.lab))
    spec = replace(spec, lab=lab.id)
    device = pick_device(spec.device)  # a missing device fails here, before a run directory exists
    tracker_check()  # an unreachable tracking server fails here too
    run_id = new_run_id(lab.id)
    with storage_errors(run_id):
        run_dir = ensure_writable(runs_dir()) / run_id
        run_dir.mkdir()
        record = RunRecord(spec=spec, run_id=run_id, config=config_to_dict(cfg))
        record.save(run_dir)
        tags = {
            "lab": lab.id,
            "preset": spec.preset,
            "seed": str(spec.seed),
            "git_commit": git_commit(),
            "dlp_run_id": run_id,
            "origin": spec.origin,
        }
        if spec.parent_run_id:  # MLflow shows the run nested under its sweep
            tags["mlflow.parentRunId"] = spec.parent_run_id
        try:
            tracker = Tracker.start(f"{lab.id}-{lab.slug}", run_id, tags)
        except BaseException:
            record.status = "failed"
            record.save(run_dir)
            raise
        tracker.log_params({**record.config, "device": device, "threads": spec.threads})
        record.mlflow_run_id = tracker.run_id
        record.save(run_dir)
    return _context(lab, record, run_dir, tracker, device, None, show_progress)


def _context(
    lab: Lab,
    record: RunRecord,
    run_dir: Path,
    tracker: Tracker,
    device: str,
    resume: TrainState | None,
    show_progress: bool,
) -> RunContext:
    spec = record.spec
    torch.set_num_threads(spec.threads)
    seed_everything(spec.seed)
    return RunContext(
        run_id=record.run_id,
        run_dir=run_dir,
        lab=lab,
        preset=spec.preset,
        seed=spec.seed,
        device=device,
        data=spec.data,
        data_dir=spec.data_dir,
        threads=spec.threads,
        tracker=tracker,
        progress=Progress(show_progress, f"{lab.id} {spec.preset}"),
        resume=resume,
        record=record,
    )


def start_run(spec: RunSpec, show_progress: bool = False, on_config: Any = None) -> RunOutcome:
    """Run a lab from scratch. `on_config(cfg, spec)` is called once the run exists (the CLI prints it)."""
    module = load_lab(spec.lab)
    cfg = build_config(module.Config, module.PRESETS, spec.preset, spec.overrides)
    ctx = open_run(spec, cfg, show_progress)
    if on_config:
        on_config(cfg, ctx.record.spec)
    return execute(module, cfg, ctx)


def resume_run(
    name: str, lab: str | None = None, show_progress: bool = False, on_config: Any = None
) -> RunOutcome:
    """Continue an interrupted run from its last checkpoint, with its own config, seed and data.

    `lab`, when given, must be the run's lab (`dlp run l1 --resume <an l2 run>` is a mistake)."""
    run_dir = find_run(name)
    record = read_run(run_dir)
    if lab is not None and resolve_id(lab) != record.lab:
        raise DlpError(f"run {run_dir.name} is a run of lab {record.lab}, not {resolve_id(lab)}")
    if record.status == "finished":
        raise DlpError(f"run {run_dir.name} already finished; start a new run instead")
    state = read_checkpoint(run_dir / "checkpoint.safetensors")  # verified before anything is touched
    ensure_writable(run_dir)
    tracker_check()
    module = load_lab(record.lab)
    cfg = config_from_dict(module.Config, record.config)
    device = pick_device(record.spec.device)
    with storage_errors(run_dir.name):
        if is_main_process():
            tracker = Tracker.reopen(record.mlflow_run_id)
        else:  # another process of a multi-process run: it tracks nothing and writes to scratch
            tracker, run_dir = NullTracker(record.mlflow_run_id), scratch_dir(run_dir.name)
        record.pid, record.host = os.getpid(), socket.gethostname()
    if on_config:
        on_config(cfg, record.spec)
    return execute(module, cfg, _context(module.LAB, record, run_dir, tracker, device, state, show_progress))


def execute(module: ModuleType, cfg: Any, ctx: RunContext) -> RunOutcome:
    """Run the lab in its context; then report and close the run (or mark it interrupted or failed)."""
    record = ctx.record
    started = time.perf_counter() - record.seconds  # a resumed run counts the time of its earlier segments
    record.status = "running"
    with storage_errors(ctx.run_id):
        record.save(ctx.run_dir)
        try:
            metrics = module.run(cfg, ctx)
        except RunInterrupted as stop:
            _close(ctx, "interrupted", time.perf_counter() - started)
            raise RunInterrupted(f"{stop}; resume with: dlp run {ctx.lab.id} --resume {ctx.run_id}") from None
        except RunPruned:
            _close(ctx, "pruned", time.perf_counter() - started)
            raise
        except BaseException:
            _close(ctx, "failed", time.perf_counter() - started)
            raise
        return finish_run(ctx, metrics, time.perf_counter() - started)


def _close(ctx: RunContext, status: str, seconds: float) -> None:
    """Mark a run that did not finish (best effort: the disk may be what failed)."""
    ctx.record.status, ctx.record.seconds = status, seconds
    mlflow_status = {"interrupted": "KILLED", "pruned": "KILLED", "failed": "FAILED"}[status]
    with suppress(Exception):
        ctx.record.save(ctx.run_dir)
    with suppress(Exception):
        ctx.finish_children(mlflow_status)
        ctx.tracker.finish(mlflow_status)


def finish_run(ctx: RunContext, metrics: dict[str, float], seconds: float | None = None) -> RunOutcome:
    """Write the report, record the result in run.json and MLflow, close the tracked run.

    A notebook calls this itself after its last cell; `seconds` defaults to the time since the run opened."""
    record, lab = ctx.record, ctx.lab
    if seconds is None:
        seconds = record.seconds + time.perf_counter() - ctx.opened
    value = metrics.get(lab.metric) if lab.metric else None
    met = lab.met(value)
    data_source = ctx.data_info.get("data_source", record.spec.data)
    summary = {
        "lab": lab.id,
        "title": lab.title,
        "run_id": ctx.run_id,
        "preset": record.spec.preset,
        "data_source": data_source,
        "data_origin": ctx.data_info.get("data_origin"),
        "seed": record.spec.seed,
        "device": ctx.device,
        "threads": record.spec.threads,
        "seconds": seconds,
        "commit": git_commit(),
        "metric": lab.metric,
        "value": value,
        "bar": lab.bar,
        "goal": lab.goal,
        "met": met,
    }
    report = write_report(ctx.run_dir, summary, record.config, metrics, ctx.figures, ctx.sections)
    record.status, record.seconds, record.metrics = "finished", seconds, dict(metrics)
    record.value, record.met, record.data_source, record.data_info = value, met, data_source, ctx.data_info
    record.save(ctx.run_dir)
    tracker = ctx.tracker
    tracker.log_metrics(0, {f"final_{k}": v for k, v in metrics.items()})
    tracker.set_tags({"bar_met": met, "metric": lab.metric, "value": value, "seconds": round(seconds, 2)})
    for path in [report, ctx.run_dir / "run.json", *(p for _, p in ctx.figures)]:
        tracker.log_artifact(path, "figures" if path.parent.name == "figures" else None)
    if (ctx.run_dir / "model.safetensors").exists():
        tracker.log_artifact(ctx.run_dir / "model.safetensors")
    ctx.finish_children("FINISHED")
    tracker.finish("FINISHED")
    return RunOutcome(record, ctx.run_dir, lab, report)


@contextmanager
def storage_errors(run_id: str) -> Iterator[None]:
    """A full disk (or the database on it) is one line that says what to do, not a database traceback."""
    try:
        yield
    except Exception as err:
        if not disk_full(err):
            raise
        raise DlpError(
            f"no space left on the disk of {dlp_home()}: run {run_id} stopped (earlier runs are intact); "
            "free some space, then resume it"
        ) from None


def disk_full(err: BaseException | None) -> bool:
    """Whether an error (or one it came from) is the disk running out of space."""
    while err is not None:
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in str(err) or "No space left on device" in str(err):
            return True
        err = err.__cause__ or err.__context__
    return False
