"""Captioning data for lab v11: generated scenes with captions, the vocabulary, and a Flickr8k loader.

Generated (embedded): 64x64 RGB pictures of 1-3 shapes (circle, square, triangle, star; drawn by
data/detection.py's `shape_mask`) in 5 colours on a plain, noisy background, placed in the cells of a 3x3
grid (two shapes always share a row or a column, so one of them is clearly left of or above the other).
Each picture gets 5 reference captions, drawn from every way a small grammar can say the scene's facts:
"a red circle left of a blue square", "a blue square to the right of a red circle", "two shapes: a red
circle and a blue square", "three shapes: ...". Since every caption comes from the facts, a generated
caption can be parsed back into facts (`parse_facts`) and checked against the scene: what BLEU misses.
This is generated data, not photographs with human captions.

Real: Flickr8k (Hodosh et al., 2013), the archives Flickr8k_Dataset.zip and Flickr8k_text.zip (published
at FLICKR8K_URLS), extracted into the data directory as `flickr8k/Flicker8k_Dataset/*.jpg` (the archive's
own spelling) and `flickr8k/Flickr8k.token.txt` with the split lists `Flickr_8k.{train,dev,test}Images.txt`
(`flickr8k/Flickr8k_text/` works too). 5 human captions an image, lower-cased, words of letters only.
Simplified: no download (the image archive is 1 GB and no checksum is published), images squashed to a
square side.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import permutations
from pathlib import Path

import numpy as np
import torch

from dlpractice.data.detection import SHAPE_CLASSES, resized, shape_mask
from dlpractice.data.fetch import data_dir
from dlpractice.errors import DlpError

SHAPES = ("circle", "square", "triangle", "star")
COLOURS = {
    "red": (0.85, 0.12, 0.12),
    "green": (0.15, 0.65, 0.2),
    "blue": (0.15, 0.3, 0.9),
    "yellow": (0.95, 0.85, 0.1),
    "purple": (0.55, 0.2, 0.7),
}
N_REFS = 5  # references per picture, as Flickr8k has
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
PAD, BOS, EOS, UNK = range(4)
IGNORE = -1  # the targets' padding: cross_entropy skips it and fit() does not count it
FLICKR8K_URLS = (
    "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_Dataset.zip",
    "https://github.com/jbrownlee/Datasets/releases/download/Flickr8k/Flickr8k_text.zip",
)
FLICKR_PLACES = ("flickr8k", "Flickr8k", ".")
FLICKR_IMAGES = ("Flicker8k_Dataset", "Flickr8k_Dataset", "images")
FLICKR_TEXT = (".", "Flickr8k_text")
FLICKR_SPLITS = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}

Thing = tuple[str, str]  # (colour, shape)
Relation = tuple[Thing, str, Thing]  # (a, "left of" | "above", b)


@dataclass(frozen=True)
class Facts:
    """What a scene shows or a caption says: its things (sorted) and, for two things, how they lie."""

    things: tuple[Thing, ...]
    relation: Relation | None = None


# ----- the grammar: facts -> every caption that says them -----


def noun(thing: Thing) -> str:
    return f"a {thing[0]} {thing[1]}"


def listed(things: tuple[Thing, ...]) -> str:
    """'a red circle, a blue square and a green star'."""
    words = [noun(t) for t in things]
    return ", ".join(words[:-1]) + f" and {words[-1]}"


def all_captions(facts: Facts) -> list[str]:
    """Every paraphrase the grammar has for the facts (at least N_REFS of them)."""
    things = facts.things
    if len(things) == 1:
        colour, shape = things[0]
        return [
            f"a {colour} {shape}",
            f"one {colour} {shape}",
            f"a single {colour} {shape}",
            f"there is a {colour} {shape}",
            f"a {colour} {shape} on its own",
        ]
    if len(things) == 2:
        a, relation, b = facts.relation
        said = {"left of": ("left of", "to the left of"), "above": ("above", "over")}[relation]
        opposite = {"left of": ("right of", "to the right of"), "above": ("below", "under")}[relation]
        return [
            *(f"{noun(a)} {r} {noun(b)}" for r in said),
            *(f"{noun(b)} {r} {noun(a)}" for r in opposite),
            f"two shapes: {noun(a)} and {noun(b)}",
            f"{noun(b)} and {noun(a)}",
        ]
    orders = list(permutations(things))
    return [f"{prefix}{listed(order)}" for order in orders for prefix in ("three shapes: ", "")]


def parse_facts(words: list[str]) -> Facts:
    """The facts a caption states: each colour word followed by a shape word is a thing; a relation word
    between the first two things relates them (turned around for 'right of', 'below', 'under')."""
    things, between, relation = [], [], None
    for i in range(len(words) - 1):
        if words[i] in COLOURS and words[i + 1] in SHAPES:
            things.append((words[i], words[i + 1]))
        elif len(things) == 1:
            between.append(words[i])
    said = f" {' '.join(between)} "
    if len(things) >= 2:
        a, b = things[0], things[1]
        for phrase, (first, name, second) in (
            ("right of", (b, "left of", a)),
            ("left of", (a, "left of", b)),
            ("above", (a, "above", b)),
            ("over", (a, "above", b)),
            ("below", (b, "above", a)),
            ("under", (b, "above", a)),
        ):
            if f" {phrase} " in said:
                relation = (first, name, second)
                break
    return Facts(tuple(sorted(things)), relation)


def facts_hold(stated: Facts, truth: Facts) -> bool:
    """A caption is right when it names exactly the scene's things and any relation it states is true."""
    return stated.things == truth.things and stated.relation in (None, truth.relation)


