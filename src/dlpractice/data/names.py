"""The names dataset for makemore (labs l1-l7): embedded census names or makemore's names.txt.

Embedded: the first names shipped by the `names` package (US census, 5,163 after lower-casing and
de-duplication). Real: makemore's names.txt (32,033 names), found on disk or downloaded with a checksum.
Both are split once, 80/10/10, with a fixed seed that does not depend on the run's seed; or (l7, to
compare with makemore's published test loss) as makemore.py splits them: its own 1,000 test names.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import torch

from dlpractice.data.fetch import RealFile, locate
from dlpractice.errors import DlpError

NAMES_TXT = RealFile(
    name="names.txt",
    url="https://raw.githubusercontent.com/karpathy/makemore/988aa59e4d8fefa526d06f3b453ad116258398d4/names.txt",
    sha256="0a30b5557f192f32ab962680889aac5f6fda0f4cecf40a6d0b5694f58ea8cc4d",
    places=("names/names.txt", "names.txt"),
)
SPLIT_SEED = 42
SPLIT_FRACTIONS = (0.8, 0.1, 0.1)
MAKEMORE_SEED, MAKEMORE_TEST = 3407, 1000  # makemore.py: torch.manual_seed(3407), min(1000, 10 %) to test
SPLITS = ("80/10/10", "makemore")
BOUNDARY = "."  # token 0: marks both the start and the end of a name


@dataclass(frozen=True)
class NameSplits:
    train: list[str]
    val: list[str]
    test: list[str]
    source: str  # "embedded" or "real"
    origin: str  # the package or file the names came from
    split: str = "80/10/10"  # or "makemore"

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split_seed": SPLIT_SEED if self.split == "80/10/10" else MAKEMORE_SEED,
            "split": self.split,
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


def embedded_names() -> tuple[list[str], str]:
    """Census first names from the `names` package, lower-cased, de-duplicated, sorted."""
    import names as names_package

    folder = Path(names_package.__file__).parent
    words = set()
    for file in ("dist.female.first", "dist.male.first"):
        for line in (folder / file).read_text().splitlines():
            if line.strip():
                words.add(line.split()[0].lower())
    return sorted(words), f"names package {names_package.__version__} (US census first names)"


def real_names(data_dir: str | Path | None = None) -> tuple[list[str], str]:
    path = locate(NAMES_TXT, data_dir)
    words = [w.strip() for w in path.read_text(encoding="utf-8").splitlines() if w.strip()]
    return words, str(path)


def load_names(
    source: str = "auto", data_dir: str | Path | None = None, split: str = "80/10/10"
) -> NameSplits:
    """Load and split the names. `auto` takes the real file when it is already on disk, else embedded."""
    if split not in SPLITS:
        raise DlpError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    from dlpractice.data.fetch import find_local

    if source == "auto":
        source = "real" if find_local(NAMES_TXT, data_dir) else "embedded"
    if source == "real":
        words, origin = real_names(data_dir)
    elif source == "embedded":
        words, origin = embedded_names()
    else:
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    train, val, test = split_words(words) if split == "80/10/10" else makemore_split(words)
    return NameSplits(train, val, test, source, origin, split)


def split_words(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """A fixed, seeded 80/10/10 split (the seed is SPLIT_SEED, not the run's seed)."""
    shuffled = list(words)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    n_train = int(SPLIT_FRACTIONS[0] * len(shuffled))
    n_val = int(SPLIT_FRACTIONS[1] * len(shuffled))
    return shuffled[:n_train], shuffled[n_train : n_train + n_val], shuffled[n_train + n_val :]


def makemore_split(words: list[str]) -> tuple[list[str], list[str], list[str]]:
    """makemore.py's split (`create_datasets` after `torch.manual_seed(3407)`): its test names exactly.

    makemore trains on all the others and picks its checkpoint by test loss; here the last 1,000 of
    its training names are held out for validation instead, so the test names stay unseen.
    """
    n_test = min(MAKEMORE_TEST, int(len(words) * 0.1))
    order = torch.randperm(len(words), generator=torch.Generator().manual_seed(MAKEMORE_SEED)).tolist()
    shuffled = [words[i] for i in order]
    return shuffled[: -2 * n_test], shuffled[-2 * n_test : -n_test], shuffled[-n_test:]


class Vocab:
    """Characters <-> integer ids; id 0 is the boundary token '.'."""

    def __init__(self, chars: list[str]):
        self.chars = [BOUNDARY, *sorted(set(chars) - {BOUNDARY})]
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_words(cls, words: list[str]) -> Vocab:
        chars = {c for w in words for c in w}
        if BOUNDARY in chars:
            raise DlpError(f"names may not contain the boundary character {BOUNDARY!r}")
        return cls(sorted(chars))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, word: str) -> list[int]:
        return [self.stoi[c] for c in word]

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


def context_windows(words: list[str], vocab: Vocab, block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (previous `block_size` characters -> next character) pair, padded with the boundary.

    For block_size=3, "emma" gives ... -> e, ..e -> m, .em -> m, emm -> a, mma -> '.'.
    Returns X (N, block_size) and Y (N,) as int64.
    """
    xs, ys = [], []
    for word in words:
        context = [0] * block_size
        for token in [*vocab.encode(word), 0]:
            xs.append(context)
            ys.append(token)
            context = [*context[1:], token]
    return torch.tensor(xs, dtype=torch.long).view(-1, block_size), torch.tensor(ys, dtype=torch.long)


def load_vocab(run_dir: Path) -> Vocab:
    """The vocabulary a finished run saved (vocab.json), so sampling needs no dataset."""
    import json

    chars = json.loads((Path(run_dir) / "vocab.json").read_text())
    return Vocab(chars[1:])
