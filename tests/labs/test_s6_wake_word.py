"""Lab s6 end to end on its smoke preset: the DET and stream figures are written with the error rates,
and the served model takes audio at any sample rate and answers where it hears the keyword."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.data import wakeword as ww
from dlpractice.labs.speech import s6_wake_word as s6
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s6")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s6", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_writes_its_figures_and_error_rates(smoke) -> None:
    m = smoke.metrics
    for name in ("frr_at_1fa_per_hour", "personal_frr_before", "personal_frr_after", "test_clip_accuracy"):
        assert 0.0 <= m[name] <= 1.0
    assert smoke.value == m["frr_at_1fa_per_hour"]
    assert m["negative_hours"] == pytest.approx(1 / 60, rel=0.2)  # the smoke preset's one minute
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"loss", "det", "stream"}
    assert "Streaming detection" in smoke.report.read_text()


@pytest.mark.slow
def test_the_predictor_finds_the_keyword_in_audio_at_any_rate(smoke, monkeypatch) -> None:
    cfg = s6.Config(**s6.PRESETS["smoke"])
    clip = ww.personal_clips(1, seed=0).audio[0]  # (16000,) a keyword
    long = np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(12000, np.float32)])  # 2.25 s
    items = [
        {"audio": long, "sample_rate": ww.SAMPLE_RATE},
        {"audio": ww.resample(long, ww.SAMPLE_RATE, 44100), "sample_rate": 44100},
        {"audio": np.zeros(800, np.float32), "sample_rate": 8000},  # 0.1 s: padded to one window
    ]
    real = s6.read_run_json

    def run_json_with(threshold: float):
        def read(run_dir, name):
            values = real(run_dir, name)
            values["metrics"]["threshold"] = threshold
            return values

        return read

    monkeypatch.setattr(s6, "read_run_json", run_json_with(0.0))  # every window fires but the refractory
    every = s6.serve(smoke.run_dir, cfg).predict(items)
    # 2.25 s: windows of 101 frames (1.01 s) every 100 ms; refractory 10 windows: the first and the eleventh
    ends = [1.01, 2.01]
    for answer in every[:2]:
        assert [s["speaker"] for s in answer["segments"]] == ["marvin", "marvin"]
        assert [s["end"] for s in answer["segments"]] == pytest.approx(ends)
        assert [s["end"] - s["start"] for s in answer["segments"]] == pytest.approx([1.0, 1.0])
    assert [s["end"] for s in every[2]["segments"]] == pytest.approx([1.01])  # one window
    monkeypatch.setattr(s6, "read_run_json", run_json_with(1.01))  # above any posterior: nothing fires
    assert s6.serve(smoke.run_dir, cfg).predict(items) == [{"segments": []}] * 3
