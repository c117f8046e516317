"""Words for l9 (word embeddings): tokens, a vocabulary, subsampling, noise words, skip-gram pairs and
GloVe's co-occurrence counts, plus the analogy questions the lab scores.

The text is `data.shakespeare.load_corpus`'s (tinyshakespeare, or the standard library's docstrings
offline, split 90/10 by position), lower-cased and cut into words: runs of letters with inner
apostrophes ("o'er", "thou'rt"). A paragraph (the text between blank lines: a speech, a paragraph of a
docstring) is a sentence, and no context window crosses one. Words seen fewer than `min_count` times in
the training text are dropped before windows are drawn, as word2vec does.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from itertools import permutations

import numpy as np
import torch
from scipy import sparse

from dlpractice.data import phrases
from dlpractice.errors import DlpError

WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")
PARAGRAPH = re.compile(r"\n[ \t]*\n")


def sentences(text: str) -> list[list[str]]:
    """The text's paragraphs as lists of lower-case words (empty paragraphs dropped)."""
    return [words for part in PARAGRAPH.split(text.lower()) if (words := WORD.findall(part))]


@dataclass(frozen=True)
class WordVocab:
    words: list[str]  # most frequent first; ties in alphabetical order
    counts: np.ndarray  # (V,) occurrences in the training text

    @classmethod
    def build(cls, sents: list[list[str]], min_count: int) -> WordVocab:
        counted = Counter(word for sent in sents for word in sent)
        kept = sorted((w for w, n in counted.items() if n >= min_count), key=lambda w: (-counted[w], w))
        if len(kept) < 2:
            raise DlpError(f"only {len(kept)} words occur at least min_count={min_count} times")
        return cls(kept, np.array([counted[w] for w in kept], dtype=np.int64))

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: str) -> bool:
        return word in self.stoi

    @cached_property
    def stoi(self) -> dict[str, int]:
        return {w: i for i, w in enumerate(self.words)}

    def encode(self, sents: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
        """(ids, sentence index of each id), out-of-vocabulary words left out."""
        stoi = self.stoi
        ids, owner = [], []
        for n, sent in enumerate(sents):
            known = [stoi[w] for w in sent if w in stoi]
            ids += known
            owner += [n] * len(known)
        return np.array(ids, dtype=np.int64), np.array(owner, dtype=np.int64)


def keep_probabilities(counts: np.ndarray, sample: float) -> np.ndarray:
    """word2vec's subsampling of frequent words: the chance to keep each occurrence of each word.

    With f = count / total, the paper (Mikolov et al., 2013) discards with probability 1 - sqrt(t / f);
    the released C code, and gensim after it, keep with probability (sqrt(f / t) + 1) * t / f, capped
    at 1. This is the C code's. `sample` = 0 keeps everything.
    """
    if sample <= 0:
        return np.ones(len(counts))
    threshold = sample * counts.sum()
    return np.minimum(1.0, (np.sqrt(counts / threshold) + 1) * threshold / counts)


def subsample(
    ids: np.ndarray, owner: np.ndarray, keep: np.ndarray, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """One random draw of the stream with each occurrence kept with probability keep[word]."""
    kept = rng.random(len(ids)) < keep[ids]
    return ids[kept], owner[kept]


def noise_distribution(counts: np.ndarray, power: float = 0.75) -> np.ndarray:
    """P(noise word) proportional to count ** 0.75: rare words drawn more often than their share."""
    weights = counts.astype(np.float64) ** power
    return weights / weights.sum()


def skipgram_pairs(
    ids: np.ndarray, owner: np.ndarray, window: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """(centre, context) pairs with word2vec's dynamic window.

    Each centre draws its own reach b uniformly from 1..window and pairs with every word at most b
    positions away in its sentence, so near words are paired more often than far ones.
    """
    reach = rng.integers(1, window + 1, size=len(ids))
    centres, contexts = [], []
    for d in range(1, window + 1):
        same = owner[:-d] == owner[d:]  # (N - d,) both words in one sentence
        right = same & (reach[:-d] >= d)  # centre i, context i + d
        left = same & (reach[d:] >= d)  # centre i + d, context i
        centres += [ids[:-d][right], ids[d:][left]]
        contexts += [ids[d:][right], ids[:-d][left]]
    return np.concatenate(centres), np.concatenate(contexts)


def cooccurrence(ids: np.ndarray, owner: np.ndarray, vocab_size: int, window: int) -> sparse.coo_matrix:
    """GloVe's X: X[i, j] sums 1 / d over every time j occurs d <= window words from i (symmetric)."""
    rows, cols, weights = [], [], []
    for d in range(1, window + 1):
        same = owner[:-d] == owner[d:]
        a, b = ids[:-d][same], ids[d:][same]
        rows += [a, b]
        cols += [b, a]
        weights += [np.full(2 * len(a), 1.0 / d)]
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    x = sparse.coo_matrix((np.concatenate(weights), (rows, cols)), shape=(vocab_size, vocab_size))
    x.sum_duplicates()
    return x


class SkipGramData:
    """fit()'s batches for skip-gram: random (centre, context) pairs, each with `negatives` noise words.

    A batch is (centre (B,), noise words (B, K), context (B,)): the observed context word is the target.
    Training pairs are drawn from a fixed pool (several subsampled passes over the text), so a batch
    depends only on fit()'s generator and a resumed run sees the same batches. Validation pairs come with
    noise words drawn once, so every evaluation scores the same task.
    """

    def __init__(
        self,
        train: tuple[np.ndarray, np.ndarray],
        val: tuple[np.ndarray, np.ndarray],
        noise: np.ndarray,
        negatives: int,
        eval_batch_size: int = 4096,
        eval_seed: int = 0,
    ):
        self.train = tuple(torch.from_numpy(a) for a in train)
        self.noise = torch.from_numpy(noise)
        self.negatives, self.eval_batch_size = negatives, eval_batch_size
        generator = torch.Generator().manual_seed(eval_seed)
        centre, context = (torch.from_numpy(a) for a in val)
        self.held_out = {"val": (centre, self.draw_noise(len(centre), generator), context)}

    def draw_noise(self, n: int, generator: torch.Generator) -> torch.Tensor:
        return torch.multinomial(self.noise, n * self.negatives, True, generator=generator).view(n, -1)

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        index = torch.randint(len(self.train[0]), (batch_size,), generator=generator)
        centre, context = (t[index] for t in self.train)
        return centre, self.draw_noise(batch_size, generator), context

    def eval_batches(self, split: str) -> Iterator[tuple[torch.Tensor, ...]]:
        tensors = self.held_out[split]
        for start in range(0, len(tensors[0]), self.eval_batch_size):
            yield tuple(t[start : start + self.eval_batch_size] for t in tensors)


def pairs(text: str) -> list[tuple[str, str]]:
    """'king queen, man woman' -> [('king', 'queen'), ('man', 'woman')]."""
    return [tuple(pair.split()) for pair in phrases(text)]


# Relations for analogy questions a : b :: c : d, every ordered pair of two pairs of one relation.
# Some fit Shakespeare, some the standard library's docstrings; only questions whose four words are in
# the vocabulary are asked, and the lab reports how many that was.
RELATIONS: dict[str, list[tuple[str, str]]] = {
    "gender": pairs(
        "king queen, man woman, he she, his her, father mother, son daughter, brother sister, lord lady, "
        "husband wife, uncle aunt, boy girl, duke duchess, sir madam, master mistress, prince princess, "
        "men women, lords ladies"
    ),
    "pronoun case": pairs("i me, he him, she her, we us, they them, thou thee"),
    "possessive": pairs("i my, he his, thou thy, we our, they their, you your"),
    "plural": pairs(
        "lord lords, king kings, friend friends, hand hands, eye eyes, word words, son sons, heart hearts, "
        "day days, enemy enemies, file files, object objects, value values, argument arguments, name names, "
        "string strings, line lines, method methods, function functions, module modules, element elements, "
        "item items"
    ),
    "third person": pairs(
        "return returns, call calls, create creates, read reads, write writes, contain contains, "
        "raise raises, take takes, make makes, come comes, give gives, speak speaks"
    ),
    "past tense": pairs(
        "return returned, call called, create created, use used, pass passed, add added, love loved, "
        "kill killed"
    ),
}


def analogy_questions(vocab: WordVocab, relations: dict[str, list[tuple[str, str]]] = RELATIONS) -> list:
    """(relation, a, b, c, d) for a : b :: c : d, both pairs from one relation, all four words known."""
    questions = []
    for relation, pairs in relations.items():
        known = [pair for pair in pairs if pair[0] in vocab and pair[1] in vocab]
        questions += [(relation, a, b, c, d) for (a, b), (c, d) in permutations(known, 2)]
    return questions
