"""A run on several processes (`torchrun`, `accelerate launch`): one run, not one per process.

fit() does the training side (DDP through Accelerate, see train.py). This is the run's side: only the main
process creates the run directory, run.json and the MLflow run; the others learn its run id from it, track
nothing, and write what the lab writes (figures, report) into a scratch directory removed when they exit.
Resuming reads the checkpoint on every process, so the runs directory must be one all of them can read.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

from dlpractice.errors import DlpError
from dlpractice.tracking import Tracker


def process_count() -> int:
    """Processes in this run, from the launcher's environment (readable before any process group exists)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def process_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def is_main_process() -> bool:
    return process_rank() == 0


class _HasRunId(Protocol):
    run_id: str


Opened = TypeVar("Opened", bound=_HasRunId)


def follow_main(open_run: Callable[[], Opened], follow: Callable[[str], Opened], device: str) -> Opened:
    """The main process opens the run and sends its id; every other process follows that run.

    If opening fails on the main process, the others are told so (instead of waiting for an id forever).
    """
    from accelerate import PartialState
    from accelerate.utils import broadcast_object_list

    PartialState(cpu=device == "cpu")  # joins the process group that fit()'s Accelerator uses
    if is_main_process():
        message: list[str | None] = [None]
        try:
            opened = open_run()
            message = [opened.run_id]
        finally:
            broadcast_object_list(message, from_process=0)
        return opened
    message = broadcast_object_list([None], from_process=0)
    if message[0] is None:
        raise DlpError("the main process could not open the run (its error says why)")
    return follow(message[0])


def scratch_dir(run_id: str) -> Path:
    """Where a process other than the main one writes; removed when the process exits."""
    path = Path(tempfile.mkdtemp(prefix=f"dlp-{run_id}-rank{process_rank()}-"))
    atexit.register(shutil.rmtree, path, ignore_errors=True)
    return path


class NullTracker(Tracker):
    """The tracker of a process other than the main one: it has the main run's id and records nothing."""

    def __init__(self, run_id: str):
        super().__init__(None, run_id)

    def child(self, name: str, run_id: str | None = None) -> Tracker:
        return NullTracker(run_id or f"{self.run_id}/{name}")

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def set_tags(self, tags: dict[str, Any]) -> None:
        pass

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        pass

    def flush(self) -> None:
        pass

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        pass

    def finish(self, status: str = "FINISHED") -> None:
        pass
