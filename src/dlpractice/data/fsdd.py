"""Spoken digits for lab s4: the Free Spoken Digit Dataset (real) or digits synthesised by eSpeak NG
(embedded), and spoken digit strings made by joining clips with pauses.

Real: FSDD (Jackson et al.), 3,000 clips "<digit>_<speaker>_<index>.wav" (6 speakers x 10 digits x 50
takes, 8 kHz mono), from the data directory (`fsdd/recordings`), the cache, or GitHub's archive of the
repository. The archive's bytes are not guaranteed stable, so the check is on the content: a SHA-256 over
every recording's name and SHA-256 (`recordings_digest`). The usual split: takes 0-4 test, the rest train
(here the first `val_takes` of those are validation). Speakers are shared by the splits, as in the usual
split: the test measures new takes, not new voices.
Embedded: "zero" to "nine" spoken by eSpeak NG (data/speech.py) in several English voices, variants,
pitches and rates, resampled to 8 kHz; a "speaker" is a voice and variant, a "take" a pitch and rate.
Digit strings (`digit_strings`): 3-7 clips of one split joined with random pauses, seeded.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from dlpractice.data.audio import load_audio, log_mel, resample, spec_augment
from dlpractice.data.fetch import TIMEOUT_S, data_dir
from dlpractice.errors import DlpError
from dlpractice.home import cache_dir

SAMPLE_RATE = 8000
COMMIT = "26eb9aa"  # the copy in ../shared/data (MANIFEST.md)
ARCHIVE_URL = f"https://github.com/Jakobovski/free-spoken-digit-dataset/archive/{COMMIT}.zip"
RECORDINGS_SHA256 = "99aa5e3a7c822ab55b2a3b47e0b05aeb9f011c54837a12e3831ad24108330829"
PLACES = ("fsdd/recordings", "free-spoken-digit-dataset/recordings", "recordings")
CLIP_NAME = re.compile(r"^(?P<digit>\d)_(?P<speaker>[A-Za-z]+)_(?P<take>\d+)\.wav$")
TEST_TAKES = 5  # takes 0-4 are the test split
N_FFT, HOP = 256, 80  # 32 ms windows every 10 ms at 8 kHz
EMBEDDED_VARIANTS = ("m1", "f2", "m3", "f4", "m7", "f5", "m2", "f1")  # one eSpeak English variant a speaker


@dataclass(frozen=True)
class Clip:
    audio: np.ndarray  # float32 (T,) at the dataset's sample rate
    digit: int
    speaker: str
    take: int

    @property
    def name(self) -> str:
        return f"{self.digit}_{self.speaker}_{self.take}"


@dataclass
class SpokenDigits:
    splits: dict[str, list[Clip]]  # train, val, test
    sample_rate: int
    source: str  # embedded or real
    origin: str

    def describe(self) -> dict[str, str | int]:
        speakers = sorted({c.speaker for clips in self.splits.values() for c in clips})
        sizes = {f"n_{split}": len(clips) for split, clips in self.splits.items()}
        split = f"takes 0-{TEST_TAKES - 1} test, the others train and validation"
        return (
            {"data_source": self.source, "data_origin": self.origin, "split": split}
            | sizes
            | {"speakers": len(speakers)}
        )


def recordings_digest(folder: Path) -> str:
    """SHA-256 over the sorted clip names, each with the SHA-256 of its bytes: the content, not the zip."""
    digest = hashlib.sha256()
    for path in sorted(folder.glob("*.wav")):
        digest.update(
            path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).hexdigest().encode() + b"\n"
        )
    return digest.hexdigest()


def verified(folder: Path) -> Path:
    actual = recordings_digest(folder)
    if actual != RECORDINGS_SHA256:
        raise DlpError(
            f"the recordings in {folder} differ from FSDD @ {COMMIT} (digest {actual[:12]}…, expected "
            f"{RECORDINGS_SHA256[:12]}…): replace them with recordings/ of {ARCHIVE_URL}"
        )
    return folder


def find_recordings(directory: str | Path | None = None) -> Path | None:
    """The verified recordings folder in the data directory or the cache; None if absent."""
    root = data_dir(directory)
    candidates = [root / place for place in PLACES] if root else []
    candidates.append(cache_dir() / "fsdd" / "recordings")
    for folder in candidates:
        if folder.is_dir() and any(folder.glob("*.wav")):
            return verified(folder)
    return None


def download_recordings() -> Path:
    """GitHub's archive of the repository, its recordings/ unpacked into the cache once they check out."""
    target = cache_dir() / "fsdd" / "recordings"
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        archive = Path(tmp) / "fsdd.zip"
        with archive.open("wb") as out, urllib.request.urlopen(ARCHIVE_URL, timeout=TIMEOUT_S) as response:
            shutil.copyfileobj(response, out, 1 << 20)
        unpacked = Path(tmp) / "recordings"
        unpacked.mkdir()
        with zipfile.ZipFile(archive) as zf:
            for member in zf.namelist():
                parts = member.split("/")
                if len(parts) == 3 and parts[1] == "recordings" and CLIP_NAME.match(parts[2]):
                    (unpacked / parts[2]).write_bytes(zf.read(member))
        os.replace(verified(unpacked), target)
    return target


