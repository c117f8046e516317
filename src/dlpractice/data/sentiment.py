"""Sentences labelled negative (0) or positive (1) for n6: rt-polarity, or a generated set offline.

Real: Pang & Lee's sentence polarity dataset v1.0 (5,331 positive and 5,331 negative snippets of Rotten
Tomatoes reviews, lower-cased and tokenised), published at
https://www.cs.cornell.edu/people/pabo/movie-review-data/rt-polaritydata.tar.gz. The archive is
downloaded from the copy Hugging Face's `rotten_tomatoes` loader reads, whose SHA-256 that loader
publishes. Its two files are Windows-1252 text; copies converted to UTF-8 exist too (the shared data
folder here has one), so both encodings are read. Extracted files in the data directory are checked
against the checksum of their text, whatever the encoding.
Embedded: a generated set (templates filled from word lists: subjects, sentiment words, negation,
"but" and "although" clauses, neutral padding), with a few labels flipped at random as annotators
disagree. It is generated, never real, and says so in every run it feeds.
Either source is split once with SPLIT_SEED: 10 % test, then 10 % of the rest for validation.
"""

from __future__ import annotations

import hashlib
import random
import re
import tarfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from dlpractice.data import phrases
from dlpractice.data.batching import TensorData
from dlpractice.data.fetch import RealFile, data_dir, find_local, locate
from dlpractice.errors import DlpError

RT_ARCHIVE = RealFile(
    name="rt-polaritydata.tar.gz",
    url="https://storage.googleapis.com/seldon-datasets/sentence_polarity_v1/rt-polaritydata.tar.gz",
    sha256="a05befe52aafda71d458d188a1c54506a998b1308613ba76bbda2e5029409ce9",
    places=("rt-polarity/rt-polaritydata.tar.gz", "rt-polaritydata.tar.gz"),
)
# The extracted files: where they may lie in a data directory, and the SHA-256 of their text (UTF-8).
RT_FILES = {
    "neg": ("2d11cfbc790f1cd96d78339f41ce53ced1efa83cd22d37d6788fa3fe3d17e2fd", "rt-polarity.neg"),
    "pos": ("4134882974a28d0c7b5151256f0e33a6169984ee7372c279e673f1114f475d58", "rt-polarity.pos"),
}
RT_FOLDERS = ("rt-polarity", "rt-polaritydata", ".")
LABELS = ("negative", "positive")
SPLIT_SEED = 42
TEST_FRACTION = 0.1
VAL_FRACTION = 0.1  # of what the test split leaves


@dataclass(frozen=True)
class Sentences:
    """Texts and labels (indices into `classes`) per split, and where they came from."""

    texts: dict[str, list[str]]  # "train", "val", "test"
    labels: dict[str, list[int]]
    source: str  # "embedded" or "real"
    origin: str
    classes: tuple[str, ...] = LABELS  # label i means classes[i]

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split_seed": SPLIT_SEED,
            "split": "81/9/10 (test 10 %, then val 10 % of the rest)",
            **{f"n_{split}": len(texts) for split, texts in self.texts.items()},
        }


def decode(raw: bytes) -> str:
    """UTF-8 when it is, else Windows-1252 (the original archive: curly quotes and dashes in 0x80-0x9f)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("cp1252")


def lines_of(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def find_extracted(directory: str | Path | None = None) -> dict[str, Path] | None:
    """rt-polarity.{neg,pos} in the data directory, their text checked; None when either is missing."""
    root = data_dir(directory)
    if root is None:
        return None
    found = {}
    for kind, (text_sha, name) in RT_FILES.items():
        path = next((root / f / name for f in RT_FOLDERS if (root / f / name).is_file()), None)
        if path is None:
            return None
        actual = hashlib.sha256(decode(path.read_bytes()).encode("utf-8")).hexdigest()
        if actual != text_sha:
            raise DlpError(
                f"{path} is not the sentence polarity dataset v1.0 (text sha256 {actual[:12]}…); "
                f"replace it with the file from {RT_ARCHIVE.url}"
            )
        found[kind] = path
    return found


def read_archive(path: Path) -> dict[str, str]:
    """The two files' text from rt-polaritydata.tar.gz (members rt-polaritydata/rt-polarity.{neg,pos})."""
    texts = {}
    with tarfile.open(path, "r:gz") as archive:
        for member in archive.getmembers():
            kind = member.name.rsplit(".", 1)[-1]
            if member.isfile() and Path(member.name).name == RT_FILES.get(kind, ("", ""))[1]:
                texts[kind] = decode(archive.extractfile(member).read())
    if set(texts) != set(RT_FILES):
        raise DlpError(f"{path} lacks rt-polarity.neg or rt-polarity.pos")
    return texts


