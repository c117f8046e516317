"""Experiment tracking with MLflow: a SQLite file under DLP_HOME by default, a server via DLP_TRACKING_URI.

Each `dlp run` is one MLflow run in the lab's experiment ("l2-makemore-mlp"). Per-step metrics are
buffered and written in batches (one SQLite transaction per flush, not per step). `mlflow ui
--backend-store-uri sqlite:///$DLP_HOME/mlflow.db` shows everything.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dlpractice.errors import DlpError
from dlpractice.home import dlp_home

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call


def tracking_uri() -> str:
    return os.environ.get("DLP_TRACKING_URI") or f"sqlite:///{dlp_home() / 'mlflow.db'}"


def uses_local_store() -> bool:
    return "DLP_TRACKING_URI" not in os.environ


def tracker_check(timeout: float = 3.0) -> None:
    """A tracking server that does not answer is one line now, not a silent hang of minutes later."""
    uri = tracking_uri()
    if not uri.startswith(("http://", "https://")):
        return
    try:
        urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=timeout).close()
    except urllib.error.HTTPError:
        return  # it answered: a server is there
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise DlpError(
            f"the tracking server {uri} does not answer ({reason}); start it, or unset DLP_TRACKING_URI "
            "to track in the local SQLite file"
        ) from None


@contextmanager
def store_lock() -> Iterator[None]:
    """One process at a time creates the local database and experiments.

    Two runs starting at once on a fresh DLP_HOME otherwise race: both migrate the new database, or both
    create the lab's experiment and one fails on its unique name."""
    if not uses_local_store():
        yield
        return
    try:
        dlp_home().mkdir(parents=True, exist_ok=True)
        handle = open(dlp_home() / ".mlflow.lock", "a")  # noqa: SIM115 (held for the block)
    except OSError:  # a read-only home: nothing can be created there anyway
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def client():
    """An MlflowClient on our store, with MLflow's start-up chatter silenced."""
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.store.sqlalchemy_store"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def experiment_id(mlflow_client, name: str) -> str:
    from mlflow.exceptions import MlflowException

    found = mlflow_client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    location = (dlp_home() / "mlartifacts" / name).as_uri() if uses_local_store() else None
    try:
        return mlflow_client.create_experiment(name, artifact_location=location)
    except MlflowException:  # a process on another machine created it first (a shared server)
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return found.experiment_id


class Tracker:
    """One tracked run: params and tags at the start, buffered metrics, artifacts at the end."""

    def __init__(self, mlflow_client, run_id: str):
        self.client = mlflow_client
        self.run_id = run_id
        self._pending: list[Any] = []

    @classmethod
    def start(cls, experiment: str, run_name: str, tags: dict[str, str]) -> Tracker:
        with store_lock():
            mlflow_client = client()
            experiment_ref = experiment_id(mlflow_client, experiment)
        run = mlflow_client.create_run(experiment_ref, run_name=run_name, tags=tags)
        return cls(mlflow_client, run.info.run_id)

    @classmethod
    def reopen(cls, run_id: str) -> Tracker:
        with store_lock():
            mlflow_client = client()
        mlflow_client.update_run(run_id, status="RUNNING")
        return cls(mlflow_client, run_id)

    def child(self, name: str, run_id: str | None = None) -> Tracker:
        """A nested run under this one (MLflow shows it under its parent), or the one `run_id` names."""
        if run_id is not None:
            self.client.update_run(run_id, status="RUNNING")
            return Tracker(self.client, run_id)
        parent = self.client.get_run(self.run_id)
        tags = {
            "mlflow.parentRunId": self.run_id,
            "dlp_child": name,
            **{k: v for k, v in parent.data.tags.items() if k in ("preset", "seed", "dlp_run_id", "origin")},
        }
        run = self.client.create_run(
            parent.info.experiment_id, run_name=f"{parent.info.run_name}/{name}", tags=tags
        )
        return Tracker(self.client, run.info.run_id)

    def log_params(self, params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        items = [Param(k, str(v)) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: dict[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, str(value))

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self._pending.extend(Metric(k, float(v), now, step) for k, v in metrics.items())
        if len(self._pending) >= MAX_BATCH:
            self.flush()

    def flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending[:MAX_BATCH], self._pending[MAX_BATCH:]
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self.client.log_artifact(self.run_id, str(path), folder)

    def finish(self, status: str = "FINISHED") -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)


def tracked_runs(lab_id: str | None = None, limit: int = 200) -> list[Any]:
    """Tracked runs, newest first (all statuses), optionally of one lab. [] when nothing is tracked yet."""
    if uses_local_store() and not (dlp_home() / "mlflow.db").exists():
        return []
    with store_lock():
        mlflow_client = client()
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiments:
        return []
    query = f"tags.lab = '{lab_id}'" if lab_id else ""
    found = mlflow_client.search_runs(
        experiments, filter_string=query, order_by=["attributes.start_time DESC"], max_results=limit
    )
    return [run for run in found if "mlflow.parentRunId" not in run.data.tags]  # child runs show in MLflow
