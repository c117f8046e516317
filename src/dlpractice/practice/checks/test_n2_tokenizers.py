"""Checks of lab n2: BPE's pair counts and merge, Unigram's Viterbi segmentation (against every possible
segmentation) and WordPiece's greedy longest match."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dlpractice.tokenizers.wordpiece import UNK

UNK_LOGP = -20.0
SMALL_VOCAB = {UNK: 0, "un": 1, "##aff": 2, "##able": 3, "##a": 4, "a": 5, "##b": 6, "u": 7, "##n": 8}


@pytest.mark.exercise("n2.1")
def test_count_pairs_counts_overlapping_pairs_with_weight(impl) -> None:
    """Every adjacent pair, overlapping ones included, counted `weight` times into `counts`."""
    count_pairs = impl.count_pairs
    for ids, want in (([1, 2, 1, 2], {(1, 2): 2, (2, 1): 1}), ([7, 7, 7], {(7, 7): 2}), ([5], {})):
        got = count_pairs(ids)
        assert got == want, (
            f"count_pairs({ids}) should be {want} (every adjacent pair, overlaps too), got {got}"
        )
    counts = {(1, 2): 10}
    got = count_pairs([1, 2, 3], counts, weight=-4)
    assert got == {(1, 2): 6, (2, 3): -4}, (
        f"count_pairs([1, 2, 3], {{(1, 2): 10}}, weight=-4) should add -4 per pair to the counts given: "
        f"{{(1, 2): 6, (2, 3): -4}}, got {got}"
    )


@pytest.mark.exercise("n2.2")
def test_merge_replaces_pairs_left_to_right(impl) -> None:
    """Each occurrence of the pair, scanned left to right, becomes the new id; merged pairs do not overlap."""
    cases = [
        (([1, 2, 3, 1, 2], (1, 2), 99), [99, 3, 99]),
        (([7, 7, 7], (7, 7), 99), [99, 7]),
        (([7, 7, 7, 7], (7, 7), 99), [99, 99]),
        (([1, 3, 2], (1, 2), 99), [1, 3, 2]),
        (([], (1, 2), 99), []),
    ]
    for args, want in cases:
        got = impl.merge(*args)
        assert got == want, f"merge{args} should be {want}, got {got}"


def segmentations(word: str):
    """Every way to cut `word` into non-empty pieces."""
    if not word:
        yield []
        return
    for end in range(1, len(word) + 1):
        for rest in segmentations(word[end:]):
            yield [word[:end], *rest]


def score(pieces: list[str], logp: dict[str, float]) -> float:
    """Log-probability of a segmentation; -inf if it uses an unknown piece longer than one character."""
    total = 0.0
    for piece in pieces:
        if piece in logp:
            total += logp[piece]
        elif len(piece) == 1:
            total += UNK_LOGP
        else:
            return -math.inf
    return total


@pytest.mark.exercise("n2.3")
@settings(max_examples=150, deadline=None)
@given(
    word=st.text(alphabet="abc▁d", min_size=1, max_size=8),
    logp=st.dictionaries(st.text(alphabet="abc▁", min_size=1, max_size=3), st.floats(-12, -0.1), min_size=1),
)
@example(word="abc", logp={"ab": -5.0, "a": -1.0, "bc": -1.0})  # greedy longest match takes "ab": worse
def test_viterbi_finds_the_best_segmentation(impl, word: str, logp: dict[str, float]) -> None:
    """Viterbi returns the most likely segmentation, the same as trying every segmentation."""
    pieces = impl.viterbi(word, logp, 3, UNK_LOGP)
    assert "".join(pieces) == word, f"the pieces {pieces} should join back to {word!r}"
    best = max(score(candidate, logp) for candidate in segmentations(word))
    assert math.isclose(score(pieces, logp), best, abs_tol=1e-9), (
        f"{word!r} cut as {pieces} scores {score(pieces, logp):.3f}; the best segmentation scores {best:.3f}"
    )


@pytest.mark.exercise("n2.4")
def test_greedy_longest_match_first(impl) -> None:
    """From each position the longest piece in the vocabulary; one unknown position: the word is [UNK]."""
    tokenize_word = impl.WordPieceTokenizer(SMALL_VOCAB).tokenize_word
    cases = [
        ("unaffable", ["un", "##aff", "##able"]),
        ("un", ["un"]),
        ("ab", ["a", "##b"]),
        ("unx", [UNK]),  # one unknown position makes the whole word unknown
        ("é", [UNK]),
    ]
    for word, want in cases:
        got = tokenize_word(word)
        assert got == want, f"{word!r} should split into {want} (longest match first), got {got}"
