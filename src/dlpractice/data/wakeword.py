"""Wake-word data: one keyword read by many synthetic voices against other words, sentences and noise.

Everything comes from eSpeak NG (data/speech.py), seeded. Voices are split by timbre (eSpeak's variant):
the test variants are never heard in training, so the scores are on unseen voices. Clips are 1 s at
16 kHz (the keyword somewhere inside, fully); streams are minutes of sentences, other words and noise
with keywords inserted at known times, for streaming detection and false accepts per hour.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import torch

from dlpractice.data.audio import add_noise, log_mel, resample
from dlpractice.data.speech import (
    NOISES,
    Speaker,
    english_sentences,
    make_noise,
    random_speakers,
    speech_dataset,
)
from dlpractice.data.speech import (
    SAMPLE_RATE as ESPEAK_RATE,
)

SAMPLE_RATE = 16000
HOP = 160  # 10 ms frames
CLIP_SECONDS = 1.0
WINDOW_FRAMES = 101  # the frames of one 1 s clip (centred STFT: 1 + 16000 / 160)
KEYWORD = "marvin"
KEYWORD_LABEL, OTHER_LABEL = 1, 0
CLASSES = ("other", "keyword")
CONFUSABLES = ("marvel", "martin", "carving", "marble", "margin", "starving", "mark", "vin", "marveling")
OTHER_WORDS = CONFUSABLES + (
    "hello",
    "computer",
    "yes",
    "no",
    "stop",
    "go",
    "left",
    "right",
    "music",
    "weather",
    "kitchen",
    "window",
    "seven",
    "nine",
    "morning",
    "garden",
    "happy",
    "lights",
    "open",
    "table",
    "river",
)
TRAIN_VARIANTS = ("f1", "f2", "f3", "m1", "m2", "m3", "m4", "m5")
VAL_VARIANTS = ("f4", "m6")
TEST_VARIANTS = ("f5", "m7")
# The enrolled user: a timbre no split holds, a French voice reading the English keyword, high and slow
PERSONAL = Speaker("fr", "m8", pitch=80, rate=140)
SNR_DB = (5.0, 30.0)  # background noise under every clip and stream, drawn per clip / per stream
NEGATIVE_KINDS = ("word", "sentence", "noise")
NOISE_BANK_SECONDS = 60


@dataclass
class Clips:
    """1 s clips: (N, 16000) float32 audio, (N,) labels (1 = keyword) and a description of each."""

    audio: np.ndarray
    labels: np.ndarray
    names: list[str] = field(default_factory=list)


@dataclass
class Stream:
    """A long recording with the keyword's [start, end) seconds where it was inserted."""

    audio: np.ndarray  # (T,) float32 at 16 kHz
    keywords: np.ndarray  # (K, 2) seconds

    @property
    def seconds(self) -> float:
        return len(self.audio) / SAMPLE_RATE


def features(
    wave: np.ndarray | torch.Tensor, sample_rate: int = SAMPLE_RATE, n_mels: int = 40
) -> torch.Tensor:
    """(frames, n_mels) log-mel frames every 10 ms, in units of 20 dB around -40 dB.

    No per-utterance normalisation (no top_db, no mean removal): a frame depends on its own 25 ms only,
    so the features of a stream cut into windows equal the features of the windows (streaming)."""
    wave = np.asarray(wave, dtype=np.float32)
    if sample_rate != SAMPLE_RATE:
        wave = resample(wave, sample_rate, SAMPLE_RATE)
    db = log_mel(torch.from_numpy(wave), SAMPLE_RATE, n_mels, top_db=None)  # (n_mels, frames)
    return ((db.clamp_min(-100.0) + 40.0) / 20.0).T.contiguous()


def to_16k(audio: np.ndarray) -> np.ndarray:
    return resample(audio, ESPEAK_RATE, SAMPLE_RATE).astype(np.float32)


def jittered(speaker: Speaker, rng: np.random.Generator, pitch: int = 6, rate: int = 15) -> Speaker:
    """The same voice on another day: pitch and rate moved a little."""
    return Speaker(
        speaker.voice,
        speaker.variant,
        int(np.clip(speaker.pitch + rng.integers(-pitch, pitch + 1), 0, 99)),
        int(speaker.rate + rng.integers(-rate, rate + 1)),
    )


