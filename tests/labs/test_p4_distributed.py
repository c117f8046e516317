"""Lab p4 on its smoke preset (two CPU processes on gloo): every engine, the hand all-reduce, gradient
accumulation and both pipelines end on the one-process run's weights; the lab's launcher ends its
processes on Ctrl-C and refuses bad input in one line."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dlpractice.config import build_config
from dlpractice.errors import DlpError
from dlpractice.labs.production import p4_distributed as p4
from dlpractice.runner import RunSpec, start_run

ROUNDING = 1e-5  # float32 sums in another order: the weights agree to about 1e-7


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p4")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("p4", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_every_engine_ends_on_the_one_process_weights(smoke) -> None:
    m = smoke.metrics
    assert m["ddp_max_weight_diff"] == smoke.value
    for name in (*p4.Config().engines, *p4.PIPELINES, "accumulation"):
        assert m[f"{name}_max_weight_diff"] < ROUNDING, name
    for name in (*p4.Config().engines, *p4.PIPELINES):
        assert m[f"{name}_final_loss"] == pytest.approx(m["single_final_loss"], abs=ROUNDING), name
        assert m[f"{name}_ms_per_step"] > 0
    # our all-reduce does what DDP's does: the same sums, so (nearly always) the very same bits
    assert m["hand_vs_ddp_max_weight_diff"] < 1e-6
    assert m["ddp_speedup"] == pytest.approx(m["ddp_samples_per_s"] / m["single_samples_per_s"])


@pytest.mark.slow
def test_pipeline_and_allreduce_figures_and_cleanup(smoke) -> None:
    m = smoke.metrics
    for name in p4.PIPELINES:
        assert 0 < m[f"{name}_idle_fraction"] < 1
    assert m["allreduce_ms_1000"] > 0 and m["allreduce_ms_100000"] > 0
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} == {"loss", "pipeline", "allreduce"}
    assert "| hf_trainer |" in smoke.report.read_text()
    work = smoke.run_dir / "processes"
    assert (work / "results.json").is_file() and not list(work.glob("*.safetensors"))


def test_bad_settings_are_one_line() -> None:
    with pytest.raises(DlpError, match="processes"):
        build_config(p4.Config, p4.PRESETS, "smoke", ["processes=0"])
    with pytest.raises(DlpError, match="divisible by processes"):
        build_config(p4.Config, p4.PRESETS, "smoke", ["processes=3"])
    with pytest.raises(DlpError, match="include ddp"):
        build_config(p4.Config, p4.PRESETS, "smoke", ["engines=(lightning,)"])


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(DlpError, match=f"port {port} is in use"):
            p4.launch(["-m", "dlpractice.recipes.parallel_worker", "job.json"], 2, port, tmp_path / "log.txt")


def gone(pid: int) -> bool:
    """Ended: no such process, or a zombie nobody has reaped yet."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


@pytest.mark.slow
def test_ctrl_c_ends_every_process(tmp_path: Path) -> None:
    worker = tmp_path / "sleeper.py"
    worker.write_text(
        "import os, sys, time\n"
        "open(os.path.join(sys.argv[1], os.environ['RANK']), 'w').write(str(os.getpid()))\n"
        "time.sleep(300)\n"
    )
    # Ctrl-C as a terminal delivers it, even when this test runs in the background (whose children
    # inherit SIGINT ignored)
    lab = (
        "import signal\nfrom pathlib import Path\n"
        "from dlpractice.labs.production.p4_distributed import launch\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        f"launch([{str(worker)!r}, {str(tmp_path)!r}], 2, 0, Path({str(tmp_path / 'log.txt')!r}))\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", lab], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not all((tmp_path / rank).is_file() for rank in "01") and time.monotonic() < deadline:
        time.sleep(0.5)
    pids = [int((tmp_path / rank).read_text()) for rank in "01"]
    parent.send_signal(signal.SIGINT)
    try:
        assert parent.wait(timeout=60) != 0
    finally:
        parent.kill()
    assert "KeyboardInterrupt" in parent.stderr.read()
    time.sleep(1)
    alive = [pid for pid in pids if not gone(pid)]
    for pid in alive:  # leave nothing running, then fail
        os.kill(pid, signal.SIGKILL)
    assert not alive, "a worker outlived the interrupted launcher"


@pytest.mark.slow
def test_a_failing_process_is_one_line_with_its_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import a_module_nobody_has\n")
    with pytest.raises(DlpError, match="ModuleNotFoundError: No module named 'a_module_nobody_has'"):
        p4.launch([str(broken)], 2, 0, tmp_path / "log.txt")
