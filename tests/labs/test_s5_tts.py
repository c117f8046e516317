"""Lab s5 end to end on its smoke preset: both models train, the scores and figures are written with the
WAVs linked from the report, and the served model turns text into a WAV."""

from __future__ import annotations

import base64
import io

import pytest
import soundfile as sf

from dlpractice.labs.speech import s5_tts as s5
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s5")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s5", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_every_system_and_writes_figures_and_audio(smoke) -> None:
    m = smoke.metrics
    for system in s5.SYSTEMS:
        assert m[f"{system}_recogniser_cer"] >= 0.0
    assert smoke.value == m["fastspeech_recogniser_cer"]
    assert m["fastspeech_mel_distance_db"] > 0 and m["tacotron_mel_distance_db"] > 0
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"mels", "alignment", "durations", "fastspeech_loss", "tacotron_loss"}
    report = smoke.report.read_text()
    assert "Intelligibility" in report and "audio/fastspeech0.wav" in report
    wave, rate = sf.read(smoke.run_dir / "audio" / "fastspeech0.wav")
    assert rate == 22050 and len(wave) > 0


@pytest.mark.slow
def test_the_predictor_speaks_a_text_and_refuses_one_with_nothing_to_say(smoke) -> None:
    predictor = s5.serve(smoke.run_dir, s5.Config(**s5.PRESETS["smoke"]))
    answers = predictor.predict([{"text": "four, nine"}, {"text": "Quixotic zebras, 42!"}])
    for answer in answers:
        assert answer["sample_rate"] == 22050
        header, payload = answer["audio"].split(",", 1)
        assert header == "data:audio/wav;base64"
        wave, rate = sf.read(io.BytesIO(base64.b64decode(payload)))
        assert rate == 22050 and len(wave) > 0
    predictor.check({"text": "seven"})
    with pytest.raises(ValueError, match="nothing to say"):
        predictor.check({"text": " ?! ..."})
