"""Byte-level BPE: exact round trips, merges equal to the textbook trainer, fast encode equal to naive."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dlpractice.tokenizers.bpe import GPT4_SPLIT_PATTERN, BPETokenizer, split_chunks, train_merges

SPECIALS = ["<|endoftext|>", "<|end|>"]
CODE_ALPHABET = sorted(set("def wrap(text, width=70):\n    é東 "))  # texts that hit many merges


def train_merges_by_recount(chunk_counts: Counter[str], num_merges: int) -> dict[tuple[int, int], int]:
    """The textbook trainer: recount every pair before every merge. Ties as minbpe breaks them: `max`
    over a dict filled in text order keeps the first of the most frequent pairs."""
    chunks = {tuple(chunk.encode("utf-8")): freq for chunk, freq in chunk_counts.items()}
    merges = {}
    for new_id in range(256, 256 + num_merges):
        counts: dict[tuple[int, int], int] = {}
        for ids, freq in chunks.items():  # chunks in order of first occurrence, pairs left to right
            for pair in pairwise(ids):
                counts[pair] = counts.get(pair, 0) + freq
        if not counts:
            break
        best = max(counts, key=counts.get)
        merges[best] = new_id
        merged: Counter[tuple[int, ...]] = Counter()
        for ids, freq in chunks.items():
            merged[replace_pair(ids, best, new_id)] += freq
        chunks = merged
    return merges


def replace_pair(ids: tuple[int, ...], pair: tuple[int, int], new_id: int) -> tuple[int, ...]:
    out, i = [], 0
    while i < len(ids):
        if ids[i : i + 2] == pair:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return tuple(out)


@pytest.fixture(scope="module")
def tokenizer(corpus: str) -> BPETokenizer:
    return BPETokenizer.train(corpus, vocab_size=256 + 200)


@pytest.fixture(scope="module")
def tokenizer_without_split(corpus: str) -> BPETokenizer:
    return BPETokenizer.train(corpus[:3000], vocab_size=256 + 60, pattern=None)


@pytest.fixture(scope="module")
def tokenizer_with_specials(corpus: str) -> BPETokenizer:
    return BPETokenizer.train(corpus + SPECIALS[0], vocab_size=256 + 100, special_tokens=SPECIALS)


def test_regex_split_covers_the_text(corpus: str) -> None:
    assert "".join(split_chunks(corpus, GPT4_SPLIT_PATTERN)) == corpus


def test_incremental_merges_equal_full_recount(corpus: str) -> None:
    chunk_counts = Counter(split_chunks(corpus, GPT4_SPLIT_PATTERN))
    expected = train_merges_by_recount(chunk_counts, 200)
    assert list(train_merges(chunk_counts, 200).items()) == list(expected.items())


def test_merges_without_split_equal_full_recount(corpus: str) -> None:
    chunk_counts = Counter([corpus[:3000]])
    assert list(train_merges(chunk_counts, 60).items()) == list(
        train_merges_by_recount(chunk_counts, 60).items()
    )


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet="ab c\n", max_size=60), st.integers(1, 30))
def test_merges_equal_full_recount_on_tie_heavy_texts(text: str, num_merges: int) -> None:
    chunk_counts = Counter(split_chunks(text, GPT4_SPLIT_PATTERN))
    expected = train_merges_by_recount(chunk_counts, num_merges)
    assert list(train_merges(chunk_counts, num_merges).items()) == list(expected.items())


def test_ties_go_to_the_pair_that_occurs_first() -> None:
    # "cdab": three pairs seen once each; the first in the text wins, not the smallest, (a, b)
    tokenizer = BPETokenizer.train("cdab", vocab_size=258, pattern=None)
    assert tokenizer.merges == {(ord("c"), ord("d")): 256, (256, ord("a")): 257}


def test_a_tie_counts_where_a_pair_occurs_now_not_where_it_did() -> None:
    # ab, bc: 3 each, ab occurs first and is merged; that consumes the first bc (inside "abc"), so the
    # two bc left (at 12 and 17) now come after the first de (at 9): de, twice too, wins the tie.
    text = "abcabxabydezbcwdebc"
    merges = BPETokenizer.train(text, vocab_size=259, pattern=None).merges
    assert list(merges) == [(ord("a"), ord("b")), (ord("d"), ord("e")), (ord("b"), ord("c"))]
    assert list(merges) == list(train_merges_by_recount(Counter([text]), 3))


@pytest.fixture(scope="module")
def minbpe(peers):
    """minbpe's basic and regex modules, as they are in ../shared/peers, and minbpe's own test text."""
    benchmark, folder = peers
    return *benchmark.import_minbpe(folder), folder / "minbpe" / "tests" / "taylorswift.txt"


@pytest.mark.parametrize("pattern", [GPT4_SPLIT_PATTERN, None], ids=["regex", "basic"])
def test_merges_and_ids_are_minbpes(minbpe, pattern: str | None) -> None:
    # on the first 5,000 characters of minbpe's own test text, the old rule (smallest pair) chose 31
    # of the 60 merges differently
    basic, regex, taylorswift = minbpe
    text = taylorswift.read_text(encoding="utf-8")[:5000]
    theirs = regex.RegexTokenizer() if pattern else basic.BasicTokenizer()
    theirs.train(text, 256 + 60)
    ours = BPETokenizer.train(text, 256 + 60, pattern=pattern)
    assert list(ours.merges.items()) == list(theirs.merges.items())
    assert ours.encode(text) == theirs.encode(text)


def test_training_stops_when_pairs_run_out() -> None:
    tokenizer = BPETokenizer.train("ab", vocab_size=300)
    assert tokenizer.merges == {(97, 98): 256}


@settings(max_examples=150, deadline=None)
@given(st.text())
def test_round_trip_is_exact_on_any_unicode(
    tokenizer: BPETokenizer, tokenizer_without_split, text: str
) -> None:
    assert tokenizer.decode(tokenizer.encode(text)) == text
    assert tokenizer_without_split.decode(tokenizer_without_split.encode(text)) == text


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.text(max_size=20), st.sampled_from(SPECIALS)), max_size=8))
def test_round_trip_with_special_tokens(tokenizer_with_specials: BPETokenizer, parts: list[str]) -> None:
    text = "".join(parts)
    ids = tokenizer_with_specials.encode(text)
    assert tokenizer_with_specials.decode(ids) == text


def test_special_tokens_get_their_own_ids(tokenizer_with_specials: BPETokenizer) -> None:
    end, end_of_text = (
        tokenizer_with_specials.special_tokens["<|end|>"],
        tokenizer_with_specials.special_tokens[SPECIALS[0]],
    )
    assert end_of_text == 256 + len(tokenizer_with_specials.merges)
    assert tokenizer_with_specials.vocab_size == 256 + 100
    ids = tokenizer_with_specials.encode("hi<|endoftext|>there<|end|>")
    assert end_of_text in ids and end in ids
    assert all(i < end_of_text for i in tokenizer_with_specials.encode("<|endoftex|>"))


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=CODE_ALPHABET))
def test_fast_encode_equals_naive_encode(tokenizer: BPETokenizer, text: str) -> None:
    assert tokenizer.encode(text) == tokenizer.encode_naive(text)


def test_fast_encode_equals_naive_encode_on_the_corpus(tokenizer: BPETokenizer, corpus: str) -> None:
    tokenizer.clear_cache()
    assert tokenizer.encode(corpus[:5000]) == tokenizer.encode_naive(corpus[:5000])


def test_save_and_load_give_the_same_tokenizer(
    tokenizer_with_specials: BPETokenizer, tmp_path, corpus: str
) -> None:
    path = tmp_path / "bpe.json"
    tokenizer_with_specials.save(path)
    loaded = BPETokenizer.load(path)
    assert loaded.merges == tokenizer_with_specials.merges
    assert loaded.special_tokens == tokenizer_with_specials.special_tokens
    assert loaded.encode(corpus[:2000] + "<|end|>") == tokenizer_with_specials.encode(
        corpus[:2000] + "<|end|>"
    )


def test_too_small_a_vocabulary_is_refused() -> None:
    with pytest.raises(ValueError, match="vocab_size"):
        BPETokenizer.train("text", vocab_size=256, special_tokens=["<|end|>"])
