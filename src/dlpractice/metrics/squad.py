"""SQuAD v1.1 exact match and F1 (Rajpurkar et al., 2016), and a sorting of wrong answers (n8).

Both compare normalised strings: lower-cased, punctuation and the articles a/an/the removed, white space
collapsed. Exact match is 1 when the strings are equal; F1 is the harmonic mean of precision and recall
of the tokens they share (a bag of words: each shared token counts as often as it occurs in both). A
question has several reference answers; its score is the best over them. Scores here are fractions
(0-1); the official script prints them times 100.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Callable, Iterable

FAILURE_KINDS = ("exact", "too long", "too short", "overlaps", "elsewhere", "no answer")


def normalize_answer(text: str) -> str:
    text = "".join(c for c in text.lower() if c not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, truth: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(truth))


def f1_score(prediction: str, truth: str) -> float:
    """Token-overlap F1 of two answers after normalisation."""
    # BEGIN EXERCISE n8.2: SQuAD F1: normalise both, count shared tokens (with multiplicity), P, R, F1
    predicted, true = normalize_answer(prediction).split(), normalize_answer(truth).split()
    shared = sum((Counter(predicted) & Counter(true)).values())
    if shared == 0:
        return 0.0
    precision, recall = shared / len(predicted), shared / len(true)
    return 2 * precision * recall / (precision + recall)
    # END EXERCISE


def best_over(metric: Callable[[str, str], float], prediction: str, answers: Iterable[str]) -> float:
    return max(metric(prediction, truth) for truth in answers)


def squad_scores(predictions: dict[str, str], answers: dict[str, list[str]]) -> dict[str, float]:
    """{"exact_match", "f1"}: means over every question of `answers` (a missing prediction scores 0)."""
    em = [best_over(exact_match, predictions.get(qid, ""), truths) for qid, truths in answers.items()]
    f1 = [best_over(f1_score, predictions.get(qid, ""), truths) for qid, truths in answers.items()]
    return {"exact_match": sum(em) / len(em), "f1": sum(f1) / len(f1)}


def contains(outer: str, inner: str) -> bool:
    """Whether the normalised words of `inner` occur in `outer` as a run of whole words."""
    return f" {inner} " in f" {outer} "


def failure_kind(prediction: str, answers: list[str]) -> str:
    """One of FAILURE_KINDS: how a predicted answer relates to the closest reference answer."""
    guess = normalize_answer(prediction)
    truths = [normalize_answer(a) for a in answers]
    if not guess:
        return "no answer"
    if guess in truths:
        return "exact"
    if any(t and contains(guess, t) for t in truths):
        return "too long"  # the answer and some words around it
    if any(contains(t, guess) for t in truths):
        return "too short"  # part of the answer
    if best_over(f1_score, prediction, answers) > 0:
        return "overlaps"
    return "elsewhere"
