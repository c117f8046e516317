"""A character corpus for l8 (nanoGPT): tinyshakespeare, or Python's own docstrings offline.

Real: Karpathy's tinyshakespeare `input.txt` (1,115,394 characters), found on disk or downloaded with a
checksum. Embedded: the docstrings of the standard library's own source files (modules, classes and
functions, read with `ast` without importing anything), in sorted file order, cut at ~1 MB. Either text
is split 90/10 by position, as nanoGPT does: the first 90% trains, the last 10% validates.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

TINYSHAKESPEARE = RealFile(
    name="tinyshakespeare.txt",
    url="https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d99e4/data/tinyshakespeare/input.txt",
    sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
    places=("tinyshakespeare/input.txt", "input.txt"),
)
TRAIN_FRACTION = 0.9
EMBEDDED_CHARS = 1_000_000
SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__"}


# a triple-quoted string at the start of a file (after comments) or right after a `def ...:`/`class ...:` line
DOCSTRING = re.compile(r'(?:\A(?:[ \t]*(?:#[^\n]*)?\n)*|:[ \t]*\n)[ \t]*[rRuU]?"""(.*?)"""', re.S)


def stdlib_files(root: Path) -> Iterator[Path]:
    """The standard library's .py files in sorted order, without tests or installed packages."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS)
        yield from (Path(folder) / f for f in sorted(files) if f.endswith(".py"))


@functools.lru_cache(maxsize=1)
def stdlib_docstrings(limit: int = EMBEDDED_CHARS) -> str:
    """Docstrings of the standard library's own source, in file order, joined by blank lines.

    Read as text, never imported (a regular expression: parsing every file with `ast` took seconds), then
    dedented. ASCII only, so the vocabulary stays near tinyshakespeare's.
    """
    root = Path(sysconfig.get_paths()["stdlib"])
    parts, total = [], 0
    for path in stdlib_files(root):
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for match in DOCSTRING.finditer(source):
            doc = inspect.cleandoc(match.group(1))
            if doc and doc.isascii():
                parts.append(doc)
                total += len(doc) + 2
        if total >= limit:
            break
    return "\n\n".join(parts)[:limit]


@dataclass(frozen=True)
class Corpus:
    train: str
    val: str
    source: str  # "embedded" or "real"
    origin: str

    @property
    def chars(self) -> list[str]:
        return sorted(set(self.train + self.val))

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split": "90/10 by position",
            "n_train_chars": len(self.train),
            "n_val_chars": len(self.val),
        }


def load_corpus(source: str = "auto", data_dir: str | Path | None = None) -> Corpus:
    """The text split 90/10. `auto` takes tinyshakespeare when it is already on disk, else embedded."""
    if source == "auto":
        source = "real" if find_local(TINYSHAKESPEARE, data_dir) else "embedded"
    if source == "real":
        path = locate(TINYSHAKESPEARE, data_dir)
        text, origin = path.read_text(encoding="utf-8"), str(path)
    elif source == "embedded":
        text = stdlib_docstrings()
        origin = f"docstrings of the Python {sysconfig.get_python_version()} standard library"
    else:
        raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
    n = int(TRAIN_FRACTION * len(text))
    return Corpus(text[:n], text[n:], source, origin)


class CharVocab:
    """Characters <-> ids, sorted, as nanoGPT's shakespeare_char prepare.py builds them."""

    def __init__(self, chars: list[str]):
        self.chars = list(chars)
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.stoi[c] for c in text], dtype=torch.long)

    def decode(self, ids: list[int]) -> str:
        return "".join(self.chars[i] for i in ids)


class TokenStream:
    """One long id tensor per split; fit() draws random (B, T) windows and their next-token targets.

    Training windows come from fit()'s generator. Evaluation scores `eval_iters` batches of random windows
    drawn with a fixed seed, the same windows every time (nanoGPT's estimate_loss, made repeatable).
    """

    def __init__(
        self,
        splits: dict[str, torch.Tensor],
        block_size: int,
        eval_iters: int = 20,
        eval_batch_size: int = 64,
        eval_seed: int = 0,
    ):
        for name, ids in splits.items():
            if len(ids) <= block_size + 1:
                raise DlpError(f"split {name!r} has {len(ids)} tokens, too few for block_size {block_size}")
        self.splits, self.block_size = splits, block_size
        self.eval_iters, self.eval_batch_size, self.eval_seed = eval_iters, eval_batch_size, eval_seed

    def windows(self, split: str, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        ids = self.splits[split]
        starts = torch.randint(len(ids) - self.block_size - 1, (batch_size, 1), generator=generator)
        index = starts + torch.arange(self.block_size)  # (B, T)
        return ids[index], ids[index + 1]

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return self.windows("train", batch_size, generator)

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        generator = torch.Generator().manual_seed(self.eval_seed)
        for _ in range(self.eval_iters):
            yield self.windows(split, self.eval_batch_size, generator)