def locate_recordings(directory: str | Path | None = None) -> Path:
    """A verified recordings folder, downloaded if allowed; otherwise a one-line DlpError."""
    found = find_recordings(directory)
    if found:
        return found
    root = data_dir(directory)
    where = root / PLACES[0] if root else f"<data dir>/{PLACES[0]} (set DLP_DATA_DIR or --data-dir)"
    if os.environ.get("DLP_OFFLINE") == "1":
        reason = "DLP_OFFLINE=1"
    else:
        try:
            return download_recordings()
        except (urllib.error.URLError, OSError, zipfile.BadZipFile) as err:
            reason = f"download failed: {getattr(err, 'reason', err)}"
    raise DlpError(f"FSDD recordings not found and {reason}; put recordings/ of {ARCHIVE_URL} at {where}")


def read_clips(folder: Path) -> list[Clip]:
    """Every "<digit>_<speaker>_<take>.wav" of a folder, as mono float32 at 8 kHz."""
    clips = []
    for path in sorted(folder.glob("*.wav")):
        match = CLIP_NAME.match(path.name)
        if match is None:
            continue
        audio, sr = load_audio(path, SAMPLE_RATE)
        clips.append(Clip(audio, int(match["digit"]), match["speaker"], int(match["take"])))
    if not clips:
        raise DlpError(f"no <digit>_<speaker>_<take>.wav clips in {folder}")
    return clips


def split_by_take(clips: list[Clip], val_takes: int) -> dict[str, list[Clip]]:
    """Takes 0-4 test, the next `val_takes` validation, the rest train."""

    def split_of(take: int) -> str:
        return "test" if take < TEST_TAKES else "val" if take < TEST_TAKES + val_takes else "train"

    return {name: [c for c in clips if split_of(c.take) == name] for name in ("train", "val", "test")}


def load_fsdd(directory: str | Path | None = None, val_takes: int = 2) -> SpokenDigits:
    folder = locate_recordings(directory)
    clips = read_clips(folder)
    return SpokenDigits(split_by_take(clips, val_takes), SAMPLE_RATE, "real", f"FSDD @ {COMMIT}: {folder}")


def digit_strings(
    clips: list[Clip],
    n: int,
    seed: int,
    sample_rate: int = SAMPLE_RATE,
    lengths: tuple[int, int] = (3, 7),
    pause_s: tuple[float, float] = (0.1, 0.5),
) -> list[tuple[np.ndarray, list[int]]]:
    """n strings of lengths[0]..lengths[1] random clips joined by random silences (and one at each end):
    (audio (T,), digits)."""
    rng = np.random.default_rng(seed)

    def pause() -> np.ndarray:
        return np.zeros(int(rng.uniform(*pause_s) * sample_rate), dtype=np.float32)

    strings = []
    for _ in range(n):
        chosen = [clips[i] for i in rng.choice(len(clips), rng.integers(lengths[0], lengths[1] + 1))]
        pieces = [pause()]
        for clip in chosen:
            pieces += [clip.audio, pause()]
        strings.append((np.concatenate(pieces), [c.digit for c in chosen]))
    return strings


