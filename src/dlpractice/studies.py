"""Optuna studies in a database: a SQLite file that several processes share, or any SQLAlchemy URL.

Lab f8 keeps its studies in its run directory; `dlp sweep` keeps them in $DLP_HOME/sweeps.db or in the
database `--storage` names (PostgreSQL for workers on several machines). Both open them here.
"""

from __future__ import annotations

import warnings
from typing import Any

from dlpractice.errors import DlpError

RETRIES = 3  # a trial whose worker died is run again at most this many times


def storage_url_shown(url: str) -> str:
    """The URL with its password hidden, for messages and reports."""
    import sqlalchemy

    try:
        return sqlalchemy.engine.make_url(url).render_as_string(hide_password=True)
    except sqlalchemy.exc.ArgumentError:
        return url


def with_driver(url: str) -> str:
    """postgresql:// means psycopg (3), the driver the postgres extra installs, whatever SQLAlchemy's
    default (psycopg2 before SQLAlchemy 2.1)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql+psycopg://{rest}" if sep and scheme in ("postgresql", "postgres") else url


def open_storage(url: str, heartbeat: int | None = None) -> Any:
    """An Optuna RDBStorage on `url`; with `heartbeat`, each running trial beats every `heartbeat` seconds.

    With a heartbeat, a trial that stopped beating (its worker was killed) is marked failed by the next
    worker that looks, and queued again with the same parameters (RetryFailedTrialCallback).

    SQLite: Optuna takes a queued trial by reading it, then marking it RUNNING; Python's sqlite3 runs the
    read outside the write transaction, so two workers could take the same trial (in f8, 4 processes on
    a queue of 120 ran trials twice and crashed). BEGIN IMMEDIATE makes read-and-mark one locked step.
    """
    import optuna
    import sqlalchemy

    shown = storage_url_shown(url)  # as the user wrote it, password hidden
    sqlite = url.startswith("sqlite")
    engine = {"connect_args": {"timeout": 60, "isolation_level": None}} if sqlite else {"pool_pre_ping": True}
    try:
        with warnings.catch_warnings():  # Optuna calls the heartbeat "experimental" (since 2.8)
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            beat = _heartbeat(heartbeat)
            storage = optuna.storages.RDBStorage(with_driver(url), engine_kwargs=engine, **beat)
    except ImportError as err:  # Optuna wraps the missing driver (psycopg for postgresql://)
        missing = err.__cause__ if isinstance(err.__cause__, ModuleNotFoundError) else err
        if isinstance(missing, ModuleNotFoundError):
            raise DlpError(
                f"the storage {shown} needs the {missing.name} module: pip install 'dlpractice[postgres]'"
            ) from None
        raise DlpError(
            f"cannot open the study storage {shown}: no driver for it "
            "(use sqlite:///FILE or postgresql://USER@HOST:PORT/DB)"
        ) from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DlpError(f"cannot open the study storage {shown}: {first}") from None
    if sqlite:
        sqlalchemy.event.listen(storage.engine, "begin", lambda conn: conn.exec_driver_sql("BEGIN IMMEDIATE"))
    return storage


def _heartbeat(seconds: int | None) -> dict[str, Any]:
    """RDBStorage's heartbeat settings: beat every `seconds`, retry a trial that stopped beating."""
    import optuna

    if not seconds:
        return {}
    # generous grace: a live trial on a loaded machine declared dead would run twice
    beat: dict[str, Any] = {"heartbeat_interval": seconds, "grace_period": max(10, 3 * seconds)}
    if hasattr(optuna.storages, "RetryHeartbeatStaleTrialCallback"):  # Optuna >= 4.9
        beat["heartbeat_stale_trial_callback"] = optuna.storages.RetryHeartbeatStaleTrialCallback(RETRIES)
    else:
        beat["failed_trial_callback"] = optuna.storages.RetryFailedTrialCallback(max_retry=RETRIES)
    return beat
