"""Synthetic speakers and conversations for lab s3: eSpeak NG voices as people, and who spoke when.

A speaker is an English eSpeak voice (an accent) x a variant (timbre) x a base pitch x a base rate; each
of their utterances jitters pitch and rate a little, as a person never says two sentences alike. Speaker
sets are drawn by seed, so the training speakers and the test speakers are different people (no two
share voice, variant and pitch).

    speaker_set(n, seed) -> list[Speaker]
    speaker_utterances(speakers, per_speaker, seed) -> (list of (T,) 16 kHz waves, (N,) speaker ids)
    conversations(n, speakers, seed) -> list[Conversation]  (audio + the true turns, RTTM-ready)

A conversation: 2-4 speakers of the set (different variants, so a listener could tell them apart) take
turns of one sentence; between turns a pause, and now and then an overlap where the next speaker starts
before the last has finished. The turns run from each sentence's first phoneme to its last, so eSpeak's
own silence at either end is not counted as speech. White noise at `snr_db` over the speech.
Simplified: eSpeak's speakers are far more alike than people, and nobody laughs, coughs or backchannels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from dlpractice.data.audio import add_noise, resample
from dlpractice.data.langid_speech import features
from dlpractice.data.speech import (
    SAMPLE_RATE as SYNTH_RATE,
)
from dlpractice.data.speech import (
    VARIANTS,
    Speaker,
    english_sentences,
    make_noise,
    speech_dataset,
)
from dlpractice.errors import DlpError
from dlpractice.metrics.diarization import Turn

SAMPLE_RATE = 16000
VOICES = ("en", "en-US", "en-GB-scotland", "en-GB-x-rp", "en-029")  # English accents of eSpeak NG
PITCH, RATE = (20, 81), (130, 211)  # base pitch (0-99) and words per minute, [low, high)
JITTER = (4, 12)  # per utterance: pitch +-4, rate +-12


@dataclass
class Conversation:
    name: str
    audio: np.ndarray  # (T,) float32 at 16 kHz
    turns: list[Turn]  # the truth: who speaks when, in seconds
    sr: int = SAMPLE_RATE

    @property
    def seconds(self) -> float:
        return len(self.audio) / self.sr

    @property
    def speakers(self) -> list[str]:
        return sorted({t.speaker for t in self.turns})

    def speech_frames(self, hop_seconds: float, n_frames: int) -> np.ndarray:
        """(n_frames,) int64: 1 where someone speaks at frame t's centre (t * hop)."""
        centres = np.arange(n_frames) * hop_seconds
        speaking = np.zeros(n_frames, dtype=bool)
        for t in self.turns:
            speaking |= (centres >= t.start) & (centres < t.end)
        return speaking.astype(np.int64)


def speaker_set(n: int, seed: int, exclude: list[Speaker] | tuple[Speaker, ...] = ()) -> list[Speaker]:
    """n distinct speakers (voice, variant, base pitch, base rate), none with the voice, variant and pitch
    of a speaker in `exclude` (the training set, when drawing test speakers)."""
    rng = np.random.default_rng([seed, 31])
    taken = {(s.voice, s.variant, s.pitch) for s in exclude}
    if n > len(VOICES) * len(VARIANTS) * (PITCH[1] - PITCH[0]) - len(taken):
        raise DlpError(f"cannot draw {n} distinct speakers")
    speakers = []
    while len(speakers) < n:
        voice, variant = str(rng.choice(VOICES)), str(rng.choice(VARIANTS))
        pitch, rate = int(rng.integers(*PITCH)), int(rng.integers(*RATE))
        if (voice, variant, pitch) not in taken:
            taken.add((voice, variant, pitch))
            speakers.append(Speaker(voice, variant, pitch, rate))
    return speakers


def jittered(speaker: Speaker, rng: np.random.Generator) -> Speaker:
    """The speaker on one occasion: pitch and rate a little off their base."""
    pitch = int(np.clip(speaker.pitch + rng.integers(-JITTER[0], JITTER[0] + 1), 0, 99))
    rate = int(speaker.rate + rng.integers(-JITTER[1], JITTER[1] + 1))
    return Speaker(speaker.voice, speaker.variant, pitch, rate)


def spoken(texts: list[str], speakers: list[Speaker], seed: int, snr_db: float | None) -> list[np.ndarray]:
    """Each text said by its speaker (jittered), with white noise at snr_db (None: clean), trimmed to its
    first and last phoneme, at 16 kHz. Cached on disk by data/speech.py."""
    rng = np.random.default_rng([seed, 32])
    noise = None if snr_db is None else "white"
    utterances = speech_dataset(
        texts, [jittered(s, rng) for s in speakers], seed=seed, noise=noise, snr_db=snr_db
    )
    out = []
    for u in utterances:
        spans = u.speech_intervals()
        first, last = (spans[0, 0], spans[-1, 1]) if len(spans) else (0, len(u.audio))
        out.append(resample(u.audio[first:last], SYNTH_RATE, SAMPLE_RATE))
    return out


