"""WordPiece: likelihood-scored training, greedy longest match identical to Hugging Face's model."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import models

from dlpractice.tokenizers.wordpiece import (
    UNK,
    WordPieceTokenizer,
    best_pair,
    initial_pieces,
    pre_tokenize,
)


@pytest.fixture(scope="module")
def tokenizer(corpus: str) -> WordPieceTokenizer:
    return WordPieceTokenizer.train(corpus[:6000], vocab_size=300)


def test_the_likelihood_score_prefers_pairs_whose_parts_are_rare() -> None:
    # ("x", "##y") occurs twice but "x" and "##y" are frequent; ("q", "##z") once, both parts rare.
    word_counts = {"xy": 2, "xa": 5, "by": 5, "qz": 1}
    splits = {word: initial_pieces(word) for word in word_counts}
    assert best_pair(splits, word_counts) == ("q", "##z")


def test_training_fills_the_vocabulary_with_specials_first(
    tokenizer: WordPieceTokenizer, corpus: str
) -> None:
    assert tokenizer.vocab_size == 300
    assert tokenizer.vocab[UNK] == 0
    assert {piece for word in pre_tokenize(corpus[:6000]) for piece in initial_pieces(word)} <= set(
        tokenizer.vocab
    )
    merged = [token for token in tokenizer.vocab if len(token.removeprefix("##")) > 1]
    assert merged, "training should add merged tokens"


def test_known_words_encode_to_pieces_and_unknown_characters_to_unk(tokenizer: WordPieceTokenizer) -> None:
    pieces = tokenizer.tokenize("text width")
    assert UNK not in pieces
    assert "".join(piece.removeprefix("##") for piece in pieces) == "textwidth"
    assert tokenizer.tokenize("text ☃ wrap") == [
        *tokenizer.tokenize("text"),
        UNK,
        *tokenizer.tokenize("wrap"),
    ]


def test_same_tokens_as_hugging_face_wordpiece(tokenizer: WordPieceTokenizer, corpus: str) -> None:
    hf_model = models.WordPiece(vocab=tokenizer.vocab, unk_token=UNK, max_input_chars_per_word=100)
    words = set(pre_tokenize(corpus)) | {"naïve☃", "☃", "x" * 101, "wrapping", "Москва"}
    for word in sorted(words):
        assert tokenizer.tokenize_word(word) == [token.value for token in hf_model.tokenize(word)], word


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_é東(.)", min_size=1, max_size=30))
def test_same_tokens_as_hugging_face_on_random_words(tokenizer: WordPieceTokenizer, word: str) -> None:
    hf_model = models.WordPiece(vocab=tokenizer.vocab, unk_token=UNK)
    assert tokenizer.tokenize_word(word) == [token.value for token in hf_model.tokenize(word)]


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet="the quick brown fox, (wrap) TEXT\n.", max_size=80))
def test_round_trip_keeps_words_not_whitespace(tokenizer: WordPieceTokenizer, text: str) -> None:
    assert tokenizer.decode(tokenizer.encode(text)) == " ".join(pre_tokenize(text))
