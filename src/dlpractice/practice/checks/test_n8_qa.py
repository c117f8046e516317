"""Checks of lab n8: span decoding against brute force, and the SQuAD F1 against the official script."""

from __future__ import annotations

import random
import re
import string
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

# ---- the official SQuAD v1.1 evaluation script (evaluate-v1.1.py), its functions as published ----------


def official_normalize_answer(s):
    def remove_articles(text):
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text):
        return " ".join(text.split())

    def remove_punc(text):
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text):
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def official_f1_score(prediction, ground_truth):
    prediction_tokens = official_normalize_answer(prediction).split()
    ground_truth_tokens = official_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    f1 = (2 * precision * recall) / (precision + recall)
    return f1


# ---- the checks ------------------------------------------------------------------------------------------

# hand-made cases: articles, punctuation, case, repeated tokens, partial overlaps, empty answers
CASES = [
    ("the Eiffel Tower", "Eiffel Tower"),
    ("Eiffel Tower, Paris", "The Eiffel Tower"),
    ("in 1889", "1889"),
    ("the the the cat", "a cat cat"),
    ("New York City", "new york"),
    ("", "Denver Broncos"),
    ("Denver Broncos", "Carolina Panthers"),
    ("U.S.", "US"),
    ("an apple a day", "apple day"),
    ("Saint-Étienne", "saint étienne"),
    ("cat cat dog", "cat cat"),
]


def assert_official_f1(impl, prediction: str, truth: str) -> None:
    got, want = impl.f1_score(prediction, truth), official_f1_score(prediction, truth)
    assert got == pytest.approx(want), (
        f"F1({prediction!r}, {truth!r}) should be {want:.4f} (lower case, no punctuation or articles, "
        f"shared tokens counted with repeats); got {got:.4f}"
    )


@pytest.mark.exercise("n8.2")
@pytest.mark.parametrize(("prediction", "truth"), CASES)
def test_f1_matches_the_official_script(impl, prediction, truth):
    """Token F1 after SQuAD's normalisation equals the official script's."""
    assert_official_f1(impl, prediction, truth)


@pytest.mark.exercise("n8.2")
@settings(max_examples=200, deadline=None)
@given(
    prediction=st.text(alphabet=" aAbBcTthe.,!-'", max_size=24),
    truth=st.text(alphabet=" aAbBcTthe.,!-'", max_size=24),
)
def test_f1_matches_the_official_script_on_random_text(impl, prediction, truth):
    """The same on random text made of letters, articles and punctuation."""
    assert_official_f1(impl, prediction, truth)


def brute_force_best(start, end, offsets, max_tokens):
    spans = [
        (start[s] + end[e], offsets[s][0], offsets[e][1])
        for s in range(len(offsets))
        for e in range(len(offsets))
        if offsets[s] and offsets[e] and s <= e < s + max_tokens
    ]
    return max(spans)


@pytest.mark.exercise("n8.1")
@pytest.mark.parametrize("seed", range(5))
def test_best_span_is_the_brute_force_best(impl, seed):
    """The best span is the best of every valid (start <= end, short enough, inside the context) pair."""
    rng = random.Random(seed)
    offsets = (
        [None, None, None, None] + [(5 * i, 5 * i + 4) for i in range(12)] + [None]
    )  # question, context, SEP
    start = [rng.gauss(0, 2) for _ in offsets]
    end = [rng.gauss(0, 2) for _ in offsets]
    spans = impl.best_spans(start, end, offsets, n_best=len(offsets), max_answer_tokens=4)
    want = brute_force_best(start, end, offsets, 4)
    assert spans[0] == want, (
        f"the best span should be {want} (score, start char, end char) over pairs with "
        f"start <= end < start + 4 "
        f"inside the context; got {spans[0]}"
    )
    assert spans == sorted(spans, reverse=True), "the spans should be sorted best first"
    assert len(spans) <= len(offsets), f"at most n_best spans, got {len(spans)}"


@pytest.mark.exercise("n8.1")
def test_best_span_skips_invalid_pairs(impl):
    """Tokens outside the context, ends before starts and spans longer than the limit are never answers."""
    offsets = [None, (0, 3), (4, 9), (10, 15), (16, 20), None]
    start = [9.0, 0.0, -1.0, 0.0, 5.5, 9.0]  # the best start is [CLS], the next one lies after the best end
    end = [9.0, 4.0, 6.0, 0.0, 0.0, 9.0]
    spans = impl.best_spans(start, end, offsets, n_best=6, max_answer_tokens=30)
    assert spans[0] == (6.0, 0, 9), (
        f"the best valid span is tokens 1-2, (6.0, 0, 9): [CLS] and an end before its start are not answers; "
        f"got {spans[0]}"
    )
    one = impl.best_spans(start, end, offsets, n_best=6, max_answer_tokens=1)[0]
    assert one == (5.5, 16, 20), f"with max_answer_tokens=1 the best span is the one token 4, got {one}"
    two = impl.best_spans(start, end, offsets, n_best=2, max_answer_tokens=30)
    assert len(two) <= 2, f"n_best=2 should return at most 2 spans, got {len(two)}"