VERDICTS = ("right", "wrong number of things", "a colour or shape wrong", "false relation")


def fact_verdict(stated: Facts, truth: Facts) -> str:
    """Which of VERDICTS a caption's facts earn: right, or its first mistake in that order."""
    if facts_hold(stated, truth):
        return "right"
    if len(stated.things) != len(truth.things):
        return "wrong number of things"
    return "a colour or shape wrong" if stated.things != truth.things else "false relation"


# ----- drawing the scenes -----


def place_things(rng: np.random.Generator) -> list[tuple[Thing, int, int]]:
    """1-3 different (colour, shape) things, each in its own cell (row, column) of a 3x3 grid; two things
    share a row or a column, so that one is left of or above the other."""
    n = int(rng.integers(1, 4))
    combos = [(c, s) for c in COLOURS for s in SHAPES]
    things = [combos[i] for i in rng.choice(len(combos), n, replace=False)]
    if n == 2:
        line, (i, j) = int(rng.integers(3)), sorted(rng.choice(3, 2, replace=False))
        cells = [(line, i), (line, j)] if rng.random() < 0.5 else [(i, line), (j, line)]
    else:
        cells = [divmod(int(k), 3) for k in rng.choice(9, n, replace=False)]
    return [(thing, row, col) for thing, (row, col) in zip(things, cells)]


def scene_facts(placed: list[tuple[Thing, int, int]]) -> Facts:
    things = tuple(sorted(thing for thing, _, _ in placed))
    if len(placed) != 2:
        return Facts(things)
    (a, ra, ca), (b, rb, cb) = sorted(placed, key=lambda p: (p[1], p[2]))  # a is above or left of b
    return Facts(things, (a, "left of" if ra == rb else "above", b))


def draw_scene(placed, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, side: int) -> np.ndarray:
    """(S, S, 3) in [0, 1]: a light, noisy background and each thing in its cell, jittered a little."""
    image = np.full((side, side, 3), rng.uniform(0.72, 0.92)) + rng.normal(0, 0.03, (side, side, 3))
    cell = side / 3
    for (colour, shape), row, col in placed:
        cy, cx = (np.array([row, col]) + 0.5 + rng.uniform(-0.12, 0.12, 2)) * cell
        size, angle = rng.uniform(0.26, 0.36) * cell, rng.uniform(-0.3, 0.3)
        u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
        v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
        inside = shape_mask(SHAPE_CLASSES.index(shape), u, v, size)
        image[inside] = np.array(COLOURS[colour]) + rng.normal(0, 0.04, (int(inside.sum()), 3))
    return np.clip(image, 0, 1)


