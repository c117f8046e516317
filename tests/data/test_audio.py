"""data/audio.py against librosa on the same waves: STFT, mel filterbank, mel, dB, MFCC, deltas (≤ 1e-5)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import soundfile as sf
import torch

from dlpractice.data import audio
from dlpractice.errors import DlpError


def chirp_in_noise(n: int = 8000, seed: int = 0, dtype=np.float64) -> np.ndarray:
    """A rising tone plus a little white noise: energy in many bands, some near silence."""
    rng = np.random.default_rng(seed)
    t = np.arange(n) / 16000
    return (0.5 * np.sin(2 * np.pi * (200 + 3000 * t) * t) + 0.05 * rng.standard_normal(n)).astype(dtype)


def max_relative_error(ours: np.ndarray, theirs: np.ndarray) -> float:
    return float(np.abs(ours - theirs).max() / np.abs(theirs).max())


@pytest.mark.parametrize("n_fft, hop", [(512, 160), (1024, 256), (400, 100)])
def test_stft_matches_librosa(n_fft, hop) -> None:
    y = chirp_in_noise()
    ours = audio.stft(torch.from_numpy(y), n_fft, hop).numpy()
    theirs = librosa.stft(y, n_fft=n_fft, hop_length=hop)
    assert ours.shape == theirs.shape
    assert max_relative_error(ours, theirs) < 1e-5


@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax", [(16000, 512, 40, 0, None), (22050, 1024, 80, 50, 8000)]
)
def test_mel_filterbank_matches_librosa(sr, n_fft, n_mels, fmin, fmax) -> None:
    ours = audio.mel_filterbank(sr, n_fft, n_mels, fmin, fmax).numpy()
    theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    assert ours.shape == (n_mels, n_fft // 2 + 1)
    np.testing.assert_allclose(ours, theirs, atol=1e-5 * theirs.max(), rtol=0)


def test_mel_scale_round_trips_and_matches_librosa() -> None:
    hz = np.array([0.0, 100.0, 999.0, 1000.0, 4000.0, 11025.0])
    np.testing.assert_allclose(audio.hz_to_mel(hz), librosa.hz_to_mel(hz), rtol=1e-9)
    np.testing.assert_allclose(audio.mel_to_hz(audio.hz_to_mel(hz)), hz, rtol=1e-9, atol=1e-9)


def test_mel_log_mel_and_mfcc_match_librosa_in_float64() -> None:
    y = chirp_in_noise()
    kwargs = dict(sr=16000, n_fft=512, hop_length=160, n_mels=40)
    mel = librosa.feature.melspectrogram(y=y, **kwargs)
    ours = audio.mel_spectrogram(torch.from_numpy(y), 16000, 40).numpy()
    assert max_relative_error(ours, mel) < 1e-5
    db = audio.log_mel(torch.from_numpy(y), 16000, 40).numpy()
    np.testing.assert_allclose(db, librosa.power_to_db(mel), atol=1e-5, rtol=0)
    coeffs = audio.mfcc(torch.from_numpy(y), 16000, n_mfcc=13, n_mels=40).numpy()
    np.testing.assert_allclose(coeffs, librosa.feature.mfcc(y=y, n_mfcc=13, **kwargs), atol=1e-5, rtol=0)


def test_float32_batch_matches_librosa_example_by_example() -> None:
    """A (B, T) float32 batch: each row as librosa computes it alone (top_db clips per example)."""
    batch = np.stack([chirp_in_noise(seed=s, dtype=np.float32) * g for s, g in ((0, 1.0), (1, 0.01))])
    db = audio.log_mel(torch.from_numpy(batch), 16000, 40).numpy()  # (2, 40, frames)
    for row, ours in zip(batch, db, strict=True):
        mel = librosa.feature.melspectrogram(y=row, sr=16000, n_fft=512, hop_length=160, n_mels=40)
        theirs = librosa.power_to_db(mel)
        assert np.abs(ours - theirs).max() / np.abs(theirs).max() < 1e-5


@pytest.mark.parametrize("order", [1, 2])
@pytest.mark.parametrize("width", [3, 5, 9])
def test_deltas_match_librosa(order, width) -> None:
    if order >= width:
        pytest.skip("librosa needs order < width")
    features = np.random.default_rng(width).standard_normal((2, 13, 30))
    ours = audio.deltas(torch.from_numpy(features), width, order).numpy()
    np.testing.assert_allclose(ours, librosa.feature.delta(features, width=width, order=order), atol=1e-5)


def test_deltas_of_a_ramp_are_its_slope() -> None:
    ramp = torch.arange(20, dtype=torch.float64).repeat(3, 1) * 0.5  # (3, 20), slope 0.5 per frame
    assert torch.allclose(audio.deltas(ramp, 5, 1), torch.full((3, 20), 0.5, dtype=torch.float64))
    assert torch.allclose(audio.deltas(ramp, 5, 2), torch.zeros(3, 20, dtype=torch.float64), atol=1e-12)


def test_deltas_reject_too_few_frames() -> None:
    with pytest.raises(DlpError, match="at least width"):
        audio.deltas(torch.zeros(13, 4), 9)


def test_add_noise_reaches_the_requested_snr() -> None:
    rng = np.random.default_rng(0)
    signal, noise = chirp_in_noise(dtype=np.float32), rng.standard_normal(3000).astype(np.float32)
    for snr in (20.0, 0.0, -5.0):
        mixed = audio.add_noise(signal, noise, snr)
        assert mixed.shape == signal.shape and mixed.dtype == np.float32
        assert audio.snr_db(signal, mixed - signal) == pytest.approx(snr, abs=1e-3)
    with pytest.raises(DlpError, match="silent"):
        audio.add_noise(signal, np.zeros(10, np.float32), 10.0)


def test_spec_augment_masks_bands_and_keeps_the_rest() -> None:
    spec = torch.randn(4, 40, 100)
    out = audio.spec_augment(spec, torch.Generator().manual_seed(0), 2, 8, 2, 20, fill=0.0)
    assert out.shape == spec.shape and not torch.equal(out, spec)
    changed = out != spec
    assert torch.equal(out[changed], torch.zeros(int(changed.sum())))
    # every masked cell lies in a fully masked channel or a fully masked frame of its example
    for example in range(4):
        zero = out[example] == 0
        rows, cols = zero.all(1), zero.all(0)
        assert (zero & ~rows[:, None] & ~cols[None, :]).sum() == 0
        assert rows.sum() <= 16 and cols.sum() <= 40
    again = audio.spec_augment(spec, torch.Generator().manual_seed(0), 2, 8, 2, 20, fill=0.0)
    assert torch.equal(out, again), "the same generator seed should give the same masks"


def test_load_and_save_round_trip_with_resampling(tmp_path) -> None:
    wave = chirp_in_noise(dtype=np.float32) * 0.5
    path = audio.save_audio(tmp_path / "a.wav", wave, 16000)
    loaded, sr = audio.load_audio(path)
    assert sr == 16000 and loaded.dtype == np.float32 and loaded.shape == wave.shape
    assert np.abs(loaded - wave).max() < 1e-4  # 16-bit PCM
    stereo = np.stack([wave, 0.5 * wave], axis=1)  # (T, 2): loads as the mean of the channels
    sf.write(tmp_path / "s.flac", stereo, 16000)
    down, sr8 = audio.load_audio(tmp_path / "s.flac", sr=8000)
    assert sr8 == 8000 and down.ndim == 1 and len(down) == len(wave) // 2
    expected = librosa.resample(0.75 * wave, orig_sr=16000, target_sr=8000)
    np.testing.assert_allclose(down, expected, atol=1e-3)


def test_bad_audio_is_one_line_error(tmp_path) -> None:
    (tmp_path / "bad.wav").write_text("not audio")
    with pytest.raises(DlpError, match="cannot read audio"):
        audio.load_audio(tmp_path / "bad.wav")
    with pytest.raises(DlpError, match="float"):
        audio.stft(torch.zeros(100, dtype=torch.int16))
