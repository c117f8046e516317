"""Finished runs to serve, trained once per test session in a DLP_HOME of their own."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="dlp serve needs the serve extra (fastapi)")


def finished_run(tmp_path_factory: pytest.TempPathFactory, lab: str, *overrides: str) -> Path:
    from dlpractice.runner import RunSpec, start_run

    with pytest.MonkeyPatch.context() as env:
        env.setenv("DLP_HOME", str(tmp_path_factory.mktemp(f"home-{lab}")))
        env.setenv("DLP_THREADS", "1")
        env.setenv("DLP_OFFLINE", "1")
        env.delenv("DLP_TRACKING_URI", raising=False)
        outcome = start_run(RunSpec(lab, "smoke", overrides, data="embedded"))
    assert os.environ.get("DLP_HOME") != str(outcome.run_dir.parents[1])
    return outcome.run_dir


@pytest.fixture(scope="session")
def l2_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory, "l2")


@pytest.fixture(scope="session")
def n6_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """n6's smoke preset with two models trained from scratch (a few seconds): the cnn is served."""
    return finished_run(tmp_path_factory, "n6", "models=bag,cnn")


@contextmanager
def served_on_loopback(app, start_within: float = 30) -> Iterator[str]:
    """`app` behind a real uvicorn server on a free loopback port while the block runs; yields its URL."""
    uvicorn = pytest.importorskip("uvicorn", reason="a real server needs uvicorn (the serve extra)")
    from dlpractice.serve.app import bind

    sock = bind("127.0.0.1", 0)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + start_within
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.started, f"the server did not start within {start_within:.0f} s"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="session")
def on_loopback() -> Callable[..., AbstractContextManager[str]]:
    return served_on_loopback
