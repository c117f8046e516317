"""Where dlp keeps its state: runs, the MLflow database, the download cache. `DLP_HOME` moves it all."""

from __future__ import annotations

import os
from pathlib import Path

from dlpractice.errors import DlpError


def dlp_home() -> Path:
    """`$DLP_HOME`, else `~/.dlpractice`: the same runs whatever directory `dlp` is started from."""
    return Path(os.environ.get("DLP_HOME", "~/.dlpractice")).expanduser().resolve()


def runs_dir() -> Path:
    return dlp_home() / "runs"


def cache_dir() -> Path:
    return dlp_home() / "cache"


def ensure_writable(path: Path) -> Path:
    """Create `path` and prove we can write there, or fail with a one-line error before any work starts."""
    probe = path / ".write-test"
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise DlpError(
            f"cannot write to {path} ({err.strerror or err}); set DLP_HOME to a writable directory"
        ) from None
    return path
