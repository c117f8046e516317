"""Experiment tracking with MLflow: a SQLite file under DLP_HOME by default, a server via DLP_TRACKING_URI.

Each `dlp run` is one MLflow run in the lab's experiment ("l2-makemore-mlp"). Per-step metrics are
buffered and written in batches (one SQLite transaction per flush, not per step). `mlflow ui
--backend-store-uri sqlite:///$DLP_HOME/mlflow.db` shows everything.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path
from typing import Any

from dlpractice.home import dlp_home

MAX_BATCH = 1000  # MLflow's limit on metrics per log_batch call


def tracking_uri() -> str:
    return os.environ.get("DLP_TRACKING_URI") or f"sqlite:///{dlp_home() / 'mlflow.db'}"


def uses_local_store() -> bool:
    return "DLP_TRACKING_URI" not in os.environ


def client():
    """An MlflowClient on our store, with MLflow's start-up chatter silenced."""
    for name in ("alembic", "mlflow.store.db.utils", "mlflow.store.sqlalchemy_store"):
        logging.getLogger(name).setLevel(logging.WARNING)
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=tracking_uri())


def experiment_id(mlflow_client, name: str) -> str:
    found = mlflow_client.get_experiment_by_name(name)
    if found:
        return found.experiment_id
    location = (dlp_home() / "mlartifacts" / name).as_uri() if uses_local_store() else None
    return mlflow_client.create_experiment(name, artifact_location=location)


class Tracker:
    """One tracked run: params and tags at the start, buffered metrics, artifacts at the end."""

    def __init__(self, mlflow_client, run_id: str):
        self.client = mlflow_client
        self.run_id = run_id
        self._pending: list[Any] = []

    @classmethod
    def start(cls, experiment: str, run_name: str, tags: dict[str, str]) -> Tracker:
        mlflow_client = client()
        run = mlflow_client.create_run(experiment_id(mlflow_client, experiment), run_name=run_name, tags=tags)
        return cls(mlflow_client, run.info.run_id)

    @classmethod
    def reopen(cls, run_id: str) -> Tracker:
        mlflow_client = client()
        mlflow_client.update_run(run_id, status="RUNNING")
        return cls(mlflow_client, run_id)

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
    mlflow_client = client()
    experiments = [e.experiment_id for e in mlflow_client.search_experiments()]
    if not experiments:
        return []
    query = f"tags.lab = '{lab_id}'" if lab_id else ""
    return mlflow_client.search_runs(
        experiments, filter_string=query, order_by=["attributes.start_time DESC"], max_results=limit
    )
