"""Text for the LLM-adaptation labs (n9, n10): an English prose domain, a Python code domain, and
instruction/response records in the Alpaca format.

Embedded (every Python install ships them): prose is the language reference's topic pages
(`pydoc_data.topics`, what `help("assert")` prints) followed by the standard library's docstrings;
code is the standard library's own source files, in sorted order, tests excluded. Real: tinyshakespeare
and the-verdict (a short story) as prose, and instruction-data.json (1,100 records, Raschka's "LLMs from
scratch", ch. 7); offline, the instructions are generated from templates (unit conversions, plurals,
antonyms, capitals, sums, sorting, upper-casing, reversing) whose answers are computed.
Every text is split 90/10 by position; the instruction records are shuffled with a fixed seed and split
85/5/10 (935/55/110 for the real file), so every run and lab holds out the same 110 test records.
"""

from __future__ import annotations

import json
import random
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.data.shakespeare import TINYSHAKESPEARE, TokenStream, stdlib_docstrings, stdlib_files
from dlpractice.errors import DlpError

THE_VERDICT = RealFile(
    name="the-verdict.txt",
    url="https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch02/01_main-chapter-code/the-verdict.txt",
    sha256="b41e41a68f0398a3154ae69e2e4c0e2694e17fe0d66730536837f1b01935b31f",
    places=("the-verdict/the-verdict.txt", "the-verdict.txt"),
)
INSTRUCTIONS = RealFile(
    name="instruction-data.json",
    url="https://raw.githubusercontent.com/rasbt/LLMs-from-scratch/main/ch07/01_main-chapter-code/instruction-data.json",
    sha256="7e09a9af353722ca15c18bc580f093f9c39d3178335a75177319cb1e1d163944",
    places=("instructions/instruction-data.json", "instruction-data.json"),
)
EOT = "<|endoftext|>"  # between documents, and the end of every response
TRAIN_FRACTION = 0.9
PROSE_CHARS = 900_000
CODE_CHARS = 1_000_000
SPLIT_SEED = 123


def pydoc_topics() -> str:
    """The language reference's topic pages (~0.5-0.8 MB of English with a little code), sorted by topic."""
    from pydoc_data.topics import topics

    return "\n\n".join(topics[name].strip() for name in sorted(topics))


def embedded_prose(limit: int = PROSE_CHARS) -> str:
    """pydoc's topics, then the standard library's docstrings until `limit` characters."""
    topics = pydoc_topics()[:limit]
    rest = limit - len(topics)
    return (topics + "\n\n" + stdlib_docstrings(rest))[:limit] if rest > 0 else topics


def stdlib_source(limit: int = CODE_CHARS) -> str:
    """The standard library's .py files (ASCII ones) in sorted order, separated by EOT, cut at `limit`."""
    parts, total = [], 0
    for path in stdlib_files(Path(sysconfig.get_paths()["stdlib"])):
        try:
            source = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        if source.strip() and source.isascii():
            parts.append(source)
            total += len(source)
        if total >= limit:
            break
    return EOT.join(parts)[:limit]


@dataclass(frozen=True)
class Domain:
    """One domain's text, split 90/10 by position, and where it came from."""

    name: str
    train: str
    val: str
    origin: str

    @classmethod
    def split(cls, name: str, text: str, origin: str) -> Domain:
        n = int(TRAIN_FRACTION * len(text))
        return cls(name, text[:n], text[n:], origin)


def load_prose(source: str = "auto", data_dir: str | Path | None = None) -> tuple[Domain, str]:
    """The old domain, and the source used: tinyshakespeare + the-verdict (real) or pydoc + docstrings."""
    if source == "auto":
        source = "real" if find_local(TINYSHAKESPEARE, data_dir) else "embedded"
    if source == "real":
        paths = [locate(spec, data_dir) for spec in (TINYSHAKESPEARE, THE_VERDICT)]
        text = EOT.join(p.read_text(encoding="utf-8") for p in paths)
        return Domain.split("prose", text, " + ".join(map(str, paths))), source
    if source == "embedded":
        origin = (
            f"pydoc_data.topics and standard-library docstrings of Python {sysconfig.get_python_version()}"
        )
        return Domain.split("prose", embedded_prose(), origin), source
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


def load_code() -> Domain:
    """The new domain: Python source (the installed standard library's; the same for every data source)."""
    origin = f"standard-library source of Python {sysconfig.get_python_version()}"
    return Domain.split("code", stdlib_source(), origin)


class ReplayStream:
    """Continued pre-training batches: windows of the new domain, with a share `replay` of each batch's
    rows drawn from the old domain (rehearsal). Evaluation: the new domain's fixed windows."""

    def __init__(self, new: TokenStream, old: TokenStream, replay: float):
        self.new, self.old, self.replay = new, old, replay

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        """(inputs, targets), each (B, T): round(replay * B) rows of old text after the rest, of new text."""
        # BEGIN EXERCISE n9.1: draw the new-domain windows, then the replayed old-domain ones, and stack them
        n_old = round(self.replay * batch_size)
        x, y = self.new.windows("train", batch_size - n_old, generator)  # (B - n_old, T) each
        if n_old == 0:
            return x, y
        old_x, old_y = self.old.windows("train", n_old, generator)  # (n_old, T) each
        return torch.cat([x, old_x]), torch.cat([y, old_y])
        # END EXERCISE

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        return self.new.eval_batches(split)


# ---- instructions (n10) ----------------------------------------------------------------------------------

PREAMBLE = (
    "Below is an instruction that describes a task. "
    "Write a response that appropriately completes the request."
)


