"""data/speech.py: eSpeak NG synthesis, phoneme timings, speakers, noises, the cached set, VAD recordings."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import librosa
import numpy as np
import pytest

from dlpractice.data import speech
from dlpractice.data.audio import snr_db
from dlpractice.errors import DlpError


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))


def median_f0(utt: speech.Utterance, frame: int = 2048) -> float:
    """Median pitch in Hz of the loudest frames: the autocorrelation's peak between 2 and 16 ms."""
    frames = librosa.util.frame(utt.audio, frame_length=frame, hop_length=frame // 2).T  # (N, frame)
    loud = frames[np.argsort((frames**2).sum(1))[-8:]]
    spectrum = np.fft.rfft(loud, 2 * frame)
    autocorrelation = np.fft.irfft(np.abs(spectrum) ** 2)[:, :frame]  # (8, frame)
    low, high = utt.sr // 500, utt.sr // 60
    lags = low + autocorrelation[:, low:high].argmax(1)
    return float(np.median(utt.sr / lags))


def test_synthesis_gives_audio_and_phonemes_in_order() -> None:
    utt = speech.synthesize("seven three")
    assert utt.sr == speech.SAMPLE_RATE == 22050 and utt.audio.dtype == np.float32
    assert 0.4 < utt.seconds < 3.0 and 0.05 < np.abs(utt.audio).max() <= 1.0
    symbols = [p.symbol.strip("ˈˌ") for p in utt.phonemes]
    assert symbols[:5] == ["s", "ɛ", "v", "ə", "n"] and "θ" in symbols, symbols
    starts = [p.start for p in utt.phonemes]
    assert starts == sorted(starts) and all(p.start < p.end <= len(utt.audio) for p in utt.phonemes)


def test_phoneme_spans_hold_the_energy() -> None:
    """Speech intervals are loud, the rest (leading and trailing silence, pauses) nearly silent."""
    utt = speech.synthesize("one, two. Three")
    mask = speech.speech_mask(utt)
    assert 0.5 < mask.mean() < 1.0
    inside, outside = np.mean(utt.audio[mask] ** 2), np.mean(utt.audio[~mask] ** 2)
    assert inside > 30 * outside


def test_pitch_rate_and_variant_change_the_voice() -> None:
    low = speech.synthesize("ah ah ah", pitch=10)
    high = speech.synthesize("ah ah ah", pitch=90)
    assert median_f0(high) > 1.3 * median_f0(low)
    assert (
        speech.synthesize("one two three four", rate=300).seconds
        < 0.7 * speech.synthesize("one two three four", rate=120).seconds
    )
    female = speech.synthesize("ah ah ah", variant="f2")
    male = speech.synthesize("ah ah ah", variant="m3")
    assert median_f0(female) > median_f0(male)


def test_languages_and_voices() -> None:
    voices = speech.list_voices()
    assert len(voices) > 100 and "gmw/en" in voices and "roa/fr" in voices
    french = speech.synthesize("bonjour", voice="fr")
    assert french.language == "fr" and french.phonemes
    with pytest.raises(DlpError, match="no voice 'klingon'"):
        speech.synthesize("hello", voice="klingon")
    with pytest.raises(DlpError, match="did you mean 'f2'"):
        speech.synthesize("hello", variant="f22")


def test_synthesis_from_several_threads_is_serialised() -> None:
    texts = ["one two", "three four five", "six", "seven eight nine"] * 3
    alone = [[p.symbol for p in speech.synthesize(t).phonemes] for t in texts]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda t: [p.symbol for p in speech.synthesize(t).phonemes], texts))
    assert together == alone