def place(word: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) the word at a random offset (cut to n samples if longer)."""
    out = np.zeros(n, np.float32)
    word = word[:n]
    start = int(rng.integers(0, n - len(word) + 1))
    out[start : start + len(word)] = word
    return out


@lru_cache(maxsize=4)
def noise_bank(seed: int) -> dict[str, np.ndarray]:
    """NOISE_BANK_SECONDS of each noise kind (unit power), generated once: clips take random crops of it,
    since generating babble (five synthetic talkers) for every 1 s clip would cost more than the speech."""
    rng = np.random.default_rng([seed, 8])
    return {kind: make_noise(kind, NOISE_BANK_SECONDS * SAMPLE_RATE, SAMPLE_RATE, rng) for kind in NOISES}


def noisy(audio: np.ndarray, rng: np.random.Generator, seed: int = 0) -> np.ndarray:
    """The audio under one of the noise kinds at a random SNR (a silent input gets the noise alone).
    Short audio takes a random crop of the seed's noise bank; long audio (a stream) gets its own noise."""
    kind = str(rng.choice(NOISES))
    bank = noise_bank(seed)[kind]
    if len(audio) < len(bank) // 2:
        start = int(rng.integers(0, len(bank) - len(audio) + 1))
        noise = bank[start : start + len(audio)]
    else:
        noise = make_noise(kind, len(audio), SAMPLE_RATE, rng)
    if not np.any(audio):
        return (noise * 10 ** rng.uniform(-3, -1)).astype(np.float32)
    return np.clip(add_noise(audio, noise, float(rng.uniform(*SNR_DB)), active=audio != 0), -1, 1)


