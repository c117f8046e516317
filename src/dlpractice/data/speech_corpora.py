"""Real speech corpora at their original places: Speech Commands (keywords) and LibriSpeech (read speech).

The speech labs train on eSpeak NG (data/speech.py) so that they run offline; these loaders are the real
data a user points them to. Each corpus is a tar.gz with a published SHA-256, found extracted in the data
directory (`<data dir>/speech_commands/`, `<data dir>/LibriSpeech/<subset>/`), else as the archive in the
data directory or the cache (extracted once into the cache), else downloaded (data/fetch.py), and offline
a one-line error that says where to put it.

- Speech Commands v0.02 (Warden, 2018): 105,829 one-second clips of 35 words at 16 kHz, one folder per
  word (`<word>/<speaker>_nohash_<n>.wav`), the split by speaker in `validation_list.txt` and
  `testing_list.txt` (the rest is training), and `_background_noise_/` with long noise recordings.
- LibriSpeech (Panayotov et al., 2015): audiobook chapters at 16 kHz in FLAC,
  `LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac` with one
  `<speaker>-<chapter>.trans.txt` per chapter (`<utterance id> <UPPER-CASE TRANSCRIPT>`).
"""

from __future__ import annotations

import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dlpractice.data.audio import load_audio
from dlpractice.data.fetch import RealFile, data_dir, locate
from dlpractice.errors import DlpError
from dlpractice.home import cache_dir

SPEECH_COMMANDS = RealFile(
    "speech_commands_v0.02.tar.gz",
    "https://storage.googleapis.com/download.tensorflow.org/data/speech_commands_v0.02.tar.gz",
    "af14739ee7dc311471de98f5f9d2c9191b18aedfe957f4a6ff791c709868ff58",
    ("speech_commands_v0.02.tar.gz", "speech_commands/speech_commands_v0.02.tar.gz"),
)
LIBRISPEECH_SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
}
BACKGROUND = "_background_noise_"


@dataclass(frozen=True)
class Recording:
    audio: np.ndarray  # (T,) float32 mono
    sample_rate: int
    text: str  # the word (Speech Commands) or the transcript (LibriSpeech)
    speaker: str
    name: str  # its path inside the corpus


def librispeech_file(subset: str) -> RealFile:
    if subset not in LIBRISPEECH_SHA256:
        raise DlpError(f"unknown LibriSpeech subset {subset!r}; one of {', '.join(LIBRISPEECH_SHA256)}")
    name = f"{subset}.tar.gz"
    url = f"https://www.openslr.org/resources/12/{name}"
    return RealFile(name, url, LIBRISPEECH_SHA256[subset], (name, f"LibriSpeech/{name}"))


def extracted(folder: str, marker: str, archive: RealFile, directory: str | Path | None) -> Path:
    """`folder` holding `marker`: in the data directory, else in the cache, else extracted there from the
    archive (found or downloaded by data/fetch.py, checksum-verified)."""
    root = data_dir(directory)
    for base in ([root] if root else []) + [cache_dir()]:
        if (base / folder / marker).exists():
            return base / folder
    source = locate(archive, directory)
    target = cache_dir() / folder
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(source) as tar:
        tar.extractall(target, filter="data")  # "data": no absolute paths, links out or devices
    if not (target / marker).exists():
        raise DlpError(f"{source} holds no {marker}: is it the original {archive.url}?")
    return target


def speech_commands_split(root: Path, split: str) -> list[Path]:
    """The clips of a split: validation and testing are listed; training is every other word clip."""
    listed = {
        name: set((root / f"{name}_list.txt").read_text().split()) for name in ("validation", "testing")
    }
    if split in listed:
        return [root / name for name in sorted(listed[split])]
    if split != "training":
        raise DlpError(f"unknown Speech Commands split {split!r}; one of training, validation, testing")
    held_out = listed["validation"] | listed["testing"]
    clips = sorted(p.relative_to(root).as_posix() for p in root.glob("*/*.wav"))
    return [root / c for c in clips if c not in held_out and not c.startswith(BACKGROUND)]


def load_speech_commands(
    split: str = "testing",
    words: tuple[str, ...] | None = None,
    per_word: int | None = None,
    directory: str | Path | None = None,
) -> list[Recording]:
    """A split's clips (of `words`, at most `per_word` each, in name order), as mono float32 at 16 kHz."""
    root = extracted("speech_commands", "testing_list.txt", SPEECH_COMMANDS, directory)
    chosen, counts = [], {}
    for path in speech_commands_split(root, split):
        word = path.parent.name
        if (words is None or word in words) and counts.get(word, 0) < (per_word or 10**9):
            counts[word] = counts.get(word, 0) + 1
            chosen.append(path)
    if words and not chosen:
        raise DlpError(f"no clip of {', '.join(words)} in Speech Commands' {split} split at {root}")
    return [recording(p, p.parent.name, p.name.split("_nohash_")[0], root) for p in chosen]


def load_librispeech(
    subset: str = "test-clean", limit: int | None = None, directory: str | Path | None = None
) -> list[Recording]:
    """A subset's utterances (the first `limit` in id order) with their transcripts, at 16 kHz."""
    archive = librispeech_file(subset)
    root = extracted("LibriSpeech", subset, archive, directory) / subset
    transcripts = {}
    for listing in sorted(root.glob("*/*/*.trans.txt")):
        for line in listing.read_text().splitlines():
            if line.strip():
                utterance, text = line.split(" ", 1)
                transcripts[utterance] = text.strip()
    files = sorted(root.glob("*/*/*.flac"))[:limit]
    missing = [f.stem for f in files if f.stem not in transcripts]
    if missing:
        raise DlpError(f"no transcript for {missing[0]} in {root}: the subset is incomplete")
    return [recording(f, transcripts[f.stem], f.stem.split("-")[0], root) for f in files]


def recording(path: Path, text: str, speaker: str, root: Path) -> Recording:
    audio, rate = load_audio(path)
    return Recording(audio, rate, text, speaker, path.relative_to(root).as_posix())