@dataclass(frozen=True)
class Instruction:
    instruction: str
    input: str
    output: str


def alpaca_prompt(record: Instruction) -> str:
    """The Alpaca prompt, up to and including the response header (an input section when there is one)."""
    text = f"{PREAMBLE}\n\n### Instruction:\n{record.instruction}"
    if record.input:
        text += f"\n\n### Input:\n{record.input}"
    return text + "\n\n### Response:\n"


@dataclass(frozen=True)
class InstructionSplits:
    train: list[Instruction]
    val: list[Instruction]
    test: list[Instruction]
    source: str
    origin: str

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split": f"seeded shuffle ({SPLIT_SEED}), 85/5/10",
            "n_train": len(self.train),
            "n_val": len(self.val),
            "n_test": len(self.test),
        }


def split_records(records: list[Instruction], source: str, origin: str) -> InstructionSplits:
    """Shuffle with SPLIT_SEED, then 85 % train, 10 % test, the rest validation (935/110/55 of 1,100)."""
    shuffled = list(records)
    random.Random(SPLIT_SEED).shuffle(shuffled)
    n_train, n_test = int(0.85 * len(shuffled)), int(0.1 * len(shuffled))
    train, test = shuffled[:n_train], shuffled[n_train : n_train + n_test]
    return InstructionSplits(train, shuffled[n_train + n_test :], test, source, origin)


def read_instructions(path: Path) -> list[Instruction]:
    """Records of an Alpaca-style JSON list ({"instruction", "input", "output"}); a bad file is one line."""
    try:
        rows = json.loads(path.read_text(encoding="utf-8"))
        return [Instruction(r["instruction"], r.get("input", ""), r["output"]) for r in rows]
    except (ValueError, KeyError, TypeError) as err:
        raise DlpError(f"{path} is not a JSON list of instruction/input/output records: {err!r}") from None


def load_instructions(
    source: str = "auto", data_dir: str | Path | None = None, n_generated: int = 1100
) -> InstructionSplits:
    """instruction-data.json (real) or generated records (embedded), split 85/5/10."""
    if source == "auto":
        source = "real" if find_local(INSTRUCTIONS, data_dir) else "embedded"
    if source == "real":
        path = locate(INSTRUCTIONS, data_dir)
        return split_records(read_instructions(path), source, str(path))
    if source == "embedded":
        records = generate_instructions(n_generated, random.Random(0))
        return split_records(records, source, f"{n_generated} generated from templates (data/prose.py)")
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


PLURALS = {"cat": "cats", "box": "boxes", "city": "cities", "child": "children", "mouse": "mice"}
PLURALS |= {"leaf": "leaves", "book": "books", "bus": "buses", "tooth": "teeth", "day": "days"}
ANTONYMS = {"hot": "cold", "big": "small", "fast": "slow", "happy": "sad", "early": "late", "light": "dark"}
ANTONYMS |= {"open": "closed", "full": "empty", "strong": "weak", "young": "old", "high": "low"}
CAPITALS = {"France": "Paris", "Japan": "Tokyo", "Italy": "Rome", "Spain": "Madrid", "Egypt": "Cairo"}
CAPITALS |= {"Canada": "Ottawa", "Kenya": "Nairobi", "Peru": "Lima", "Norway": "Oslo", "Greece": "Athens"}
NOUNS = ("dog", "teacher", "river", "child", "farmer", "bird", "doctor", "train")
VERBS = ("sees", "follows", "likes", "finds", "helps", "watches")
FRUITS = ("apple", "pear", "fig", "plum", "grape", "lemon", "mango", "peach", "cherry", "melon")


def sentence(rng: random.Random) -> str:
    a, b = rng.sample(NOUNS, 2)
    return f"The {a} {rng.choice(VERBS)} the {b}."


def generate_instruction(rng: random.Random) -> Instruction:
    """One record from one of eight templates; the answer is computed, so every record is correct."""
    kind = rng.randrange(8)
    if kind == 0:
        km = rng.randint(2, 90)
        return Instruction(
            f"Convert {km} kilometers to meters.", "", f"{km} kilometers is {km * 1000} meters."
        )
    if kind == 1:
        word = rng.choice(list(PLURALS))
        return Instruction(
            "What is the plural form of the word?", word, f"The plural of {word} is {PLURALS[word]}."
        )
    if kind == 2:
        word = rng.choice(list(ANTONYMS))
        return Instruction(
            f"What is the opposite of '{word}'?", "", f"The opposite of '{word}' is '{ANTONYMS[word]}'."
        )
    if kind == 3:
        country = rng.choice(list(CAPITALS))
        return Instruction(
            f"What is the capital of {country}?", "", f"The capital of {country} is {CAPITALS[country]}."
        )
    if kind == 4:
        a, b = rng.randint(1, 50), rng.randint(1, 50)
        return Instruction("Add the two numbers.", f"{a} and {b}", f"The sum of {a} and {b} is {a + b}.")
    if kind == 5:
        words = rng.sample(FRUITS, rng.randint(3, 5))
        return Instruction(
            "Sort the following words alphabetically.", ", ".join(words), ", ".join(sorted(words))
        )
    text = sentence(rng)
    if kind == 6:
        return Instruction("Rewrite the sentence in uppercase letters.", text, text.upper())
    words = text.rstrip(".").split()
    return Instruction("Reverse the order of the words in the sentence.", text, " ".join(words[::-1]) + ".")


def generate_instructions(n: int, rng: random.Random) -> list[Instruction]:
    return [generate_instruction(rng) for _ in range(n)]