def real_sentences(directory: str | Path | None = None) -> tuple[list[str], list[int], str]:
    """All 10,662 sentences and labels, from extracted files or the archive (found or downloaded)."""
    extracted = find_extracted(directory)
    if extracted:
        texts = {kind: decode(path.read_bytes()) for kind, path in extracted.items()}
        origin = f"sentence polarity v1.0: {extracted['pos'].parent}"
    else:
        try:
            archive = locate(RT_ARCHIVE, directory)
        except DlpError as error:
            raise DlpError(f"{error} (or its two extracted files in <data dir>/rt-polarity/)") from None
        texts, origin = read_archive(archive), f"sentence polarity v1.0: {archive}"
    neg, pos = lines_of(texts["neg"]), lines_of(texts["pos"])
    return neg + pos, [0] * len(neg) + [1] * len(pos), origin


# The generated set: what a review says about which part of a film, in which words.
SUBJECTS = phrases(
    "the film, this movie, the plot, the acting, the script, the soundtrack, the ending, the cast, "
    "the story, the dialogue, the pacing, the photography, the sequel, the finale"
)
POSITIVE = phrases(
    "wonderful, brilliant, moving, charming, funny, gripping, beautiful, clever, delightful, powerful, "
    "memorable, touching, engaging, fresh, superb, witty"
)
NEGATIVE = phrases(
    "dull, boring, clumsy, tedious, predictable, bland, awful, lifeless, messy, shallow, forgettable, "
    "tiresome, pointless, silly, weak, stale"
)
VERBS = {1: ("love", "enjoy", "admire", "like"), 0: ("hate", "dislike", "resent", "despise")}
INTENSIFIERS = ("", "", "very", "truly", "rather", "quite", "utterly", "surprisingly", "remarkably")
NEGATIONS = ("is not", "isn't", "is never", "is hardly", "is far from")
PADDING = phrases(
    "from start to finish, at nearly two hours, for a summer release, as a sequel, in its own way, "
    "despite a famous cast, for most of its running time, on the big screen"
)


def clause(rng: random.Random, polarity: int, negated: bool) -> str:
    """'<subject> is <adjective>' whose meaning is `polarity` (a negated clause uses the other word list)."""
    words = (NEGATIVE if polarity else POSITIVE) if negated else (POSITIVE if polarity else NEGATIVE)
    adjective = rng.choice(words)
    copula = rng.choice(NEGATIONS) if negated else "is " + rng.choice(INTENSIFIERS)
    return " ".join(f"{rng.choice(SUBJECTS)} {copula} {adjective}".split())


def generated_sentence(rng: random.Random) -> tuple[str, int]:
    """One sentence and its label; in 'x , but y' and 'although x , y' the second clause decides."""
    label, form = rng.randrange(2), rng.randrange(5)
    if form == 0:
        text = clause(rng, label, negated=False)
    elif form == 1:
        text = clause(rng, label, negated=True)
    elif form == 2:
        first = clause(rng, 1 - label, rng.random() < 0.3)
        text = f"{first} , but {clause(rng, label, rng.random() < 0.3)}"
    elif form == 3:
        first = clause(rng, 1 - label, rng.random() < 0.3)
        text = f"although {first} , {clause(rng, label, rng.random() < 0.3)}"
    else:  # "i liked ..." or "i didn't like ..."
        negated = rng.random() < 0.4
        verb = rng.choice(VERBS[1 - label] if negated else VERBS[label])
        verb = f"didn't {verb}" if negated else verb + ("d" if verb.endswith("e") else "ed")
        text = f"i {verb} {rng.choice(SUBJECTS)}"
    if rng.random() < 0.5:
        text = f"{text} {rng.choice(PADDING)}" if rng.random() < 0.5 else f"{rng.choice(PADDING)} , {text}"
    return f"{text} .", label


