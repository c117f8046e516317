"""Retrieval metrics: our BM25 against rank_bm25.BM25Okapi on the same tokens, RRF, recall@k and MRR."""

from __future__ import annotations

import random

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from dlpractice.metrics import retrieval


def random_corpus(seed: int) -> list[list[str]]:
    """Documents of varied lengths over a small vocabulary, so that some terms sit in most documents
    (a negative idf, floored by epsilon) and some in one."""
    rng = random.Random(seed)
    vocab = [f"w{i}" for i in range(40)]
    weights = [1 / (i + 1) for i in range(40)]  # Zipf-like: w0 is everywhere, w39 rare
    return [rng.choices(vocab, weights, k=rng.randint(1, 30)) for _ in range(60)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bm25_equals_rank_bm25(seed):
    corpus = random_corpus(seed)
    ours, theirs = retrieval.BM25(corpus), BM25Okapi(corpus)
    assert any(theirs.idf[t] == theirs.epsilon * theirs.average_idf for t in theirs.idf)  # the floor is hit
    for query in (["w0"], ["w3", "w17", "w3"], ["w39", "unknown", "w1"], ["unknown"], []):
        np.testing.assert_allclose(ours.scores(query), theirs.get_scores(query), rtol=1e-12, atol=1e-12)


def test_bm25_on_real_text_tokens():
    texts = ["The assert statement inserts debugging assertions.", "A for loop iterates.", "assert x, 'msg'"]
    tokens = [retrieval.bm25_tokens(t) for t in texts]
    assert tokens[0][:2] == ["the", "assert"] and tokens[2] == ["assert", "x", "msg"]
    query = retrieval.bm25_tokens("what does assert do")
    np.testing.assert_allclose(retrieval.BM25(tokens).scores(query), BM25Okapi(tokens).get_scores(query))


def test_top_k_breaks_ties_by_index():
    assert retrieval.top_k(np.array([0.5, 0.9, 0.5, 0.9, 0.1]), 4) == [1, 3, 0, 2]


def test_rrf_by_hand():
    # item 2: 1/61 + 1/62; item 1: 1/62 + 1/61; tie -> lower id first; item 3: 1/63 + 0; item 4: 0 + 1/63
    assert retrieval.reciprocal_rank_fusion([[1, 2, 3], [2, 1, 4]], k=60) == [1, 2, 3, 4]
    assert retrieval.reciprocal_rank_fusion([[5, 6], [7, 6]], k=1) == [6, 5, 7]  # 1/3 + 1/3 beats 1/2


def test_recall_and_mrr():
    rankings = [[3, 1, 2], [4, 5, 6], [7, 8, 9]]
    relevant = [{1}, {6, 4}, {0}]
    assert retrieval.recall_at_k(rankings, relevant, 1) == pytest.approx(1 / 3)
    assert retrieval.recall_at_k(rankings, relevant, 2) == pytest.approx(2 / 3)
    assert retrieval.mean_reciprocal_rank(rankings, relevant) == pytest.approx((1 / 2 + 1 + 0) / 3)


def test_best_threshold_makes_the_most_right_calls():
    scores = [0.9, 0.8, 0.75, 0.5, 0.4, 0.3]
    positive = [True, True, False, True, False, False]
    threshold = retrieval.best_threshold(scores, positive)
    assert sum((s >= threshold) == p for s, p in zip(scores, positive)) == 5 and 0.4 < threshold <= 0.5
    assert retrieval.best_threshold([0.2, 0.6], [False, False]) > 0.6  # abstain on everything
