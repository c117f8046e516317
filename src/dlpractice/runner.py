"""One run of one lab: config, seed, threads, run directory, tracking, the lab itself, the report.

A run directory ($DLP_HOME/runs/<run id>/) holds run.json (what was asked and what came out), the
checkpoint, the final weights, report.md and figures/. `--resume` reads run.json and the checkpoint back.
"""

from __future__ import annotations

import json
import os
import random
import secrets
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from dlpractice.checkpoint import TrainState, read_checkpoint
from dlpractice.config import build_config, config_from_dict, config_to_dict
from dlpractice.device import pick_device
from dlpractice.errors import DlpError, RunInterrupted, did_you_mean
from dlpractice.home import ensure_writable, runs_dir
from dlpractice.registry import Lab, load_lab
from dlpractice.report import loss_curve, save_figure, write_report
from dlpractice.tracking import Tracker


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

    @property
    def checkpoint_path(self) -> Path:
        return self.run_dir / "checkpoint.safetensors"

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


@dataclass
class RunOutcome:
    run_id: str
    run_dir: Path
    lab: Lab
    metrics: dict[str, float]
    value: float | None
    met: bool | None
    report: Path
    seconds: float
    record: dict[str, Any]


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
    if (exact / "run.json").is_file():
        return exact
    matches = sorted(p for p in root.glob(f"{name}*") if (p / "run.json").is_file()) if root.is_dir() else []
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise DlpError(f"run {name!r} is ambiguous: {', '.join(p.name for p in matches[:5])}")
    known = [p.name for p in root.iterdir()] if root.is_dir() else []
    raise DlpError(f"no run {name!r} in {root}{did_you_mean(name, known)}; `dlp runs` lists them")


def read_run(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / "run.json").read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DlpError(f"{run_dir / 'run.json'} is unreadable: {err}") from None


def _write_run(run_dir: Path, record: dict[str, Any]) -> None:
    tmp = run_dir / ".run.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    os.replace(tmp, run_dir / "run.json")


def start_run(
    lab_name: str,
    preset: str = "quick",
    overrides: tuple[str, ...] = (),
    data: str = "auto",
    data_dir: str | None = None,
    device: str = "auto",
    seed: int = 1337,
    threads: int | None = None,
    show_progress: bool = False,
    on_config: Any = None,
) -> RunOutcome:
    """Run a lab from scratch. `on_config(cfg)` is called once the config is final (the CLI prints it)."""
    module = load_lab(lab_name)
    cfg = build_config(module.Config, module.PRESETS, preset, overrides)
    if data not in ("embedded", "real", "auto"):
        raise DlpError(f"--data must be embedded, real or auto, not {data!r}")
    pick_device(device)  # a missing device fails here, before a run directory exists
    record = {
        "lab": module.LAB.id,
        "preset": preset,
        "config": config_to_dict(cfg),
        "data": data,
        "data_dir": data_dir,
        "device": device,
        "seed": seed,
        "threads": threads or default_threads(),
        "status": "running",
    }
    run_id = new_run_id(module.LAB.id)
    run_dir = ensure_writable(runs_dir()) / run_id
    run_dir.mkdir()
    tags = {
        "lab": module.LAB.id,
        "preset": preset,
        "seed": str(seed),
        "git_commit": git_commit(),
        "dlp_run_id": run_id,
    }
    tracker = Tracker.start(f"{module.LAB.id}-{module.LAB.slug}", run_id, tags)
    tracker.log_params({**record["config"], "device": device, "threads": record["threads"]})
    record["mlflow_run_id"] = tracker.run_id
    _write_run(run_dir, record)
    if on_config:
        on_config(cfg)
    return _execute(module, cfg, record, run_id, run_dir, tracker, None, show_progress)


def resume_run(name: str, show_progress: bool = False, on_config: Any = None) -> RunOutcome:
    """Continue an interrupted run from its last checkpoint, with its own config, seed and data."""
    run_dir = find_run(name)
    record = read_run(run_dir)
    if record.get("status") == "finished":
        raise DlpError(f"run {run_dir.name} already finished; start a new run instead")
    state = read_checkpoint(run_dir / "checkpoint.safetensors")  # verified before anything is touched
    ensure_writable(run_dir)
    module = load_lab(record["lab"])
    cfg = config_from_dict(module.Config, record["config"])
    tracker = Tracker.reopen(record["mlflow_run_id"])
    if on_config:
        on_config(cfg)
    return _execute(module, cfg, record, run_dir.name, run_dir, tracker, state, show_progress)


def _execute(
    module: ModuleType,
    cfg: Any,
    record: dict,
    run_id: str,
    run_dir: Path,
    tracker: Tracker,
    resume: TrainState | None,
    show_progress: bool,
) -> RunOutcome:
    lab: Lab = module.LAB
    torch.set_num_threads(record["threads"])
    seed_everything(record["seed"])
    ctx = RunContext(
        run_id=run_id,
        run_dir=run_dir,
        lab=lab,
        preset=record["preset"],
        seed=record["seed"],
        device=pick_device(record["device"]),
        data=record["data"],
        data_dir=record["data_dir"],
        threads=record["threads"],
        tracker=tracker,
        progress=Progress(show_progress, f"{lab.id} {record['preset']}"),
        resume=resume,
    )
    started = time.perf_counter() - record.get("seconds", 0.0)
    record["status"] = "running"
    _write_run(run_dir, record)
    try:
        metrics = module.run(cfg, ctx)
    except RunInterrupted as stop:
        record.update(status="interrupted", seconds=time.perf_counter() - started)
        _write_run(run_dir, record)
        tracker.finish("KILLED")
        raise RunInterrupted(f"{stop}; resume with: dlp run {lab.id} --resume {run_id}") from None
    except BaseException:
        record["status"] = "failed"
        _write_run(run_dir, record)
        tracker.finish("FAILED")
        raise
    seconds = time.perf_counter() - started
    value = metrics.get(lab.metric) if lab.metric else None
    met = lab.met(value)
    summary = {
        "lab": lab.id,
        "title": lab.title,
        "run_id": run_id,
        "preset": record["preset"],
        "data_source": ctx.data_info.get("data_source", record["data"]),
        "data_origin": ctx.data_info.get("data_origin"),
        "seed": record["seed"],
        "device": ctx.device,
        "threads": record["threads"],
        "seconds": seconds,
        "commit": git_commit(),
        "metric": lab.metric,
        "value": value,
        "bar": lab.bar,
        "goal": lab.goal,
        "met": met,
    }
    report = write_report(run_dir, summary, record["config"], metrics, ctx.figures, ctx.sections)
    record.update(
        status="finished",
        seconds=seconds,
        metrics=metrics,
        value=value,
        met=met,
        data_source=summary["data_source"],
        data_info=ctx.data_info,
    )
    _write_run(run_dir, record)
    tracker.log_metrics(0, {f"final_{k}": v for k, v in metrics.items()})
    tracker.set_tags({"bar_met": met, "metric": lab.metric, "value": value, "seconds": round(seconds, 2)})
    for path in [report, run_dir / "run.json", *(p for _, p in ctx.figures)]:
        tracker.log_artifact(path, "figures" if path.parent.name == "figures" else None)
    if (run_dir / "model.safetensors").exists():
        tracker.log_artifact(run_dir / "model.safetensors")
    tracker.finish("FINISHED")
    return RunOutcome(run_id, run_dir, lab, metrics, value, met, report, seconds, record)
