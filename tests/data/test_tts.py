"""Lab s5's data: eSpeak's phonemes aligned to mel frames with pauses filled in, the vocabulary's fallbacks,
and batches that both TTS models read."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from dlpractice.data import tts
from dlpractice.data.speech import Phoneme


def test_durations_cover_every_frame_with_pauses_between_phonemes() -> None:
    phonemes = [Phoneme("a", 300, 1000), Phoneme("b", 1000, 2000), Phoneme("c", 3000, 5000)]
    symbols, durations = tts.aligned_symbols(phonemes, 6000)
    assert symbols == ["_", "a", "b", "_", "c", "_"]
    # frame t is centred on sample 256 t: the first frame at or after each start, 1 + 6000 // 256 = 24 in all
    assert durations.tolist() == [2, 2, 4, 4, 8, 4]


def test_a_pause_shorter_than_a_hop_is_dropped() -> None:
    symbols, durations = tts.aligned_symbols([Phoneme("a", 10, 2561), Phoneme("b", 2570, 5120)], 5120)
    assert symbols == ["_", "a", "b"] and durations.tolist() == [
        1,
        10,
        10,
    ]  # the 9-sample gap holds no frame centre


def test_mel_frames_are_librosas_log_mel_in_model_units() -> None:
    wave = np.random.default_rng(0).standard_normal(5000).astype(np.float32) * 0.1
    mel = tts.mel_frames(wave)
    assert mel.shape == (1 + 5000 // tts.HOP, tts.N_MELS)
    power = librosa.feature.melspectrogram(
        y=wave, sr=tts.SAMPLE_RATE, n_fft=tts.N_FFT, hop_length=tts.HOP, n_mels=tts.N_MELS
    )
    expected = librosa.power_to_db(power, top_db=80.0).T
    np.testing.assert_allclose(tts.mel_to_db(mel).numpy(), expected, atol=1e-3)


def test_vocabulary_pads_with_zero_and_falls_back_to_the_unstressed_phoneme() -> None:
    vocab = tts.Vocabulary(["ɛ", "ˈiː", "n", "_"])
    assert vocab.symbols[:2] == [tts.PAD, tts.PAUSE] and len(vocab) == 5
    assert vocab.encode(["n", "ˈɛ", "ˈiː", "q"]) == [vocab.index["n"], vocab.index["ɛ"], vocab.index["ˈiː"]]


def test_digit_sentences_are_read_with_pauses() -> None:
    assert tts.digit_sentence([4, 0, 9]) == "four, zero, nine"
    strings = tts.digit_strings(20, np.random.default_rng(0))
    assert all(3 <= len(s) <= 7 and all(0 <= d <= 9 for d in s) for s in strings)


def test_examples_align_espeak_audio_and_batch_for_both_models(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("DLP_HOME", str(tmp_path))
    examples, vocab = tts.examples(["four, nine", "the farmer found a red box"])
    for e in examples:
        assert int(e.durations.sum()) == len(e.mel) == 1 + len(e.audio) // tts.HOP
        assert len(e.ids) == len(e.durations) and (e.ids > 0).all()
    assert tts.PAUSE in vocab.symbols
    with pytest.raises(Exception, match="outside the vocabulary"):
        tts.examples(["zoology"], tts.Vocabulary(["_"]))
    batches = tts.TTSBatches({"train": examples, "val": examples[:1]})
    ids, durations, mel = batches.train_batch(2, torch.Generator().manual_seed(0))
    assert ids.shape == durations.shape and mel.shape == (2, int(durations.sum(1).max()), tts.N_MELS)
    assert [b[0].shape[0] for b in batches.eval_batches("val")] == [1]
