"""Corpus BLEU (Papineni et al., 2002) by hand, for lab v11 (image captioning).

BLEU-N of a corpus = BP · exp(mean over n = 1..N of log p_n), where p_n is the clipped n-gram precision
summed over the whole corpus (each n-gram of a hypothesis counts at most as often as it occurs in the
one reference that has it most often) and BP the brevity penalty: 1 when the hypotheses are longer in
total than their references, exp(1 - r / c) otherwise, with c the hypotheses' total length and r the sum
of each hypothesis's closest reference length (the shorter one on a tie, as nltk does). No smoothing:
one n-gram order without a single match gives BLEU 0. Checked in the tests and in every run against
torchmetrics' `BLEUScore` (which takes the first closest reference on a tie: the references go to it
shortest first) and nltk's `corpus_bleu` (which counts a hypothesis shorter than n as having one n-gram,
so the two agree where every hypothesis has at least max_n words).
"""

from __future__ import annotations

import math
from collections import Counter


def ngrams(tokens: list[str], n: int) -> Counter:
    """How often each n-gram (a tuple of n words) occurs in `tokens`."""
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def corpus_bleu(
    hypotheses: list[list[str]], references: list[list[list[str]]], max_n: int = 4
) -> list[float]:
    """[BLEU-1, ..., BLEU-max_n] of hypotheses (word lists), each against its references (word lists)."""
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} lists of references")
    if any(not refs for refs in references):
        raise ValueError("every hypothesis needs at least one reference")
    # BEGIN EXERCISE v11.1: clipped n-gram counts over the corpus, closest reference lengths, brevity penalty
    matched, total = [0] * max_n, [0] * max_n
    hyp_len = ref_len = 0
    for hyp, refs in zip(hypotheses, references):
        hyp_len += len(hyp)
        ref_len += min((len(r) for r in refs), key=lambda length: (abs(length - len(hyp)), length))
        for n in range(1, max_n + 1):
            counts = ngrams(hyp, n)
            most = Counter()
            for ref in refs:
                most |= ngrams(ref, n)  # union: the most times any single reference has each n-gram
            matched[n - 1] += sum((counts & most).values())  # intersection: clipped counts
            total[n - 1] += sum(counts.values())
    if hyp_len == 0:
        return [0.0] * max_n
    brevity = 1.0 if hyp_len > ref_len else math.exp(1 - ref_len / hyp_len)
    scores, log_sum = [], 0.0
    for n in range(max_n):
        if matched[n] == 0:  # log 0: this order and every higher one score 0
            scores += [0.0] * (max_n - n)
            break
        log_sum += math.log(matched[n] / total[n])
        scores.append(brevity * math.exp(log_sum / (n + 1)))
    # END EXERCISE
    return scores
