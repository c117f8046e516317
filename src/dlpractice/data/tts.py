"""Text-to-speech data for lab s5: sentences spoken by one eSpeak NG voice, as phoneme ids with each
phoneme's duration in mel frames, and the log-mel frames to predict.

eSpeak is both the teacher and the front-end: it turns text into phonemes (its phoneme events, data/speech.py)
and says how long each one lasts, and its audio gives the mel targets (data/audio.py's log-mel). Silences
between phonemes (a comma's pause, the lead-in and the tail) become a pause symbol `_` with their own
duration, so every mel frame belongs to exactly one symbol and the durations of an utterance add up to its
frame count:

    utterance_example("three, seven", vocab) -> Example(ids (N,), durations (N,), mel (T, n_mels)), T = sum

Sentences: digit strings read with commas ("four, nine, one"), which s4's digit recogniser can score, mixed
with sentences of data/speech.py's small English grammar for more phonemes.
Simplified: one synthetic voice; the mel frames are the targets and Griffin-Lim turns them back into audio.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from dlpractice.data.audio import log_mel
from dlpractice.data.speech import DIGITS, Phoneme, Speaker, english_sentences, speech_dataset, synthesize
from dlpractice.data.speech import SAMPLE_RATE as SAMPLE_RATE
from dlpractice.errors import DlpError

VOICE = Speaker("en", None, 50, 175)  # eSpeak's default English voice at its default pitch and rate
N_FFT, HOP, N_MELS = 1024, 256, 80  # 46 ms windows every 11.6 ms at 22,050 Hz: Tacotron 2's frames
MEL_OFFSET_DB, MEL_SCALE_DB = -20.0, 20.0  # dB -> model units: about -2 (silence) to +2 (loudest)
PAD, PAUSE = "<pad>", "_"
STRESS = re.compile("[ˈˌ]")


def digit_sentence(digits: Sequence[int]) -> str:
    """Digits read one by one with a pause between them: [4, 9, 1] -> "four, nine, one"."""
    return ", ".join(DIGITS[d] for d in digits)


def digit_strings(n: int, rng: np.random.Generator, lengths: tuple[int, int] = (3, 7)) -> list[list[int]]:
    return [list(rng.integers(0, 10, int(rng.integers(lengths[0], lengths[1] + 1)))) for _ in range(n)]


def training_sentences(n: int, rng: np.random.Generator, digit_share: float) -> list[str]:
    """n sentences: about `digit_share` of them digit strings, the rest from the English grammar."""
    n_digits = int(round(n * digit_share))
    texts = [digit_sentence(d) for d in digit_strings(n_digits, rng)] + english_sentences(n - n_digits, rng)
    return [texts[i] for i in rng.permutation(n)]


def aligned_symbols(phonemes: Sequence[Phoneme], n_samples: int) -> tuple[list[str], np.ndarray]:
    """eSpeak's phonemes with pauses filled in, and each one's duration in mel frames (summing to the
    frame count, 1 + n_samples // HOP). Frame t is centred on sample t * HOP and belongs to the symbol
    sounding there."""
    symbols, starts, position = [], [], 0
    for p in phonemes:
        if p.start > position:  # a silence before this phoneme
            symbols.append(PAUSE)
            starts.append(position)
        symbols.append(p.symbol)
        starts.append(p.start)
        position = p.end
    if position < n_samples:
        symbols.append(PAUSE)
        starts.append(position)
    n_frames = 1 + n_samples // HOP
    bounds = np.minimum(np.ceil(np.array(starts, dtype=np.float64) / HOP), n_frames).astype(np.int64)
    durations = np.diff(np.append(bounds, n_frames))  # (N,) frames per symbol
    keep = [i for i, s in enumerate(symbols) if s != PAUSE or durations[i] > 0]  # pauses shorter than a hop
    return [symbols[i] for i in keep], durations[keep]


def mel_frames(wave: np.ndarray) -> torch.Tensor:
    """(T, N_MELS) log-mel frames in model units (dB shifted and scaled), T = 1 + len(wave) // HOP."""
    db = log_mel(torch.as_tensor(wave, dtype=torch.float32), SAMPLE_RATE, N_MELS, N_FFT, HOP)  # (n_mels, T)
    return ((db - MEL_OFFSET_DB) / MEL_SCALE_DB).T.contiguous()


def mel_to_db(mel: torch.Tensor) -> torch.Tensor:
    """Model units back to dB."""
    return mel * MEL_SCALE_DB + MEL_OFFSET_DB


class Vocabulary:
    """Phoneme symbols <-> ids; id 0 is padding. A symbol the training sentences never held falls back to
    the same phoneme without its stress mark, or is left out."""

    def __init__(self, symbols: Sequence[str]):
        self.symbols = [PAD, PAUSE, *sorted(set(symbols) - {PAD, PAUSE})]
        self.index = {s: i for i, s in enumerate(self.symbols)}

    def __len__(self) -> int:
        return len(self.symbols)

    def encode(self, symbols: Sequence[str]) -> list[int]:
        ids = []
        for s in symbols:
            known = s if s in self.index else STRESS.sub("", s)
            if known in self.index:
                ids.append(self.index[known])
        return ids


@dataclass
class Example:
    text: str
    ids: torch.Tensor  # (N,) phoneme ids
    durations: torch.Tensor  # (N,) mel frames per phoneme
    mel: torch.Tensor  # (T, N_MELS), T = durations.sum()
    audio: np.ndarray  # (samples,) eSpeak's own audio: the target, and the ceiling of every score


def utterance_symbols(text: str) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(symbols, durations in frames, eSpeak's audio) of `text` in the lab's voice."""
    utt = synthesize(text, VOICE.voice, VOICE.variant, VOICE.rate, VOICE.pitch)
    symbols, durations = aligned_symbols(utt.phonemes, len(utt.audio))
    return symbols, durations, utt.audio


def examples(texts: Sequence[str], vocab: Vocabulary | None = None) -> tuple[list[Example], Vocabulary]:
    """The texts in the lab's voice (cached), aligned; the vocabulary is built from them if not given."""
    utterances = speech_dataset(texts, [VOICE] * len(texts))
    aligned = [aligned_symbols(u.phonemes, len(u.audio)) for u in utterances]
    vocab = vocab or Vocabulary([s for symbols, _ in aligned for s in symbols])
    out = []
    for u, (symbols, durations) in zip(utterances, aligned, strict=True):
        ids = vocab.encode(symbols)
        if len(ids) != len(symbols):
            raise DlpError(f"{u.text!r} holds phonemes outside the vocabulary: align with the training vocab")
        out.append(
            Example(u.text, torch.tensor(ids), torch.as_tensor(durations), mel_frames(u.audio), u.audio)
        )
    return out, vocab


def collate(batch: Sequence[Example]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(ids (B, N), durations (B, N), mel (B, T, N_MELS)), each padded with zeros to the longest."""
    pad = torch.nn.utils.rnn.pad_sequence
    return (
        pad([e.ids for e in batch], batch_first=True),
        pad([e.durations for e in batch], batch_first=True),
        pad([e.mel for e in batch], batch_first=True),
    )


class TTSBatches:
    """fit()'s data for both models: a training batch is `batch_size` neighbours in length order from a
    random place, so little of a batch is padding; evaluation keeps each split's order."""

    def __init__(self, splits: dict[str, list[Example]]):
        self.splits = splits
        self.train_order = sorted(range(len(splits["train"])), key=lambda i: len(splits["train"][i].mel))

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        start = int(torch.randint(max(1, len(self.train_order) - batch_size + 1), (1,), generator=generator))
        return collate([self.splits["train"][i] for i in self.train_order[start : start + batch_size]])

    def eval_batches(self, split: str, batch_size: int = 32):
        items = self.splits[split]
        for start in range(0, len(items), batch_size):
            yield collate(items[start : start + batch_size])
