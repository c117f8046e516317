"""Retrieval (lab n11): BM25 ranking, reciprocal-rank fusion, and recall@k and MRR of ranked lists.

BM25 is Okapi BM25 as `rank_bm25.BM25Okapi` computes it (the tests check the scores on the same tokens):

    idf(t) = ln((N - n_t + 0.5) / (n_t + 0.5)), floored at epsilon * mean idf where it is negative
    score(q, d) = sum over query tokens t of idf(t) * f(t,d) (k1 + 1) / (f(t,d) + k1 (1 - b + b |d| / avgdl))

written as one sparse matrix of per-(chunk, term) weights, so a query's scores are a sum of columns
instead of a Python loop over chunks. Reciprocal-rank fusion (Cormack et al., 2009) merges rankings by
rank alone, so scores on different scales (cosines, BM25) need no calibration.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

TOKEN = re.compile(r"[a-z0-9_]+")


def bm25_tokens(text: str) -> list[str]:
    """Lower-cased runs of letters, digits and underscores: `__init__` and `k1` stay whole."""
    return TOKEN.findall(text.lower())


class BM25:
    """Okapi BM25 over a tokenised corpus (k1, b and epsilon as in rank_bm25.BM25Okapi)."""

    def __init__(
        self, corpus: Sequence[Sequence[str]], k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25
    ):
        self.vocab: dict[str, int] = {}
        rows, cols, counts = [], [], []
        for d, doc in enumerate(corpus):
            for token, count in Counter(doc).items():
                rows.append(d)
                cols.append(self.vocab.setdefault(token, len(self.vocab)))
                counts.append(count)
        tf = sparse.csr_matrix((counts, (rows, cols)), shape=(len(corpus), len(self.vocab)), dtype=np.float64)
        n_docs = len(corpus)
        df = np.bincount(cols, minlength=len(self.vocab))  # chunks holding each term
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        self.idf = np.where(idf < 0, epsilon * idf.mean(), idf)  # a term in most chunks still counts a little
        lengths = np.array([len(doc) for doc in corpus], dtype=np.float64)
        norm = k1 * (1 - b + b * lengths / lengths.mean())  # (N,)
        tf = tf.tocoo()
        weight = self.idf[tf.col] * tf.data * (k1 + 1) / (tf.data + norm[tf.row])
        self.weights = sparse.csc_matrix((weight, (tf.row, tf.col)), shape=tf.shape)  # (N, V)

    def scores(self, query: Sequence[str]) -> np.ndarray:
        """(N,) the BM25 score of every chunk; a repeated query token counts each time, an unknown one not."""
        counts = Counter(t for t in query if t in self.vocab)
        if not counts:
            return np.zeros(self.weights.shape[0])
        columns = [self.vocab[t] for t in counts]
        times = np.array([counts[t] for t in counts], dtype=np.float64)
        return np.asarray(self.weights[:, columns] @ times).ravel()


def top_k(scores: np.ndarray, k: int) -> list[int]:
    """Indices of the k highest scores, best first; ties go to the lower index."""
    return np.lexsort((np.arange(len(scores)), -scores))[:k].tolist()


def reciprocal_rank_fusion(rankings: Sequence[Sequence[int]], k: int = 60) -> list[int]:
    """One ranking from several: each item scores sum over rankings of 1 / (k + rank), rank counted from 1,
    an item missing from a ranking adding nothing for it. Best first; ties go to the lower item id."""
    # BEGIN EXERCISE n11.1: sum 1 / (k + rank) over the rankings that hold each item, then sort best first
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            fused[item] = fused.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(fused, key=lambda item: (-fused[item], item))
    # END EXERCISE


def first_hit(ranking: Sequence[int], relevant: set[int]) -> int | None:
    """1-based rank of the first relevant item, None when the ranking holds none."""
    return next((r for r, item in enumerate(ranking, start=1) if item in relevant), None)


def recall_at_k(rankings: Sequence[Sequence[int]], relevant: Sequence[set[int]], k: int) -> float:
    """Share of questions with a relevant chunk among their first k (the "hit rate" at k: a question has
    one answer span, held by one or, with overlapping chunks, two chunks)."""
    hits = [(first_hit(r[:k], rel) is not None) for r, rel in zip(rankings, relevant, strict=True)]
    return float(np.mean(hits)) if hits else 0.0


def mean_reciprocal_rank(rankings: Sequence[Sequence[int]], relevant: Sequence[set[int]]) -> float:
    """Mean over questions of 1 / rank of the first relevant chunk (0 when none was retrieved)."""
    ranks = [first_hit(r, rel) for r, rel in zip(rankings, relevant, strict=True)]
    return float(np.mean([1.0 / r if r else 0.0 for r in ranks])) if ranks else 0.0


def best_threshold(scores: Sequence[float], positive: Sequence[bool]) -> float:
    """The cut that classifies the most scores right (score >= cut: positive), midway between two scores;
    among equally good cuts, the lowest. For abstention: answer at or above it, abstain below."""
    values = sorted(set(scores))
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    right = [sum((s >= t) == p for s, p in zip(scores, positive, strict=True)) for t in cuts]
    return cuts[int(np.argmax(right))]