@dataclass
class CaptionSplits:
    """Per split: images (N, 3, S, S) float32 in [0, 1], each image's reference captions (lists of words),
    and for generated scenes each image's facts (None for real photographs)."""

    images: dict[str, np.ndarray]
    captions: dict[str, list[list[list[str]]]]
    facts: dict[str, list[Facts]] | None
    source: str
    origin: str

    def describe(self) -> dict[str, object]:
        n = {split: len(x) for split, x in self.images.items()}
        return {
            "data_source": self.source,
            "origin": self.origin,
            "split": f"{n['train']}/{n['val']}/{n['test']} images, {N_REFS} captions each",
            "side": int(self.images["train"].shape[-1]),
        }


def generate_scenes(
    n: int, seed: int, side: int = 64
) -> tuple[np.ndarray, list[list[list[str]]], list[Facts]]:
    """n pictures (n, 3, S, S), N_REFS different captions of each (as word lists), and their facts."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:side, 0:side].astype(np.float64) + 0.5
    images = np.empty((n, 3, side, side), np.float32)
    captions, facts = [], []
    for i in range(n):
        placed = place_things(rng)
        images[i] = draw_scene(placed, rng, yy, xx, side).transpose(2, 0, 1)
        facts.append(scene_facts(placed))
        options = all_captions(facts[-1])
        chosen = rng.choice(len(options), N_REFS, replace=False)
        captions.append([words(options[k]) for k in chosen])
    return images, captions, facts


def scene_splits(n_train: int, n_val: int, n_test: int, seed: int, side: int = 64) -> CaptionSplits:
    """Three disjoint generated splits, each from its own seed (seed, seed + 1, seed + 2)."""
    sizes = {"train": n_train, "val": n_val, "test": n_test}
    drawn = {name: generate_scenes(n, seed + k, side) for k, (name, n) in enumerate(sizes.items())}
    return CaptionSplits(
        {k: v[0] for k, v in drawn.items()},
        {k: v[1] for k, v in drawn.items()},
        {k: v[2] for k, v in drawn.items()},
        "embedded",
        "generated shape scenes with grammar captions",
    )


# ----- words and ids -----


def words(caption: str) -> list[str]:
    """Lower-cased words of letters only (Flickr8k's usual cleaning; a colon or a comma is dropped)."""
    return re.findall(r"[a-z]+", caption.lower())


@dataclass
class Vocabulary:
    """Words <-> ids; ids 0-3 are <pad>, <s>, </s> and <unk>."""

    tokens: list[str]
    index: dict[str, int] = field(init=False)

    def __post_init__(self) -> None:
        self.index = {t: i for i, t in enumerate(self.tokens)}

    @classmethod
    def build(cls, captions: list[list[list[str]]], min_count: int = 1) -> Vocabulary:
        """Every word seen at least `min_count` times in the training captions, most frequent first."""
        counts = Counter(w for refs in captions for caption in refs for w in caption)
        kept = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, caption: list[str]) -> list[int]:
        """[<s>, word ids..., </s>]; unknown words become <unk>."""
        return [BOS, *(self.index.get(w, UNK) for w in caption), EOS]

    def decode(self, ids: list[int]) -> list[str]:
        """Words of ids, up to the first </s>, skipping <s> and <pad>."""
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.tokens[i])
        return out


def caption_tensor(captions: list[list[list[str]]], vocab: Vocabulary, max_len: int) -> torch.Tensor:
    """(N, N_REFS, L) ids padded with <pad>, each caption cut to max_len words; an image with fewer than
    N_REFS captions repeats them (the training batches draw one of the N_REFS rows at random)."""
    rows = [vocab.encode(c[:max_len]) for refs in captions for c in (refs * N_REFS)[:N_REFS]]
    out = torch.full((len(rows), max(map(len, rows))), PAD, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row)
    return out.view(len(captions), N_REFS, -1)


