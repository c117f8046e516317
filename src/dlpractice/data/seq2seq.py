"""Generated sequence-to-sequence tasks for labs n4 and n5: reverse, sort, add, date normalisation.

Every example is characters in, characters out: the source starts with a task token (one model learns
all four tasks) and ends with </s>; the target starts with <s> and ends with </s>. Reverse/sort
lengths are drawn with probability proportional to the length: long sources, where repeated letters
make sorting hard, are most of the data. Sources of the evaluation splits never occur in training.
`test_long` holds reverse and sort at lengths beyond the training range (up to +20 %), to measure
length generalisation. With `narrow_alphabets`, half the reverse/sort training sources use a random
subset of the letters (1 to 26 of them), so long runs of one letter, which a sort must count, are common
in training; evaluation always draws from all 26. Everything is generated from a fixed seed: there is no
download and no "real" version of these tasks.
"""

from __future__ import annotations

import datetime as dt
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass

import torch

SPECIALS = ("<pad>", "<s>", "</s>")
TASKS = ("reverse", "sort", "add", "date")
CHARS = "0123456789abcdefghijklmnopqrstuvwxyz +-/,"
PAD, BOS, EOS = 0, 1, 2
VOCAB = [*SPECIALS, *(f"<{t}>" for t in TASKS), *CHARS]
INDEX = {token: i for i, token in enumerate(VOCAB)}
LETTERS = "abcdefghijklmnopqrstuvwxyz"
DATE_FORMATS = ("%d %B %Y", "%B %d, %Y", "%d/%m/%Y", "%b %d %Y", "%A %d %B %Y", "%d.%m.%y")


def make_example(task: str, length: int, rng: random.Random, letters: str = LETTERS) -> tuple[str, str]:
    """One (source, target) pair; `length` is the number of symbols for reverse/sort, digits for add."""
    if task in ("reverse", "sort"):
        text = "".join(rng.choice(letters) for _ in range(length))
        return text, text[::-1] if task == "reverse" else "".join(sorted(text))
    if task == "add":
        a, b = (rng.randrange(10 ** rng.randint(1, length)) for _ in range(2))
        return f"{a}+{b}", str(a + b)
    if task == "date":
        day = dt.date(1950, 1, 1) + dt.timedelta(days=rng.randrange(100 * 365))
        text = day.strftime(rng.choice(DATE_FORMATS)).lower().replace(".", "/")
        return text, day.isoformat()
    raise ValueError(f"unknown task {task!r}")


def encode(task: str, source: str, target: str) -> tuple[list[int], list[int]]:
    return [INDEX[f"<{task}>"], *(INDEX[c] for c in source), EOS], [BOS, *(INDEX[c] for c in target), EOS]


def decode(ids: list[int]) -> str:
    """Characters of an id sequence, stopping at </s> and skipping other specials."""
    out = []
    for i in ids:
        if i == EOS:
            break
        if i >= len(SPECIALS) + len(TASKS):
            out.append(VOCAB[i])
    return "".join(out)


@dataclass
class Example:
    task: str
    source: str
    target: str
    src: list[int]
    tgt: list[int]


def collate(examples: list[Example]) -> tuple[torch.Tensor, ...]:
    """Padded (src (B, S), src_len (B,), tgt_in (B, T), tgt_out (B, T)); tgt_out is tgt_in shifted by one."""
    s, t = max(len(e.src) for e in examples), max(len(e.tgt) for e in examples)
    src = torch.full((len(examples), s), PAD)
    tgt = torch.full((len(examples), t), PAD)
    for i, e in enumerate(examples):
        src[i, : len(e.src)] = torch.tensor(e.src)
        tgt[i, : len(e.tgt)] = torch.tensor(e.tgt)
    src_len = torch.tensor([len(e.src) for e in examples])
    return src, src_len, tgt[:, :-1], tgt[:, 1:]


class ExampleBatches:
    """fit()'s batches (src, src_len, tgt_in, targets) from `splits` of examples: random training batches,
    evaluation batches in order."""

    splits: dict[str, list[Example]]
    eval_batch_size: int

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        train = self.splits["train"]
        index = torch.randint(len(train), (batch_size,), generator=generator).tolist()
        return collate([train[i] for i in index])

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        examples = self.splits[split]
        for start in range(0, len(examples), self.eval_batch_size):
            yield collate(examples[start : start + self.eval_batch_size])


class Seq2SeqTasks(ExampleBatches):
    """The splits, and the batches fit() draws: (src, src_len, tgt_in, targets)."""

    def __init__(
        self,
        tasks: tuple[str, ...] = TASKS,
        n_train: int = 20000,
        n_eval: int = 200,
        min_len: int = 1,
        max_len: int = 20,
        add_digits: int = 4,
        seed: int = 1234,
        eval_batch_size: int = 500,
        narrow_alphabets: bool = False,
    ):
        rng = random.Random(seed)
        self.tasks, self.max_len, self.eval_batch_size = tasks, max_len, eval_batch_size
        self.narrow_alphabets = narrow_alphabets
        self.long_range = (max_len + 1, max(max_len + 1, math.ceil(1.2 * max_len)))

        def training_letters() -> str:
            if not narrow_alphabets or rng.random() < 0.5:
                return LETTERS
            return "".join(rng.sample(LETTERS, rng.randint(1, len(LETTERS))))

        def draw(
            task: str, n: int, lo: int, hi: int, exclude: set[str], train: bool = False
        ) -> list[Example]:
            out, tries = [], 0
            while len(out) < n and tries < 50 * n:
                tries += 1
                lengths = range(lo, hi + 1)
                length = add_digits if task == "add" else rng.choices(lengths, weights=lengths)[0]
                letters = training_letters() if train and task in ("reverse", "sort") else LETTERS
                source, target = make_example(task, length, rng, letters)
                if (task, source) not in exclude:
                    exclude.add((task, source))
                    out.append(Example(task, source, target, *encode(task, source, target)))
            return out

        held_out: set = set()
        self.splits: dict[str, list[Example]] = {"val": [], "test": [], "test_long": [], "train": []}
        for task in tasks:
            for split in ("val", "test"):
                self.splits[split] += draw(task, n_eval, min_len, max_len, held_out)
            if task in ("reverse", "sort"):
                self.splits["test_long"] += draw(task, n_eval, *self.long_range, held_out)
        seen = set(held_out)
        per_task = n_train // len(tasks)
        for task in tasks:
            self.splits["train"] += draw(task, per_task, min_len, max_len, seen, train=True)

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": "embedded",
            "data_origin": "generated seq2seq tasks (dlpractice.data.seq2seq)",
            "tasks": ",".join(self.tasks),
            "train_lengths": f"1-{self.max_len}",
            "train_alphabets": "half of reverse/sort narrow" if self.narrow_alphabets else "26 letters",
            "long_lengths": f"{self.long_range[0]}-{self.long_range[1]}",
            **{f"n_{split}": len(examples) for split, examples in self.splits.items()},
        }