def in_context(word: np.ndarray, talk: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n,) the word at a random offset with other talk around it (as in a stream, where a keyword sits
    between sentences), kept 0.1 s away from the word and at a random level."""
    out = place(word, n, rng)
    start = int(rng.integers(0, max(1, len(talk) - n + 1)))
    around = np.resize(talk[start : start + n], n) if len(talk) else np.zeros(n, np.float32)
    sounding = np.flatnonzero(out)
    gap = SAMPLE_RATE // 10
    if len(sounding):
        around[max(0, sounding[0] - gap) : sounding[-1] + gap] = 0.0
    return out + around * np.float32(rng.uniform(0.3, 1.0))


def keyword_clips(speakers: Sequence[Speaker], seed: int, n_samples: int = SAMPLE_RATE) -> Clips:
    """One keyword clip per speaker, placed at a random offset, every other one between other words of the
    same speaker, under noise."""
    rng = np.random.default_rng([seed, 2])
    utterances = speech_dataset([KEYWORD] * len(speakers), list(speakers), seed=seed)
    talks = speech_dataset(english_sentences(len(speakers) // 2, rng), list(speakers[1::2]), seed=seed)
    talk = dict(zip(range(1, len(speakers), 2), (to_16k(t.audio) for t in talks)))
    audio = [
        noisy(
            in_context(to_16k(u.audio), talk[i], n_samples, rng)
            if i in talk
            else place(to_16k(u.audio), n_samples, rng),
            rng,
        )
        for i, u in enumerate(utterances)
    ]
    return Clips(
        np.stack(audio), np.full(len(audio), KEYWORD_LABEL), [f"{KEYWORD} [{s.name}]" for s in speakers]
    )


def negative_clips(speakers: Sequence[Speaker], seed: int, n_samples: int = SAMPLE_RATE) -> Clips:
    """Per speaker one negative, in turn: another word (confusables included), a 1 s crop of a sentence,
    or noise alone."""
    rng = np.random.default_rng([seed, 3])
    kinds = [NEGATIVE_KINDS[i % len(NEGATIVE_KINDS)] for i in range(len(speakers))]
    sentences = english_sentences(len(speakers), rng)
    texts = [str(rng.choice(OTHER_WORDS)) if k == "word" else s for k, s in zip(kinds, sentences)]
    spoken = [i for i, k in enumerate(kinds) if k != "noise"]
    utterances = speech_dataset([texts[i] for i in spoken], [speakers[i] for i in spoken], seed=seed)
    waves = dict(zip(spoken, (to_16k(u.audio) for u in utterances)))
    audio, names = [], []
    for i, kind in enumerate(kinds):
        wave = waves.get(i, np.zeros(n_samples, np.float32))
        if kind == "sentence" and len(wave) > n_samples:  # a random second of it
            start = int(rng.integers(0, len(wave) - n_samples + 1))
            wave = wave[start : start + n_samples]
        audio.append(noisy(place(wave, n_samples, rng), rng))
        names.append("noise" if kind == "noise" else f"{texts[i]} [{speakers[i].name}]")
    return Clips(np.stack(audio), np.full(len(audio), OTHER_LABEL), names)


def labelled_clips(variants: Sequence[str], n_keyword: int, n_other: int, seed: int) -> Clips:
    """Keyword and negative clips by random speakers of the given timbres, shuffled."""
    rng = np.random.default_rng([seed, 1])
    keyword = keyword_clips(random_speakers(n_keyword, rng, variants=variants), seed)
    other = negative_clips(random_speakers(n_other, rng, variants=variants), seed + 1)
    order = rng.permutation(n_keyword + n_other)
    names = keyword.names + other.names
    return Clips(
        np.concatenate([keyword.audio, other.audio])[order],
        np.concatenate([keyword.labels, other.labels])[order],
        [names[i] for i in order],
    )


def splits(n_keyword: tuple[int, int, int], n_other: tuple[int, int, int], seed: int) -> dict[str, Clips]:
    """train / val / test clips by disjoint voice timbres."""
    variants = (TRAIN_VARIANTS, VAL_VARIANTS, TEST_VARIANTS)
    return {
        name: labelled_clips(v, k, o, seed + 10 * i)
        for i, (name, v, k, o) in enumerate(zip(("train", "val", "test"), variants, n_keyword, n_other))
    }


def personal_clips(n: int, seed: int) -> Clips:
    """n keyword clips by the enrolled user (PERSONAL, jittered a little each time)."""
    rng = np.random.default_rng([seed, 4])
    return keyword_clips([jittered(PERSONAL, rng) for _ in range(n)], seed)


def stream(
    seconds: float,
    seed: int,
    variants: Sequence[str],
    keyword_speakers: Sequence[Speaker] = (),
    gap: tuple[float, float] = (0.2, 1.5),
) -> Stream:
    """`seconds` of talk: sentences, other words and noise-only pauses by voices of `variants`, with one
    keyword inserted per keyword speaker at random places, all under one noise kind at a random SNR."""
    rng = np.random.default_rng([seed, 5])
    n_parts = max(1, int(seconds / 2.0))  # a sentence plus its pause lasts about 2-3 s
    texts = [
        str(rng.choice(OTHER_WORDS)) if rng.random() < 0.3 else s for s in english_sentences(n_parts, rng)
    ]
    speakers = random_speakers(n_parts, rng, variants=variants)
    texts += [KEYWORD] * len(keyword_speakers)
    speakers += list(keyword_speakers)
    waves = [to_16k(u.audio) for u in speech_dataset(texts, speakers, seed=seed, cache=False)]
    order = rng.permutation(len(waves))
    pieces, keywords, position = [], [], 0
    for i in order:
        pause = np.zeros(int(rng.uniform(*gap) * SAMPLE_RATE), np.float32)
        start = position + len(pause)
        if i >= n_parts:  # a keyword: where it is, in seconds
            keywords.append((start / SAMPLE_RATE, (start + len(waves[i])) / SAMPLE_RATE))
        pieces += [pause, waves[i]]
        position = start + len(waves[i])
        if position >= seconds * SAMPLE_RATE and len(keywords) == len(keyword_speakers):
            break
    return Stream(noisy(np.concatenate(pieces), rng), np.array(keywords, dtype=np.float64).reshape(-1, 2))


def negative_streams(minutes: float, seed: int, variants: Sequence[str] = TEST_VARIANTS) -> list[Stream]:
    """Minute-long streams without the keyword, `minutes` in all (no long array held at once)."""
    return [stream(60.0, seed + i, variants) for i in range(max(1, round(minutes)))]


def keyword_streams(
    speakers: Sequence[Speaker], per_stream: int, seed: int, variants=TEST_VARIANTS
) -> list[Stream]:
    """Streams of talk by `variants` with `per_stream` keywords each, spoken by `speakers` in turn."""
    chunks = [speakers[i : i + per_stream] for i in range(0, len(speakers), per_stream)]
    return [stream(3.0 * per_stream, seed + 1000 + i, variants, chunk) for i, chunk in enumerate(chunks)]
