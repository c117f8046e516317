"""Checks of lab l1: bigram counts with the name boundaries, and smoothed row-normalised probabilities."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import numpy as np
import pytest

from dlpractice.data.names import Vocab
from dlpractice.practice.checks.support import assert_close

WORDS = ["emma", "ava", "bob", "a", "anna"]


def counted_by_hand(words: list[str], vocab: Vocab) -> Counter[tuple[int, int]]:
    return Counter(pair for word in words for pair in pairwise([0, *vocab.encode(word), 0]))


@pytest.mark.exercise("l1.1")
def test_bigram_counts_every_pair_with_boundaries(impl) -> None:
    """Each name of n letters gives n + 1 pairs: '.'→first, the inner pairs, last→'.'."""
    vocab = Vocab.from_words(WORDS)
    counts = impl.bigram_counts(WORDS, vocab)
    assert counts.shape == (len(vocab), len(vocab)), (
        f"the counts should be a ({len(vocab)}, {len(vocab)}) matrix, one row and column per character"
    )
    total, expected_total = int(counts.sum()), sum(len(word) + 1 for word in WORDS)
    assert total == expected_total, (
        f"{WORDS} should give {expected_total} pairs "
        "(a name of n letters gives n + 1, with '.' at both ends); "
        f"counted {total}"
    )
    expected = np.zeros_like(counts)
    for (prev, nxt), n in counted_by_hand(WORDS, vocab).items():
        expected[prev, nxt] = n
    wrong = [(vocab.chars[i], vocab.chars[j]) for i, j in zip(*np.nonzero(counts != expected))]
    assert not wrong, f"counts[previous, next] is wrong for the pairs {wrong[:5]}"


@pytest.mark.exercise("l1.1")
def test_bigram_counts_of_a_single_letter_name(impl) -> None:
    """The name 'b' is two pairs: '.'→'b' and 'b'→'.'."""
    vocab = Vocab.from_words(["ab", "b"])
    counts = impl.bigram_counts(["b"], vocab)
    b = vocab.stoi["b"]
    assert counts[0, b] == 1 and counts[b, 0] == 1 and counts.sum() == 2, (
        "the one-letter name 'b' should count exactly '.'→'b' and 'b'→'.'"
    )


@pytest.mark.exercise("l1.2")
@pytest.mark.parametrize("smoothing", [0.0, 1.0, 0.5])
def test_count_probabilities_smooth_and_normalise_rows(impl, smoothing: float) -> None:
    """P[i, j] = (N[i, j] + k) / sum_j (N[i, j] + k): rows sum to one, in the order of the counts."""
    counts = np.array([[0, 3, 1], [2, 2, 0], [5, 0, 5]])
    probs = impl.count_probabilities(counts, smoothing)
    assert_close(
        probs.sum(axis=1),
        1.0,
        "each row (the next character after one character) should sum to 1",
        atol=1e-12,
    )
    expected = (counts + smoothing) / (counts + smoothing).sum(axis=1, keepdims=True)
    assert_close(probs, expected, f"P[i, j] should be (N[i, j] + {smoothing}) / sum over j", atol=1e-12)
    assert np.array_equal(counts, [[0, 3, 1], [2, 2, 0], [5, 0, 5]]), "the counts passed in should not change"


@pytest.mark.exercise("l1.2")
def test_smoothing_gives_unseen_pairs_a_little_probability(impl) -> None:
    """Counts (0, 8) smoothed by 1 become (1, 9) / 10."""
    probs = impl.count_probabilities(np.array([[0, 8], [4, 4]]), 1.0)
    assert probs[0, 0] == pytest.approx(0.1) and probs[0, 1] == pytest.approx(0.9), (
        f"counts (0, 8) smoothed by 1 should give probabilities (0.1, 0.9), got {tuple(probs[0])}"
    )
