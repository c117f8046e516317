"""Wake-word data: clips are 1 s with the right labels and voices split by timbre, streams put the keyword
where they say, and the features of a window cut from a stream equal the stream's own frames (streaming)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.data import wakeword as ww
from dlpractice.data.speech import Speaker


@pytest.fixture(autouse=True)
def private_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLP_HOME", str(tmp_path))


def test_splits_hold_one_second_clips_by_disjoint_voices() -> None:
    splits = ww.splits((3, 2, 2), (3, 2, 2), seed=0)
    for name, variants in (
        ("train", ww.TRAIN_VARIANTS),
        ("val", ww.VAL_VARIANTS),
        ("test", ww.TEST_VARIANTS),
    ):
        clips = splits[name]
        assert clips.audio.shape[1] == ww.SAMPLE_RATE and clips.audio.dtype == np.float32
        assert sorted(clips.labels.tolist()).count(ww.KEYWORD_LABEL) == len(clips.labels) // 2
        for label, clip_name in zip(clips.labels, clips.names, strict=True):
            assert (clip_name.startswith(ww.KEYWORD + " [")) == (label == ww.KEYWORD_LABEL)
            if clip_name != "noise":
                assert clip_name.split("+")[1].split("/")[0] in variants
    assert not set(ww.TRAIN_VARIANTS) & (set(ww.TEST_VARIANTS) | {ww.PERSONAL.variant})
    assert ww.KEYWORD not in ww.OTHER_WORDS


def test_stream_puts_the_keywords_where_it_says() -> None:
    speakers = [Speaker("en", "f5", 50, 170), Speaker("en", "m7", 40, 150)]
    stream = ww.stream(20.0, seed=3, variants=ww.TEST_VARIANTS, keyword_speakers=speakers)
    assert stream.seconds >= 20.0 and stream.keywords.shape == (2, 2)
    assert np.all(np.diff(stream.keywords.ravel()) > 0)  # in order, not overlapping
    # the keyword's own audio (resampled) is where the stream says, up to the added noise
    clean = ww.to_16k(ww.speech_dataset([ww.KEYWORD], speakers[:1], seed=3, cache=False)[0].audio)
    starts = (stream.keywords[:, 0] * ww.SAMPLE_RATE).round().astype(int)
    correlations = [np.corrcoef(stream.audio[s : s + len(clean)], clean)[0, 1] for s in starts]
    assert max(correlations) > 0.5  # the other keyword, by another voice, correlates little


def test_negative_streams_have_no_keyword() -> None:
    streams = ww.negative_streams(1.0, seed=1)
    assert len(streams) == 1 and streams[0].keywords.shape == (0, 2)
    assert 59.0 < streams[0].seconds < 75.0


def test_window_features_equal_the_streams_frames() -> None:
    wave = np.random.default_rng(0).standard_normal(3 * ww.SAMPLE_RATE).astype(np.float32) * 0.1
    whole = ww.features(wave)  # (frames, 40)
    start = 100  # frame 100 = sample 16000
    window = ww.features(wave[start * ww.HOP : start * ww.HOP + ww.SAMPLE_RATE])
    assert window.shape == (ww.WINDOW_FRAMES, 40)
    inner = slice(2, ww.WINDOW_FRAMES - 2)  # the edge frames see reflected padding in the window
    torch.testing.assert_close(
        window[inner], whole[start : start + ww.WINDOW_FRAMES][inner], atol=1e-3, rtol=1e-4
    )


def test_features_resample_any_rate() -> None:
    t = np.arange(ww.SAMPLE_RATE) / ww.SAMPLE_RATE
    tone = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    t44 = np.arange(44100) / 44100
    tone44 = np.sin(2 * np.pi * 440 * t44).astype(np.float32)
    a, b = ww.features(tone), ww.features(tone44, 44100)
    assert a.shape == b.shape
    assert (a - b)[2:-2].abs().max() < 0.1  # 2 dB