def test_noises_have_unit_power_and_differ() -> None:
    rng = np.random.default_rng(0)
    noises = {kind: speech.make_noise(kind, 22050, 22050, rng) for kind in speech.NOISES}
    for noise in noises.values():
        assert noise.shape == (22050,) and np.mean(noise.astype(np.float64) ** 2) == pytest.approx(
            1.0, rel=1e-3
        )
    flatness = {k: float(librosa.feature.spectral_flatness(y=v).mean()) for k, v in noises.items()}
    assert flatness["white"] > 0.3 > flatness["music"] and flatness["babble"] < 0.3
    with pytest.raises(DlpError, match="unknown noise"):
        speech.make_noise("pink", 10, 22050, rng)


def test_degrade_reaches_the_snr_over_speech_and_reverb_spreads_energy() -> None:
    utt = speech.synthesize("seven three")
    utt.audio *= 0.3  # room below clipping
    noisy = speech.degrade(utt, np.random.default_rng(0), "white", 5.0, None)
    mask = speech.speech_mask(utt)
    assert snr_db(utt.audio[mask], (noisy.audio - utt.audio)[mask]) == pytest.approx(5.0, abs=0.3)
    wet = speech.degrade(utt, np.random.default_rng(0), None, None, 0.5)
    assert wet.audio.shape == utt.audio.shape
    assert np.mean(wet.audio[~mask] ** 2) > 10 * np.mean(utt.audio[~mask] ** 2)  # the tail fills the pauses


def test_speech_dataset_labels_and_cache(monkeypatch) -> None:
    rng = np.random.default_rng(0)
    texts = speech.english_sentences(6, rng)
    speakers = speech.random_speakers(6, rng)
    first = speech.speech_dataset(texts, speakers, seed=3, noise="babble", snr_db=10.0, rt60=0.3)
    assert [u.text for u in first] == texts and [u.speaker for u in first] == speakers
    assert all(u.speaker.variant in speech.VARIANTS and 25 <= u.speaker.pitch < 75 for u in first)
    monkeypatch.setattr(speech, "synthesize", lambda *a, **k: pytest.fail("should come from the cache"))
    again = speech.speech_dataset(texts, speakers, seed=3, noise="babble", snr_db=10.0, rt60=0.3)
    for a, b in zip(first, again, strict=True):
        assert np.array_equal(a.audio, b.audio) and a.phonemes == b.phonemes and a.speaker == b.speaker
    with pytest.raises(DlpError, match="one speaker per text"):
        speech.speech_dataset(texts, speakers[:2])
    with pytest.raises(DlpError, match="unknown noise"):
        speech.speech_dataset(texts, speakers, noise="rain")


def test_english_sentences_are_seeded() -> None:
    a = speech.english_sentences(20, np.random.default_rng(1))
    assert a == speech.english_sentences(20, np.random.default_rng(1)) and len(set(a)) > 15


def test_vad_recordings_know_where_speech_is() -> None:
    recordings = speech.vad_recordings(2, seed=0, utterances_per_recording=3, noise="white", snr_db=0.0)
    for rec in recordings:
        assert rec.sr == 22050 and rec.noise == "white" and rec.snr_db == 0.0
        assert 0.3 < rec.mask.mean() < 0.9 and not rec.mask[:100].any() and not rec.mask[-100:].any()
        labels = rec.frame_labels(0.01, int(len(rec.audio) / rec.sr / 0.01))
        assert labels.dtype == np.int64 and set(labels.tolist()) == {0, 1}
        assert abs(labels.mean() - rec.mask.mean()) < 0.02
    clean = speech.vad_recordings(2, seed=0, utterances_per_recording=3, noise=None, snr_db=None)
    for rec, noisy in zip(clean, recordings, strict=True):
        assert np.array_equal(rec.speech, noisy.speech)
        measured = snr_db(rec.audio[rec.mask], (noisy.audio - rec.audio)[rec.mask])
        assert measured == pytest.approx(0.0, abs=0.5)  # clipping may trim a little
        # outside phonemes (silences, eSpeak's pauses and fades) is nearly silent before the noise
        assert np.mean(rec.audio[~rec.mask] ** 2) < 0.03 * np.mean(rec.audio[rec.mask] ** 2)
