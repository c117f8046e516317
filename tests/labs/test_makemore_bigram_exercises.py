"""Checks for the l1 exercises: the bigram count table and the smoothed probabilities read off it."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from dlpractice.data.names import Vocab

WORDS = ["emma", "ava", "bob", "a", "anna"]


def counted_by_hand(words: list[str], vocab: Vocab) -> Counter[tuple[int, int]]:
    return Counter(pair for word in words for pair in pairwise([0, *vocab.encode(word), 0]))


@pytest.mark.exercise("l1.1")
def test_bigram_counts_every_pair_with_boundaries(impl) -> None:
    """Each name of n letters gives n + 1 pairs: '.'→first, the inner pairs, last→'.'."""
    vocab = Vocab.from_words(WORDS)
    counts = impl.bigram_counts(WORDS, vocab)
    assert counts.shape == (len(vocab), len(vocab))
    assert counts.sum() == sum(len(word) + 1 for word in WORDS)
    expected = np.zeros_like(counts)
    for (prev, nxt), n in counted_by_hand(WORDS, vocab).items():
        expected[prev, nxt] = n
    np.testing.assert_array_equal(counts, expected)


@pytest.mark.exercise("l1.1")
def test_bigram_counts_of_a_single_letter_name(impl) -> None:
    vocab = Vocab.from_words(["ab", "b"])
    counts = impl.bigram_counts(["b"], vocab)
    b = vocab.stoi["b"]
    assert counts[0, b] == 1 and counts[b, 0] == 1 and counts.sum() == 2


@pytest.mark.exercise("l1.2")
@pytest.mark.parametrize("smoothing", [0.0, 1.0, 0.5])
def test_count_probabilities_smooth_and_normalise_rows(impl, smoothing: float) -> None:
    """P[i, j] = (N[i, j] + k) / sum_j (N[i, j] + k): rows sum to one, in the order of the counts."""
    counts = np.array([[0, 3, 1], [2, 2, 0], [5, 0, 5]])
    probs = impl.count_probabilities(counts, smoothing)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    expected = (counts + smoothing) / (counts + smoothing).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, atol=1e-12)
    np.testing.assert_array_equal(counts, [[0, 3, 1], [2, 2, 0], [5, 0, 5]])  # the counts are not changed


@pytest.mark.exercise("l1.2")
def test_smoothing_gives_unseen_pairs_a_little_probability(impl) -> None:
    probs = impl.count_probabilities(np.array([[0, 8], [4, 4]]), 1.0)
    assert probs[0, 0] == pytest.approx(0.1) and probs[0, 1] == pytest.approx(0.9)