def teacher_forcing_pair(ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Ids (B, L) -> the decoder's input (B, L-1: <s> w1 ... wn, padded) and its targets (B, L-1: w1 ...
    wn </s>, padded with IGNORE)."""
    targets = ids[:, 1:].masked_fill(ids[:, 1:] == PAD, IGNORE)
    return ids[:, :-1], targets


class CaptionBatches:
    """fit()'s data: a training batch is random images, each with one of its captions drawn at random;
    evaluation walks every (image, caption) pair of a split. Batches are (images, tokens_in, targets)."""

    def __init__(
        self, images: dict[str, np.ndarray], ids: dict[str, torch.Tensor], eval_batch_size: int = 64
    ):
        self.images = {k: torch.as_tensor(v) for k, v in images.items()}
        self.ids, self.eval_batch_size = ids, eval_batch_size

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(len(self.images["train"]), (batch_size,), generator=generator)
        ref = torch.randint(N_REFS, (batch_size,), generator=generator)
        return self.images["train"][index], *teacher_forcing_pair(self.ids["train"][index, ref])

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        per_batch = max(1, self.eval_batch_size // N_REFS)
        for start in range(0, len(self.images[split]), per_batch):
            images = self.images[split][start : start + per_batch].repeat_interleave(N_REFS, 0)
            yield images, *teacher_forcing_pair(self.ids[split][start : start + per_batch].flatten(0, 1))


# ----- Flickr8k -----


def find_flickr8k(directory: str | Path | None = None) -> tuple[Path, Path]:
    """The extracted image folder and the folder holding Flickr8k.token.txt, in the data directory."""
    root = data_dir(directory)
    for place in FLICKR_PLACES if root else ():
        images = [root / place / name for name in FLICKR_IMAGES if (root / place / name).is_dir()]
        text = [root / place / t for t in FLICKR_TEXT if (root / place / t / "Flickr8k.token.txt").is_file()]
        if images and text:
            return images[0], text[0]
    where = root / FLICKR_PLACES[0] if root else "<data dir>/flickr8k (set DLP_DATA_DIR or --data-dir)"
    raise DlpError(
        f"Flickr8k not found: extract {' and '.join(FLICKR8K_URLS)} into {where} "
        "(it should hold Flicker8k_Dataset/ and Flickr8k.token.txt)"
    )


def read_tokens(path: Path) -> dict[str, list[list[str]]]:
    """Flickr8k.token.txt ('NAME.jpg#k<TAB>caption' a line) -> each image's captions as word lists."""
    captions: dict[str, list[list[str]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        name, tab, text = line.partition("\t")
        if not tab or "#" not in name:
            raise DlpError(f"{path}:{number} is not 'NAME.jpg#k<TAB>caption': {line[:60]!r}")
        captions.setdefault(name.split("#")[0], []).append(words(text))
    return captions


def load_flickr8k(
    directory: str | Path | None = None, side: int = 64, limits: tuple[int, int, int] = (0, 0, 0)
) -> CaptionSplits:
    """Flickr8k's official train/dev/test lists (at most `limits` images of each, 0 = all)."""
    image_dir, text_dir = find_flickr8k(directory)
    captions = read_tokens(text_dir / "Flickr8k.token.txt")
    images, refs = {}, {}
    for (split, listing), limit in zip(FLICKR_SPLITS.items(), limits):
        if not (text_dir / listing).is_file():
            raise DlpError(f"{text_dir / listing} is missing: it comes in Flickr8k_text.zip")
        names = [n.strip() for n in (text_dir / listing).read_text().splitlines() if n.strip()]
        names = [n for n in names if n in captions and (image_dir / n).is_file()][: limit or None]
        if not names:
            raise DlpError(f"no image of {listing} is both in {image_dir} and in Flickr8k.token.txt")
        images[split] = np.stack([resized(image_dir / n, side)[0] for n in names])
        refs[split] = [captions[n] for n in names]
    return CaptionSplits(images, refs, None, "real", f"Flickr8k: {image_dir.parent}")


def load_captions(
    source: str,
    directory: str | Path | None,
    sizes: tuple[int, int, int],
    seed: int,
    flickr_limits: tuple[int, int, int] = (0, 0, 0),
    side: int = 64,
) -> CaptionSplits:
    """`real`: Flickr8k; `embedded`: generated scenes (`sizes` of each split); `auto`: real when on disk."""
    if source == "auto":
        try:
            find_flickr8k(directory)
            source = "real"
        except DlpError:
            source = "embedded"
    if source == "real":
        return load_flickr8k(directory, side, flickr_limits)
    if source == "embedded":
        return scene_splits(*sizes, seed, side)
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")