def speaker_utterances(
    speakers: list[Speaker], per_speaker: int, seed: int, snr_db: float = 30.0
) -> tuple[list[np.ndarray], np.ndarray]:
    """per_speaker sentences by every speaker: (16 kHz waves, (N,) speaker index), speaker-major."""
    rng = np.random.default_rng([seed, 33])
    texts = english_sentences(len(speakers) * per_speaker, rng)
    owners = [s for s in speakers for _ in range(per_speaker)]
    return spoken(texts, owners, seed, snr_db), np.repeat(np.arange(len(speakers)), per_speaker)


def identification_splits(
    waves: list[np.ndarray], ids: np.ndarray, per_speaker: int, val_per_speaker: int, n_mels: int
) -> dict[str, tuple[list[torch.Tensor], torch.Tensor]]:
    """Speaker-major utterances as {split: (log-mel features, (N,) speaker ids)}: each speaker's last
    val_per_speaker utterances validate, the rest train."""
    is_val = (np.arange(len(waves)) % per_speaker) >= per_speaker - val_per_speaker
    feats = [features(w, SAMPLE_RATE, n_mels) for w in waves]
    return {
        name: ([f for f, v in zip(feats, is_val) if v == want], torch.as_tensor(ids[is_val == want]))
        for name, want in (("train", False), ("val", True))
    }


def conversations(
    n: int,
    speakers: list[Speaker],
    seed: int,
    n_speakers: tuple[int, int] = (2, 4),
    turns: tuple[int, int] = (6, 12),
    pause_s: tuple[float, float] = (0.2, 1.0),
    overlap_share: float = 0.2,
    overlap_s: tuple[float, float] = (0.2, 0.8),
    snr_db: float = 20.0,
) -> list[Conversation]:
    """n conversations among speakers of the set: n_speakers and turns are inclusive ranges; a share
    `overlap_share` of the turns starts overlap_s seconds before the previous one ends."""
    rng = np.random.default_rng([seed, 34])
    plans = [plan(rng, speakers, n_speakers, turns) for _ in range(n)]
    flat = [s for cast, order in plans for s in (cast[i] for i in order)]
    waves = spoken(english_sentences(len(flat), rng), flat, seed, snr_db=None)  # noised whole, below
    out, used = [], 0
    for number, (_, order) in enumerate(plans):
        parts = waves[used : used + len(order)]
        used += len(order)
        labels = [f"spk{i}" for i in order]
        audio, spans = lay_out(parts, rng, pause_s, overlap_share, overlap_s)
        turn_list = [Turn(label, start, end) for label, (start, end) in zip(labels, spans, strict=True)]
        conversation = Conversation(f"conv{seed}_{number:03d}", audio, turn_list)
        conversation.audio = noised(conversation, rng, snr_db)
        out.append(conversation)
    return out


def plan(
    rng: np.random.Generator, speakers: list[Speaker], n_speakers: tuple[int, int], turns: tuple[int, int]
) -> tuple[list[Speaker], list[int]]:
    """Who takes part (different variants) and who speaks each turn: everyone once first, then at random,
    never the same speaker twice in a row."""
    k = int(rng.integers(n_speakers[0], n_speakers[1] + 1))
    cast: list[Speaker] = []
    for i in rng.permutation(len(speakers)):
        if speakers[i].variant not in {s.variant for s in cast}:
            cast.append(speakers[i])
        if len(cast) == k:
            break
    if len(cast) < k:
        raise DlpError(f"the speaker set has fewer than {k} different variants")
    order = list(rng.permutation(k))
    for _ in range(max(k, int(rng.integers(turns[0], turns[1] + 1))) - k):
        order.append(int(rng.choice([i for i in range(k) if i != order[-1]])))
    return cast, [int(i) for i in order]


def lay_out(
    parts: list[np.ndarray],
    rng: np.random.Generator,
    pause_s: tuple[float, float],
    overlap_share: float,
    overlap_s: tuple[float, float],
) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """The turns mixed on one timeline: (T,) audio and each turn's (start, end) in seconds."""
    starts, cursor = [], float(rng.uniform(*pause_s))
    for i, part in enumerate(parts):
        if i and rng.random() < overlap_share:  # into the previous turn, but not before it began
            cursor = max(starts[-1] + 0.5, cursor - float(rng.uniform(*overlap_s)))
        starts.append(cursor)
        cursor += len(part) / SAMPLE_RATE + float(rng.uniform(*pause_s))
    audio = np.zeros(int(cursor * SAMPLE_RATE) + 1, dtype=np.float32)
    spans = []
    for start, part in zip(starts, parts, strict=True):
        first = int(round(start * SAMPLE_RATE))
        audio[first : first + len(part)] += part
        spans.append((first / SAMPLE_RATE, (first + len(part)) / SAMPLE_RATE))
    return np.clip(audio, -1.0, 1.0), spans


def noised(conversation: Conversation, rng: np.random.Generator, snr_db: float) -> np.ndarray:
    """White noise at snr_db, measured over the speech only (so long pauses do not lower it)."""
    hop = 1 / SAMPLE_RATE
    active = conversation.speech_frames(hop, len(conversation.audio)).astype(bool)
    noise = make_noise("white", len(conversation.audio), SAMPLE_RATE, rng)
    return np.clip(add_noise(conversation.audio, noise, snr_db, active=active), -1.0, 1.0)
