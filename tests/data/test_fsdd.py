"""FSDD's real loader on a tiny copy written in its format, the split by take, digit strings, features,
and the synthesised (embedded) digits."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from dlpractice.data import fsdd
from dlpractice.errors import DlpError


def tiny_fsdd(directory: Path, speakers=("ann", "bob"), takes: int = 8) -> Path:
    """Clips "<digit>_<speaker>_<take>.wav", 16-bit PCM at 8 kHz: a tone whose pitch says the digit."""
    folder = directory / "fsdd" / "recordings"
    folder.mkdir(parents=True)
    t = np.arange(2000) / fsdd.SAMPLE_RATE
    for digit in range(10):
        for speaker in speakers:
            for take in range(takes):
                wave = 0.3 * np.sin(2 * np.pi * (200 + 50 * digit) * t)
                sf.write(folder / f"{digit}_{speaker}_{take}.wav", wave, fsdd.SAMPLE_RATE, subtype="PCM_16")
    (folder / "README.txt").write_text("not a clip")
    return folder


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch):
    """Make a tiny copy's digest the published one, so the real lookup code runs unchanged."""

    def patch(folder: Path) -> None:
        monkeypatch.setattr(fsdd, "RECORDINGS_SHA256", fsdd.recordings_digest(folder))

    return patch


def test_real_loader_reads_and_splits_by_take(tmp_path: Path, published) -> None:
    published(tiny_fsdd(tmp_path))
    data = fsdd.load_digits("auto", tmp_path, val_takes=2)
    assert data.source == "real" and data.sample_rate == 8000
    sizes = {split: len(clips) for split, clips in data.splits.items()}
    assert sizes == {"train": 20, "val": 40, "test": 100}  # takes 7 | 5-6 | 0-4, x 10 digits x 2 speakers
    assert {c.take for c in data.splits["test"]} == set(range(5))
    clip = data.splits["train"][0]
    assert clip.audio.dtype == np.float32 and clip.audio.shape == (2000,)
    assert np.abs(clip.audio).max() == pytest.approx(0.3, abs=1e-3)
    assert clip.name == f"{clip.digit}_{clip.speaker}_7"
    assert data.describe()["speakers"] == 2


def test_changed_recordings_are_rejected(tmp_path: Path, published) -> None:
    folder = tiny_fsdd(tmp_path)
    published(folder)
    sf.write(folder / "0_ann_0.wav", np.zeros(100), fsdd.SAMPLE_RATE, subtype="PCM_16")
    with pytest.raises(DlpError, match="differ from FSDD"):
        fsdd.load_fsdd(tmp_path)


def test_missing_data_offline_says_where_to_put_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    with pytest.raises(
        DlpError, match=r"DLP_OFFLINE=1; put recordings/ of https://github.com/.*fsdd/recordings"
    ):
        fsdd.load_digits("real", tmp_path)


def test_digit_strings_join_clips_with_pauses() -> None:
    clips = [fsdd.Clip(np.full(100, d + 1, np.float32), d, "x", 0) for d in range(10)]
    strings = fsdd.digit_strings(clips, 30, seed=3, lengths=(3, 7), pause_s=(0.01, 0.02))
    assert len(strings) == 30 and all(3 <= len(d) <= 7 for _, d in strings)
    for wave, digits in strings:
        values, counts = np.unique(wave[wave > 0], return_counts=True)
        heard = {int(v) - 1: int(n) // 100 for v, n in zip(values, counts)}
        assert heard == Counter(digits)  # every clip is there, whole
        assert wave[:80].max() == 0 and wave[-80:].max() == 0  # a pause at each end
    again = fsdd.digit_strings(clips, 30, seed=3, lengths=(3, 7), pause_s=(0.01, 0.02))
    assert all(np.array_equal(a, b) for (a, _), (b, _) in zip(strings, again))  # seeded


def test_features_are_level_free_log_mel() -> None:
    wave = np.random.default_rng(0).normal(size=8000).astype(np.float32) * 0.1
    quiet, loud = fsdd.features(wave), fsdd.features(wave * 10)
    assert quiet.shape == (101, 40) and quiet.max() == 0  # 1 s at 10 ms hops; 0 is the loudest bin
    torch.testing.assert_close(quiet, loud, atol=1e-4, rtol=0)
    upsampled = fsdd.features(np.repeat(wave, 2), sample_rate=16000)  # resampled to 8 kHz first
    assert upsampled.shape == quiet.shape


def test_batches_pad_and_mask() -> None:
    feats = [torch.zeros(5, 4), torch.zeros(9, 4)]
    batches = fsdd.UtteranceBatches({"train": (feats, [[3], [1, 2, 3]]), "val": (feats, [[3], [1, 2, 3]])})
    x, lengths, targets = next(batches.eval_batches("val"))
    assert x.shape == (2, 9, 4) and lengths.tolist() == [5, 9]
    assert targets.tolist() == [[4, -1, -1], [2, 3, 4]]  # digit + 1; 0 is the blank
    assert x[0, 5:].abs().sum() == 0  # the short one padded with zeros
    x, lengths, _ = batches.train_batch(2, torch.Generator().manual_seed(0))
    assert x.shape == (2, 9, 4) and sorted(lengths.tolist()) == [5, 9] and x.min() >= -4.0  # masks fill -4


def test_embedded_digits_are_synthesised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLP_HOME", str(tmp_path))
    data = fsdd.load_embedded(n_speakers=2, takes=6, val_takes=0)
    assert data.source == "embedded" and "eSpeak" in data.origin
    assert {split: len(c) for split, c in data.splits.items()} == {"train": 20, "val": 0, "test": 100}
    lengths = [len(c.audio) for c in data.splits["test"]]
    assert 0.2 * 8000 < np.median(lengths) < 1.0 * 8000  # a digit word lasts about half a second at 8 kHz
    assert len({c.speaker for c in data.splits["test"]}) == 2