def load_embedded(n_speakers: int = 6, takes: int = 20, val_takes: int = 2, seed: int = 0) -> SpokenDigits:
    """The ten digit words spoken by eSpeak NG: speaker s is English variant s at its own base pitch; each
    take jitters pitch and rate. Resampled to 8 kHz, like FSDD."""
    from dlpractice.data.speech import DIGITS, Speaker, speech_dataset
    from dlpractice.data.speech import SAMPLE_RATE as SYNTH_RATE

    if n_speakers > len(EMBEDDED_VARIANTS):
        raise DlpError(
            f"the embedded digits have at most {len(EMBEDDED_VARIANTS)} speakers, not {n_speakers}"
        )
    rng = np.random.default_rng(seed)
    texts, speakers, labels = [], [], []
    for s in range(n_speakers):
        base_pitch = int(rng.integers(30, 70))
        for take in range(takes):
            for digit, word in enumerate(DIGITS):
                pitch = int(np.clip(base_pitch + rng.integers(-8, 9), 0, 99))
                speakers.append(Speaker("en", EMBEDDED_VARIANTS[s], pitch, int(rng.integers(140, 210))))
                texts.append(word)
                labels.append((digit, f"espeak{EMBEDDED_VARIANTS[s]}", take))
    utterances = speech_dataset(texts, speakers, seed=seed, noise="white", snr_db=30.0)
    clips = [
        Clip(resample(u.audio, SYNTH_RATE, SAMPLE_RATE), digit, speaker, take)
        for u, (digit, speaker, take) in zip(utterances, labels)
    ]
    origin = (
        f"eSpeak NG: digit words, {n_speakers} English variants x {takes} takes (pitch, rate), 30 dB noise"
    )
    return SpokenDigits(split_by_take(clips, val_takes), SAMPLE_RATE, "embedded", origin)


def load_digits(
    source: str, directory: str | Path | None = None, val_takes: int = 2, **embedded
) -> SpokenDigits:
    """`auto`: FSDD when it is on disk, else the synthesised digits."""
    if source == "auto":
        source = "real" if find_recordings(directory) else "embedded"
    if source == "real":
        return load_fsdd(directory, val_takes)
    if source == "embedded":
        return load_embedded(val_takes=val_takes, **embedded)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


def features(wave: np.ndarray, sample_rate: int = SAMPLE_RATE, n_mels: int = 40) -> torch.Tensor:
    """Log-mel frames (frames, n_mels) of a wave, in units of 20 dB below its loudest bin (0 to -4):
    level-free, so a quiet take and a loud one look alike."""
    wave = resample(wave, sample_rate, SAMPLE_RATE) if sample_rate != SAMPLE_RATE else wave
    db = log_mel(
        torch.as_tensor(wave, dtype=torch.float32), SAMPLE_RATE, n_mels, N_FFT, HOP
    )  # (n_mels, frames)
    return ((db - db.max()) / 20.0).T.contiguous()


class UtteranceBatches:
    """fit()'s data: per split, feature sequences (T_i, F) and digit labels; batches padded to their longest.

    A batch is (features (B, T, F), lengths (B,), targets (B, S) symbol ids padded with -1); symbol id is
    digit + 1 (0 is CTC's blank). A training batch is `batch_size` neighbours in length order from a random
    place (HF's group_by_length), so single digits are not padded to the length of strings, with SpecAugment
    masks when `augment` is on. Evaluation keeps each split's order."""

    def __init__(self, splits: dict[str, tuple[list[torch.Tensor], list[list[int]]]], augment: bool = True):
        self.splits, self.augment = splits, augment
        self.train_order = sorted(range(len(splits["train"][0])), key=lambda i: len(splits["train"][0][i]))

    @staticmethod
    def collate(feats: list[torch.Tensor], digits: list[list[int]]) -> tuple[torch.Tensor, ...]:
        lengths = torch.tensor([len(f) for f in feats])
        # (B, T, F), zeros after the end: the loudest level, yet padding with the silence level (-4) measured
        # worse in s4 (its article); the GRU never reads the padding (packed), only the convolutions' edges
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        targets = torch.full((len(digits), max(map(len, digits))), -1, dtype=torch.long)
        for row, ds in zip(targets, digits):
            row[: len(ds)] = torch.tensor(ds) + 1
        return padded, lengths, targets

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        feats, digits = self.splits["train"]
        start = int(torch.randint(max(1, len(feats) - batch_size + 1), (1,), generator=generator))
        index = self.train_order[start : start + batch_size]
        x, lengths, targets = self.collate([feats[i] for i in index], [digits[i] for i in index])
        if self.augment:  # masks filled with the silence level (0 dB down is the loudest; -4 is 80 dB down)
            x = spec_augment(x.transpose(1, 2), generator, max_freq_width=6, max_time_width=8, fill=-4.0)
            x = x.transpose(1, 2).contiguous()
        return x, lengths, targets

    def eval_batches(self, split: str, batch_size: int = 64):
        feats, digits = self.splits[split]
        for start in range(0, len(feats), batch_size):
            yield self.collate(feats[start : start + batch_size], digits[start : start + batch_size])
