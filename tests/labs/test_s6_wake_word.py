"""Lab s6 end to end on its smoke preset: the DET and stream figures are written with the error rates,
and the served model takes audio at any sample rate and answers keyword or other with probabilities."""

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
def test_the_predictor_takes_audio_at_any_rate(smoke) -> None:
    predictor = s6.serve(smoke.run_dir, s6.Config(**s6.PRESETS["smoke"]))
    clip = ww.personal_clips(1, seed=0).audio[0]  # (16000,) a keyword
    long = np.concatenate([np.zeros(8000, np.float32), clip, np.zeros(12000, np.float32)])
    items = [
        {"audio": clip, "sample_rate": ww.SAMPLE_RATE},
        {"audio": ww.resample(clip, ww.SAMPLE_RATE, 44100), "sample_rate": 44100},
        {"audio": long, "sample_rate": ww.SAMPLE_RATE},  # 2.25 s: windows slide over it
        {"audio": np.zeros(800, np.float32), "sample_rate": 8000},  # 0.1 s: padded to one window
    ]
    answers = predictor.predict(items)
    for answer in answers:
        assert answer["label"] in ww.CLASSES
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0)
    p16, p44 = (a["probabilities"]["keyword"] for a in answers[:2])
    assert abs(p16 - p44) < 0.1  # the same clip resampled
    assert answers[2]["probabilities"]["keyword"] >= p16 - 0.05  # the best window holds the whole keyword