def generated_sentences(n: int, label_noise: float, seed: int = SPLIT_SEED) -> tuple[list[str], list[int]]:
    """n generated sentences; a share `label_noise` of the labels is flipped at random."""
    rng = random.Random(seed)
    texts, labels = [], []
    for _ in range(n):
        text, label = generated_sentence(rng)
        texts.append(text)
        labels.append(1 - label if rng.random() < label_noise else label)
    return texts, labels


def split(
    texts: list[str], labels: list[int], source: str, origin: str, classes: tuple[str, ...] = LABELS
) -> Sentences:
    """A fixed, seeded split: 10 % test, then 10 % of the rest for validation."""
    order = list(range(len(texts)))
    random.Random(SPLIT_SEED).shuffle(order)
    n_test = round(TEST_FRACTION * len(order))
    n_val = round(VAL_FRACTION * (len(order) - n_test))
    parts = {"test": order[:n_test], "val": order[n_test : n_test + n_val], "train": order[n_test + n_val :]}
    return Sentences(
        texts={k: [texts[i] for i in idx] for k, idx in parts.items()},
        labels={k: [labels[i] for i in idx] for k, idx in parts.items()},
        source=source,
        origin=origin,
        classes=classes,
    )


def load_sentences(
    source: str = "auto",
    directory: str | Path | None = None,
    n_generated: int = 6000,
    label_noise: float = 0.05,
) -> Sentences:
    """rt-polarity (`real`), the generated set (`embedded`), or `auto`: real when on disk, else generated."""
    if source == "auto":
        on_disk = find_extracted(directory) or find_local(RT_ARCHIVE, directory)
        source = "real" if on_disk else "embedded"
    if source == "real":
        texts, labels, origin = real_sentences(directory)
        return split(texts, labels, "real", origin)
    if source == "embedded":
        texts, labels = generated_sentences(n_generated, label_noise)
        origin = f"generated: {n_generated} template sentences, {label_noise:.0%} labels flipped"
        return split(texts, labels, "embedded", origin)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


# Words for the models trained from scratch: lower-case, "n't" and "'s" split off as in the Penn Treebank.
TOKEN = re.compile(r"\w+(?=n't)|n't|'\w+|\w+|[^\w\s]")
NEGATION_WORDS = {"not", "n't", "no", "never", "nothing", "nobody", "none", "neither", "nor", "hardly"}
PAD, UNK = 0, 1


def tokenize(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


def has_negation(text: str) -> bool:
    return not NEGATION_WORDS.isdisjoint(tokenize(text))


def characters(text: str) -> list[str]:
    return list(text.lower())


class WordVocab:
    """Training words seen at least `min_count` times; id 0 pads, id 1 stands for every other word.

    `split` cuts a text into its units: words by default, `characters` for a character-level model.
    """

    def __init__(self, texts: list[str], min_count: int = 1, split: Callable[[str], list[str]] = tokenize):
        self.split = split
        counts = Counter(word for text in texts for word in split(text))
        kept = sorted((w for w, n in counts.items() if n >= min_count), key=lambda w: (-counts[w], w))
        self.words = ["<pad>", "<unk>", *kept]
        self.stoi = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def from_words(cls, words: list[str], split: Callable[[str], list[str]] = tokenize) -> WordVocab:
        """The vocabulary a run saved (its `words`, padding and <unk> first), to read new sentences."""
        vocab = cls([], split=split)
        vocab.words, vocab.stoi = list(words), {w: i for i, w in enumerate(words)}
        return vocab

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, texts: list[str], max_len: int) -> torch.Tensor:
        """(N, T) ids, right-padded with PAD to the longest text, cut at `max_len` units."""
        rows = [[self.stoi.get(w, UNK) for w in self.split(text)][:max_len] or [UNK] for text in texts]
        ids = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
        for i, row in enumerate(rows):
            ids[i, : len(row)] = torch.tensor(row)
        return ids


def trim(ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cut right-padded ids (B, T) to the batch's longest sentence: short batches cost what they hold."""
    longest = int((ids != PAD).sum(1).max())
    return ids[:, : max(1, longest)], labels


class TrimmedBatches(TensorData):
    """fit()'s data for (ids (N, T), labels (N,)) splits: random batches, each cut to its longest sentence."""

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        return trim(*super().train_batch(batch_size, generator))

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        for batch in super().eval_batches(split):
            yield trim(*batch)
