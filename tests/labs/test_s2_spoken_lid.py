"""Lab s2 end to end on its smoke preset: the figures, audio and failure cases are written, and the served
model takes audio at any sample rate and answers with a language and its probabilities."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpractice.data.audio import load_audio
from dlpractice.labs.speech import s2_spoken_lid as s2
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s2")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s2", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_writes_its_figures_audio_and_report(smoke) -> None:
    m = smoke.metrics
    assert 0.0 <= m["test_accuracy"] <= 1.0 and 0.0 <= m["test_noisy_accuracy"] <= 1.0
    assert smoke.value == m["test_accuracy"]
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"loss", "confusion", "tsne"}
    report = smoke.report.read_text()
    assert "Test accuracy by voice" in report and "audio/test0_en.wav" in report
    wave, sr = load_audio(smoke.run_dir / "audio" / "test0_en.wav")
    assert sr == 16000 and len(wave) > 8000  # a sentence, not a click


@pytest.mark.slow
def test_failures_are_sentences_with_their_voice(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert all(f["label"] != f["prediction"] for f in failures)
    assert all(f["input"].endswith("]") and "+" in f["input"] for f in failures)  # "text [fr+f3/p40/r150]"
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)


@pytest.mark.slow
def test_the_predictor_takes_audio_at_any_rate(smoke) -> None:
    cfg = s2.Config(**s2.PRESETS["smoke"])
    predictor = s2.serve(smoke.run_dir, cfg)
    wave, sr = load_audio(smoke.run_dir / "audio" / "test1_de.wav")
    items = [
        {"audio": wave, "sample_rate": sr},
        {"audio": s2.lid.resample(wave, sr, 44100), "sample_rate": 44100},
        {"audio": np.zeros(800, np.float32), "sample_rate": 8000},  # 0.1 s: shorter than the TDNN's context
    ]
    answers = predictor.predict(items)
    classes = list(cfg.languages)
    for answer in answers:
        assert answer["label"] in classes and sum(answer["probabilities"].values()) == pytest.approx(1.0)
    assert answers[0]["label"] == answers[1]["label"]  # the same clip resampled is the same language
    p16, p44 = (np.array(list(a["probabilities"].values())) for a in answers[:2])
    assert np.abs(p16 - p44).max() < 0.1
