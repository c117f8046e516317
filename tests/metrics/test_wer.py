"""Our WER and CER against jiwer on the same sentences, and the edit distance on known cases."""

from __future__ import annotations

import random

import jiwer
import pytest

from dlpractice.metrics import wer


def random_sentences(seed: int, n: int) -> tuple[list[str], list[str]]:
    """Pairs of digit-word sentences where the hypothesis is the reference with random edits."""
    rng = random.Random(seed)
    words = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "oh"]
    refs, hyps = [], []
    for _ in range(n):
        ref = [rng.choice(words) for _ in range(rng.randint(1, 8))]
        hyp = list(ref)
        for _ in range(rng.randint(0, 4)):
            kind = rng.choice(("sub", "del", "ins"))
            if kind == "ins" or not hyp:
                hyp.insert(rng.randint(0, len(hyp)), rng.choice(words))
            elif kind == "del":
                hyp.pop(rng.randrange(len(hyp)))
            else:
                hyp[rng.randrange(len(hyp))] = rng.choice(words)
        refs.append(" ".join(ref))
        hyps.append(" ".join(hyp) if hyp else rng.choice(words))  # jiwer rejects an empty hypothesis list
    return refs, hyps


@pytest.mark.parametrize("seed", range(5))
def test_wer_and_cer_match_jiwer(seed: int) -> None:
    refs, hyps = random_sentences(seed, 40)
    assert wer.word_error_rate(refs, hyps) == pytest.approx(jiwer.wer(refs, hyps), abs=1e-12)
    assert wer.char_error_rate(refs, hyps) == pytest.approx(jiwer.cer(refs, hyps), abs=1e-12)
    ours = wer.corpus_errors(refs, hyps, "word")
    theirs = jiwer.process_words(refs, hyps)
    assert ours.total == theirs.substitutions + theirs.deletions + theirs.insertions
    assert ours.reference_length == sum(len(r.split()) for r in refs)


def test_edit_distance_known_cases() -> None:
    assert wer.edit_distance("kitten", "sitting") == 3
    assert wer.edit_distance("", "abc") == 3 and wer.edit_distance("abc", "") == 3
    assert wer.align(["a", "b", "c", "d"], ["a", "x", "c"]) == wer.Errors(1, 1, 0, 4)
    assert wer.word_error_rate(["one two three"], ["one two three four five"]) == pytest.approx(2 / 3)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="2 references but 1 hypotheses"):
        wer.word_error_rate(["a", "b"], ["a"])
