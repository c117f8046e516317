"""Word and character error rates (WER, CER) by edit distance, as `jiwer` computes them.

The edit distance (Levenshtein, 1966) between a reference and a hypothesis is the fewest substitutions,
deletions and insertions that turn one into the other; WER is their sum over a corpus divided by the
number of reference words, CER the same over characters. Both can exceed 1 (many insertions). The test
checks every number against jiwer on the same sentences.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Errors:
    """How a hypothesis differs from its reference, counted in tokens (words or characters)."""

    substitutions: int
    deletions: int
    insertions: int
    reference_length: int

    @property
    def total(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    def __add__(self, other: Errors) -> Errors:
        return Errors(
            self.substitutions + other.substitutions,
            self.deletions + other.deletions,
            self.insertions + other.insertions,
            self.reference_length + other.reference_length,
        )


def edit_table(reference: Sequence, hypothesis: Sequence) -> list[list[int]]:
    """table[i][j]: the fewest substitutions, deletions and insertions that turn the first i reference
    tokens into the first j hypothesis tokens (Levenshtein's dynamic programme)."""
    # BEGIN EXERCISE s4.2: fill the edit-distance table: first row and column, then min of three moves
    n, m = len(reference), len(hypothesis)
    table = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            substitute = table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1])
            table[i][j] = min(substitute, table[i - 1][j] + 1, table[i][j - 1] + 1)  # ..., delete, insert
    return table
    # END EXERCISE


def edit_distance(reference: Sequence, hypothesis: Sequence) -> int:
    return edit_table(reference, hypothesis)[-1][-1]


def align(reference: Sequence, hypothesis: Sequence) -> Errors:
    """The error counts of one best alignment: the table walked back from its last cell.

    Ties are broken a substitution (or match) first, then a deletion, then an insertion."""
    table = edit_table(reference, hypothesis)
    subs = dels = ins = 0
    i, j = len(reference), len(hypothesis)
    while i or j:
        if i and j and table[i][j] == table[i - 1][j - 1] + (reference[i - 1] != hypothesis[j - 1]):
            subs += reference[i - 1] != hypothesis[j - 1]
            i, j = i - 1, j - 1
        elif i and table[i][j] == table[i - 1][j] + 1:
            dels, i = dels + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return Errors(subs, dels, ins, len(reference))


def corpus_errors(references: Sequence[str], hypotheses: Sequence[str], unit: str = "word") -> Errors:
    """Summed errors over sentence pairs; `unit` "word" splits on whitespace, "char" counts characters."""
    if len(references) != len(hypotheses):
        raise ValueError(f"{len(references)} references but {len(hypotheses)} hypotheses")
    split = str.split if unit == "word" else (lambda s: list(s.strip()))  # char: inner spaces count, as jiwer
    total = Errors(0, 0, 0, 0)
    for ref, hyp in zip(references, hypotheses):
        total += align(split(ref), split(hyp))
    return total


def word_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """(S + D + I) / N over a corpus, N the reference words: jiwer.wer."""
    errors = corpus_errors(references, hypotheses, "word")
    return errors.total / max(errors.reference_length, 1)


def char_error_rate(references: Sequence[str], hypotheses: Sequence[str]) -> float:
    """(S + D + I) / N over characters (spaces count): jiwer.cer."""
    errors = corpus_errors(references, hypotheses, "char")
    return errors.total / max(errors.reference_length, 1)
