"""Unigram LM: Viterbi equals brute force, EM raises the likelihood, training prunes to size, round trip."""

from __future__ import annotations

import math
from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlpractice.practice.checks.test_n2_tokenizers import score, segmentations
from dlpractice.tokenizers.unigram import (
    SPACE,
    UNK_SURFACE,
    UnigramTokenizer,
    em_step,
    expected_counts,
    log_likelihood,
    seed_pieces,
    to_words,
)


@pytest.fixture(scope="module")
def training_text(corpus: str) -> str:
    return corpus[:4000] + corpus[-400:]  # Python source, then prose with accents and scripts


@pytest.fixture(scope="module")
def tokenizer(training_text: str) -> UnigramTokenizer:
    return UnigramTokenizer.train(training_text, vocab_size=200)


def test_words_start_at_the_space_marker() -> None:
    assert to_words("Hello  world") == [f"{SPACE}Hello", SPACE, f"{SPACE}world"]
    assert to_words(" x\ny") == [SPACE, f"{SPACE}x\ny"]
    assert to_words("") == []


def test_expected_counts_match_enumerating_every_segmentation() -> None:
    logp = {"a": -1.0, "b": -2.0, "ab": -1.5, "ba": -2.5, "aba": -3.0}
    word = "abab"
    weights = {tuple(p): math.exp(score(p, logp)) for p in segmentations(word) if score(p, logp) > -math.inf}
    total = sum(weights.values())
    brute = Counter()
    for pieces, weight in weights.items():
        for piece in pieces:
            brute[piece] += 3 * weight / total
    counts = expected_counts(Counter({word: 3}), logp, 3)
    assert set(counts) == set(brute)
    for piece in brute:
        assert math.isclose(counts[piece], brute[piece], rel_tol=1e-9)
    assert math.isclose(log_likelihood(Counter({word: 3}), logp, 3), 3 * math.log(total), rel_tol=1e-9)


def test_em_increases_the_likelihood(training_text: str) -> None:
    word_counts = Counter(to_words(training_text))
    logp = seed_pieces(word_counts, 8, 300)
    likelihoods = [log_likelihood(word_counts, logp, 8)]
    for _ in range(3):
        logp = em_step(word_counts, logp, 8)
        likelihoods.append(log_likelihood(word_counts, logp, 8))
    assert all(after >= before - 1e-6 for before, after in pairwise(likelihoods))
    assert likelihoods[-1] > likelihoods[0]


def test_training_prunes_to_size_and_keeps_every_character(
    tokenizer: UnigramTokenizer, training_text: str
) -> None:
    assert tokenizer.vocab_size == 200
    pieces = set(tokenizer.pieces)
    assert {char for word in to_words(training_text) for char in word} <= pieces
    assert any(len(piece) > 3 for piece in pieces)
    assert math.isclose(sum(math.exp(v) for v in tokenizer.logp.values()), 1.0, rel_tol=1e-9)


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_round_trip_on_text_of_seen_characters(tokenizer: UnigramTokenizer, training_text: str, data) -> None:
    alphabet = sorted(set(training_text) - {SPACE})
    text = data.draw(st.text(alphabet=alphabet, max_size=80))
    assert tokenizer.decode(tokenizer.encode(text)) == text


def test_unseen_characters_become_unk(tokenizer: UnigramTokenizer) -> None:
    ids = tokenizer.encode("def ☃")
    assert 0 in ids
    assert tokenizer.decode(ids) == f"def {UNK_SURFACE}"
