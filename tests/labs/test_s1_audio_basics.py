"""Lab s1: the VAD pieces (energy, learned frame classifier, silero on the frame grid) and the smoke run."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from dlpractice.data import speech
from dlpractice.data.audio import resample
from dlpractice.errors import DlpError
from dlpractice.labs.speech import s1_audio_basics as s1
from dlpractice.models import vad
from dlpractice.runner import RunSpec, start_run


def tone_bursts(seconds: float = 3.0, bursts=((0.5, 1.0), (1.8, 2.4)), noise: float = 0.01):
    """(wave at 16 kHz, true frame labels): tones in quiet noise, speech-like only in its on/off pattern."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * vad.SR)) / vad.SR
    wave = noise * rng.standard_normal(len(t))
    truth = np.zeros(len(t), dtype=bool)
    for start, end in bursts:
        on = (t >= start) & (t < end)
        wave[on] += 0.3 * np.sin(2 * np.pi * 220 * t[on])
        truth |= on
    frames = np.minimum(np.arange(len(t) // vad.HOP + 1) * vad.HOP, len(t) - 1)
    return wave.astype(np.float32), truth[frames].astype(np.int64)


def test_energy_vad_finds_loud_frames_and_tuning_picks_a_working_margin() -> None:
    wave, truth = tone_bursts()
    energy = vad.frame_energy_db(torch.from_numpy(wave)).numpy()
    assert energy.shape == truth.shape
    assert vad.frame_f1(truth, vad.energy_vad(energy, 10.0)) > 0.97
    assert vad.frame_f1(truth, vad.energy_vad(energy, 60.0)) == 0.0  # above every frame: nothing found
    margin, f1 = vad.tune_energy_margin([energy], [truth])
    assert f1 > 0.97 and 1.0 <= margin < 30.0


def test_frame_f1_matches_its_definition() -> None:
    truth = np.array([1, 1, 0, 0, 1, 0])
    found = np.array([1, 0, 0, 1, 1, 1])  # TP 2, FP 2, FN 1
    assert vad.frame_f1(truth, found) == pytest.approx(2 * 2 / (2 * 2 + 2 + 1))


def test_frame_vad_keeps_one_logit_per_frame_and_ignores_padding() -> None:
    torch.manual_seed(0)
    model = vad.FrameVAD(n_mels=8, channels=8, layers=3)
    x = torch.randn(2, 8, 50)
    targets = torch.randint(0, 2, (2, 50))
    logits, loss = model(x, targets)
    assert logits.shape == (2, 50) and loss.ndim == 0
    padded = targets.clone()
    padded[:, 40:] = -1
    _, part = model(x, padded)
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, :40], targets[:, :40].float())
    assert torch.allclose(part, expected)
    model.eval()  # receptive field 1 + 4 * (1 + 2 + 4) = 29: frame 0 must not see frame 40
    moved = x.clone()
    moved[:, :, 40:] += 5.0
    assert torch.allclose(model(x)[0][:, :10], model(moved)[0][:, :10])


def test_silero_frames_follow_its_chunks() -> None:
    probs = np.array([0.1, 0.9, 0.9, 0.2])  # four 32 ms chunks
    frames = vad.silero_frames(probs, 13)
    # frame t is centred on sample t * 160, inside chunk t * 160 // 512 (frames 4-9 in chunks 1-2)
    assert frames.tolist() == [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0, 0, 0]


def test_silero_segments_are_padded_and_drop_short_blips() -> None:
    """silero keeps a 30-chunk (0.96 s) run, padded by 30 ms each side, and drops a 64 ms blip."""
    probs = np.array([0.1] * 10 + [0.9] * 30 + [0.1] * 20 + [0.9] * 2 + [0.1] * 10)
    frames = vad.silero_segment_frames(
        probs, len(probs) * vad.SILERO_CHUNK, len(probs) * vad.SILERO_CHUNK // vad.HOP
    )
    speech = np.flatnonzero(frames)
    # samples 10 * 512 - 480 = 4640 to 40 * 512 + 480 = 20960: frames centred on 4640 (29) to 20800 (130)
    assert speech.tolist() == list(range(29, 131))
    assert not frames[(60 * 512) // 160 :].any()


def test_silero_model_hears_the_tones_less_than_speech() -> None:
    """The packaged model runs offline; synthetic speech scores higher than pure tones."""
    model = vad.load_silero()
    utt = speech.synthesize("seven ships sailed home yesterday")
    spoken = vad.silero_probabilities(model, resample(utt.audio, utt.sr, vad.SR))
    tones, _ = tone_bursts()
    assert spoken.max() > 0.9 and spoken.max() > vad.silero_probabilities(model, tones).max()


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s1")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s1", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_writes_metrics_figures_audio_and_report(smoke) -> None:
    m = smoke.metrics
    assert smoke.value == m["learned_f1_10db"] and all(np.isfinite(v) for v in m.values())
    for method in ("energy", "learned", "silero", "silero_segments"):
        for snr in ("clean", "20db", "10db", "0db"):
            assert 0.0 <= m[f"{method}_f1_{snr}"] <= 1.0
    assert max(v for k, v in m.items() if k.startswith("parity_")) < 1e-5  # the features equal librosa's
    assert m["silero_f1_clean"] > 0.9  # the truth labels are what a good VAD finds on clean speech
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"waveform", "spectrograms", "mel_filterbank", "specaugment", "noise", "vad_scores"}
    report = smoke.report.read_text()
    wavs = sorted((smoke.run_dir / "audio").glob("*.wav"))
    assert len(wavs) >= 6 and all(f"audio/{w.name}" in report for w in wavs)
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["data_info"]["data_source"] == "embedded"


def test_real_data_is_refused_with_one_line() -> None:
    """s1's speech is synthesised: asking for a real dataset fails before any work."""
    with pytest.raises(DlpError, match="no real dataset"):
        s1.run(s1.Config(), SimpleNamespace(data="real"))
