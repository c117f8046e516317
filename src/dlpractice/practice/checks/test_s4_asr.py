"""Checks of lab s4: CTC greedy decoding on hand-made frame paths, and the edit-distance table against
brute-force recursion and jiwer."""

from __future__ import annotations

import functools
import random

import jiwer
import pytest
import torch
from torch.nn import functional as F


def frames(path: list[int], n_symbols: int = 5) -> torch.Tensor:
    """(T, C) log-probabilities whose best symbol at frame t is path[t]."""
    return F.one_hot(torch.tensor(path), n_symbols).float().log_softmax(-1)


@pytest.mark.exercise("s4.1")
def test_greedy_decode_collapses_the_best_path(impl) -> None:
    cases = [
        ([0, 1, 1, 0, 2, 0], [1, 2], "a run of one symbol is one symbol"),
        ([1, 0, 1], [1, 1], "a blank between two equal symbols keeps both"),
        ([3, 3, 3, 3], [3], "repeats merge before blanks are dropped"),
        ([0, 0, 0], [], "all blanks decode to nothing"),
        ([2, 4, 2, 4, 0, 4], [2, 4, 2, 4, 4], "alternating symbols all stay"),
    ]
    for path, expected, why in cases:
        got = impl.greedy_decode(frames(path))
        assert got == expected, f"frames {path} should decode to {expected} ({why}); got {got}"
    path = [0, 2, 2, 0, 0, 1]  # the blank need not be id 0
    got = impl.greedy_decode(frames(path), blank=2)
    assert got == [0, 0, 1], f"with blank=2, frames {path} should decode to [0, 0, 1]; got {got}"
    noisy = torch.randn(50, 6, generator=torch.Generator().manual_seed(0))
    best = noisy.argmax(-1).tolist()
    got = impl.greedy_decode(noisy)
    assert all(isinstance(s, int) for s in got), "return plain Python ints (use .tolist())"
    assert len(got) <= len(best) and 0 not in got, "the decoded ids must not contain the blank"


def brute_distance(a: tuple, b: tuple) -> int:
    @functools.cache
    def d(i: int, j: int) -> int:
        if i == 0 or j == 0:
            return i + j
        return min(d(i - 1, j - 1) + (a[i - 1] != b[j - 1]), d(i - 1, j) + 1, d(i, j - 1) + 1)

    return d(len(a), len(b))


@pytest.mark.exercise("s4.2")
def test_edit_table_is_levenshtein(impl) -> None:
    table = impl.edit_table("kitten", "sitting")
    assert len(table) == 7 and len(table[0]) == 8, (
        "the table has len(reference) + 1 rows and len(hypothesis) + 1 columns"
    )
    assert table[0] == list(range(8)) and [row[0] for row in table] == list(range(7)), (
        "row 0 and column 0 count insertions and deletions from the empty sequence: 0, 1, 2, ..."
    )
    assert table[-1][-1] == 3, f"kitten -> sitting needs 3 edits, the table ends with {table[-1][-1]}"
    rng = random.Random(0)
    for _ in range(40):
        a = tuple(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        b = tuple(rng.choice("abc") for _ in range(rng.randint(0, 7)))
        got, expected = impl.edit_table(a, b)[-1][-1], brute_distance(a, b)
        assert got == expected, (
            f"the distance between {''.join(a)!r} and {''.join(b)!r} is {expected}, not {got}"
        )
    refs = ["one two three", "four five six seven", "eight nine"]
    hyps = ["one three", "four five sex seven eight", "eight nine"]
    assert impl.word_error_rate(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps)), (
        "WER should equal jiwer's"
    )
