"""ROUGE-L (Lin, 2004) and exact match for generated text, as lab n10 scores instructions' responses.

ROUGE-L compares a candidate with a reference through their longest common subsequence (LCS) of words:
precision = LCS / candidate words, recall = LCS / reference words, F = their harmonic mean. Words are
Google's `rouge_score` words (lower case, runs of letters and digits, no stemming), so the scores equal
`rouge_scorer.RougeScorer(["rougeL"]).score(reference, candidate)["rougeL"].fmeasure` (the tests check it).
"""

from __future__ import annotations

import re

WORDS = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """rouge_score's default tokenisation: lower case, anything but letters and digits separates."""
    return WORDS.findall(text.lower())


def lcs_length(a: list[str], b: list[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming over one row at a time."""
    previous = [0] * (len(b) + 1)
    for x in a:
        current = [0]
        for j, y in enumerate(b):
            current.append(previous[j] + 1 if x == y else max(previous[j + 1], current[j]))
        previous = current
    return previous[-1]


def rouge_l(reference: str, candidate: str) -> float:
    """ROUGE-L F-measure of one candidate against one reference; 0 when either has no words."""
    ref, cand = words(reference), words(candidate)
    common = lcs_length(ref, cand)
    if common == 0:
        return 0.0
    precision, recall = common / len(cand), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def exact_match(reference: str, candidate: str) -> bool:
    """The same text up to case and whitespace."""
    return " ".join(reference.lower().split()) == " ".join(candidate.lower().split())
