"""metrics/bleu.py: corpus BLEU-1..4 against nltk's corpus_bleu and torchmetrics' BLEUScore on the same
captions, a case worked by hand, and the two places where the libraries disagree with each other."""

from __future__ import annotations

import random
import warnings

import pytest

from dlpractice.metrics.bleu import corpus_bleu

WORDS = [
    "a",
    "red",
    "blue",
    "green",
    "circle",
    "square",
    "star",
    "left",
    "right",
    "of",
    "above",
    "below",
    "the",
    "and",
]
NLTK_WEIGHTS = [(1.0,), (0.5, 0.5), (1 / 3,) * 3, (0.25,) * 4]


def random_corpus(seed: int, shortest: int) -> tuple[list[list[str]], list[list[list[str]]]]:
    rng = random.Random(seed)
    n = rng.randint(1, 8)
    hyps = [[rng.choice(WORDS) for _ in range(rng.randint(shortest, 10))] for _ in range(n)]
    refs = [
        [[rng.choice(WORDS) for _ in range(rng.randint(1, 10))] for _ in range(rng.randint(1, 5))]
        for _ in hyps
    ]
    for hyp, rs in zip(hyps, refs):  # share some words in order, so that higher orders match too
        rs[0][: len(hyp) // 2] = hyp[: len(hyp) // 2]
    return hyps, refs


@pytest.mark.parametrize("seed", range(40))
def test_corpus_bleu_equals_nltk(seed: int) -> None:
    from nltk.translate.bleu_score import corpus_bleu as nltk_bleu

    hyps, refs = random_corpus(seed, shortest=4)  # nltk counts a shorter hypothesis as one n-gram
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nltk warns when an order has no match (and returns ~0)
        expected = nltk_bleu(refs, hyps, weights=NLTK_WEIGHTS)
    assert corpus_bleu(hyps, refs) == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize("seed", range(40))
def test_corpus_bleu_equals_torchmetrics(seed: int) -> None:
    from torchmetrics.text import BLEUScore

    hyps, refs = random_corpus(seed, shortest=0)
    # torchmetrics takes the first closest reference on a tie; shortest first, it takes the shorter, as we do
    joined = [[" ".join(r) for r in sorted(rs, key=len)] for rs in refs]
    expected = [float(BLEUScore(n_gram=n)([" ".join(h) for h in hyps], joined)) for n in range(1, 5)]
    assert corpus_bleu(hyps, refs) == pytest.approx(expected, abs=1e-6)


def test_a_case_worked_by_hand() -> None:
    hyp = ["the", "the", "the", "the", "the", "the", "the"]
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]]
    # Papineni et al.'s example: "the" is clipped to the 2 of the first reference -> p1 = 2/7; the closest
    # reference has 7 words (as long as the hypothesis), so no brevity penalty
    assert corpus_bleu([hyp], [refs], max_n=1) == pytest.approx([2 / 7])
    short = ["the", "cat"]  # p1 = 1, p2 = 1; closest length 6, c = 2: BP = exp(1 - 6/2)
    assert corpus_bleu([short], [refs], max_n=2) == pytest.approx([pytest.approx(0.1353, abs=1e-4)] * 2)
    assert corpus_bleu([refs[0]], [refs]) == pytest.approx([1.0] * 4)


def test_no_match_of_an_order_gives_zero_from_there_on() -> None:
    scores = corpus_bleu([["red", "blue", "green", "star"]], [[["blue", "red", "star", "green"]]])
    assert scores[0] == pytest.approx(1.0) and scores[1:] == [0.0, 0.0, 0.0]
    assert corpus_bleu([[]], [[["a", "red", "star"]]]) == [0.0] * 4


def test_mismatched_inputs_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        corpus_bleu([["a"], ["b"]], [[["a"]]])
    with pytest.raises(ValueError, match="at least one reference"):
        corpus_bleu([["a"]], [[]])
