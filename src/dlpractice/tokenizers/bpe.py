"""Byte-level BPE (Sennrich et al., 2016; GPT-2/GPT-4 style), trained and applied in pure Python.

Training pre-splits the text with a regex (GPT-4's by default), counts each distinct chunk once with
its frequency, and keeps the pair counts up to date incrementally: a merge only revisits the chunks
that contain the merged pair (found through a pair -> chunk-ids index), recounts only the pairs around
each merged site (which matters without a split, when the text is one long chunk), and a lazy max-heap
yields the next pair. The result is the same as recounting every pair before every merge, the textbook
loop.
Ties are broken as minbpe breaks them (its `max` over a pair-count dict filled in text order): among the
most frequent pairs, the one whose first occurrence comes first in the text, so both learn the same merges.

Encoding applies the merges to each chunk by repeatedly merging its lowest-rank pair, with a cache
of chunks already seen; `encode_naive` is the textbook loop (every merge, in order) kept as the baseline.

Simplified: no byte shuffling (GPT-2's bytes-to-unicode table matters only for display), special
tokens are always recognised by `encode`, and the vocabulary size counts the 256 bytes, the merges
and the special tokens.
"""

from __future__ import annotations

import heapq
import json
from collections import Counter
from collections.abc import Callable, Iterable
from itertools import accumulate, pairwise
from pathlib import Path

import regex

GPT4_SPLIT_PATTERN = (  # contractions, words, 1-3 digit numbers, punctuation runs, whitespace
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)
Pair = tuple[int, int]


def count_pairs(ids: list[int], counts: dict[Pair, int] | None = None, weight: int = 1) -> dict[Pair, int]:
    """Add `weight` to counts[(a, b)] for every adjacent pair of `ids` (overlapping pairs all count)."""
    counts = {} if counts is None else counts
    # BEGIN EXERCISE n2.1: count every adjacent pair of ids, adding `weight` for each occurrence
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + weight
    # END EXERCISE
    return counts


def merge(ids: list[int], pair: Pair, new_id: int) -> list[int]:
    """Replace each occurrence of `pair` in `ids`, scanning left to right, with `new_id`."""
    # BEGIN EXERCISE n2.2: merge the pair wherever it occurs, left to right, without overlaps
    merged = []
    i = 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            merged.append(new_id)
            i += 2
        else:
            merged.append(ids[i])
            i += 1
    return merged
    # END EXERCISE


def split_chunks(text: str, pattern: str | None) -> list[str]:
    """The pieces a merge may never cross: the regex matches (they cover the text), or the whole text."""
    if pattern is None:
        return [text] if text else []
    return regex.findall(pattern, text)


def special_splitter(special_tokens: Iterable[str]) -> regex.Pattern | None:
    """A regex whose split() alternates ordinary text and special tokens; None when there are none."""
    names = sorted(special_tokens, key=len, reverse=True)  # longest first: "<|a|>x" beats "<|a|>"
    return regex.compile("(" + "|".join(map(regex.escape, names)) + ")") if names else None


def split_specials(text: str, splitter: regex.Pattern | None) -> list[str]:
    """[ordinary, special, ordinary, ...]: even positions are plain text, odd ones special tokens."""
    return splitter.split(text) if splitter else [text]


def train_merges(chunk_counts: Counter[str], num_merges: int) -> dict[Pair, int]:
    """Learn up to `num_merges` merges from distinct chunks and their frequencies; ids start at 256.

    `chunk_counts` lists the chunks in the order they first occur in the text (a Counter does), which
    is what the tie rule needs: among the most frequent pairs, the one that occurs first in the text.
    """
    chunks = [list(chunk.encode("utf-8")) for chunk in chunk_counts]
    freqs = list(chunk_counts.values())
    # A pair's position: where its first occurrence starts, in bytes, in the distinct chunks laid end to
    # end. Bytes never move, so an occurrence keeps its position through every later merge.
    starts = list(accumulate(map(len, chunks), initial=0))
    widths = [1] * 256  # bytes per token id
    pair_counts: dict[Pair, int] = {}
    holders: dict[Pair, list[int]] = {}  # chunk ids in increasing order; may hold stale ones
    first: dict[Pair, int] = {}
    for chunk_id, (ids, freq) in enumerate(zip(chunks, freqs, strict=True)):
        count_pairs(ids, pair_counts, freq)
        for offset, pair in enumerate(pairwise(ids)):
            chunk_ids = holders.get(pair)
            if chunk_ids is None:
                holders[pair], first[pair] = [chunk_id], starts[chunk_id] + offset
            elif chunk_ids[-1] != chunk_id:
                chunk_ids.append(chunk_id)
    # A heap of (-count, position, pair) that may be out of date: merges only lower the count of an
    # existing pair and only remove its occurrences, so every pair has an entry at least as good as its
    # true key, and an entry on top that matches its pair's true key is the true best.
    heap = [(-count, first[pair], pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: dict[Pair, int] = {}
    while len(merges) < num_merges and heap:
        negative_count, position, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count == 0:
            continue
        if count != -negative_count:
            heapq.heappush(heap, (-count, position, pair))
            continue
        true_position = _first_position(pair, chunks, holders[pair], starts, widths)
        if true_position != position:
            heapq.heappush(heap, (-count, true_position, pair))
            continue
        new_id = 256 + len(merges)
        merges[pair] = new_id
        widths.append(widths[pair[0]] + widths[pair[1]])
        grown = _merge_in_chunks(pair, new_id, chunks, freqs, pair_counts, holders)
        for new_pair, chunk_id in grown.items():  # the chunk's start: at or before the first occurrence
            heapq.heappush(heap, (-pair_counts[new_pair], starts[chunk_id], new_pair))
    return merges


def _first_position(
    pair: Pair, chunks: list[list[int]], chunk_ids: list[int], starts: list[int], widths: list[int]
) -> int:
    """Where `pair` first occurs now; drops the chunks at the front of `chunk_ids` that lost it for good."""
    for k, chunk_id in enumerate(chunk_ids):
        i = _index_of(chunks[chunk_id], pair)
        if i >= 0:
            del chunk_ids[:k]  # a pair that left a chunk never comes back: only new ids form new pairs
            return starts[chunk_id] + sum(map(widths.__getitem__, chunks[chunk_id][:i]))
    raise AssertionError(f"pair {pair} has a count but occurs in no chunk")


def _index_of(ids: list[int], pair: Pair) -> int:
    """The index of the first occurrence of `pair` in `ids`, or -1 (list.index does the scanning in C)."""
    a, b = pair
    i = -1
    try:
        while True:
            i = ids.index(a, i + 1)
            if i + 1 < len(ids) and ids[i + 1] == b:
                return i
    except ValueError:
        return -1


def _merge_in_chunks(
    pair: Pair,
    new_id: int,
    chunks: list[list[int]],
    freqs: list[int],
    pair_counts: dict[Pair, int],
    holders: dict[Pair, list[int]],
) -> dict[Pair, int]:
    """Apply one merge to the chunks holding `pair`, updating counts and index; return each new pair with
    the first chunk that holds it."""
    grown: dict[Pair, int] = {}
    for chunk_id in holders.pop(pair):  # in increasing order, so each new pair's list stays sorted
        ids = chunks[chunk_id]
        merged = merge(ids, pair, new_id)
        if len(merged) == len(ids):
            continue  # a stale index entry: an earlier merge already consumed the pair here
        # Only the pairs that touch a merged site change; the rest of the chunk keeps its pairs. Pair j is
        # (ids[j], ids[j + 1]); the k-th new token, at p in `merged`, replaced ids[p + k] and ids[p + k + 1].
        sites = _indices(merged, new_id)
        last_old, last_new = len(ids) - 2, len(merged) - 2
        old = {j for k, p in enumerate(sites) for j in (p + k - 1, p + k, p + k + 1) if 0 <= j <= last_old}
        new = {j for p in sites for j in (p - 1, p) if 0 <= j <= last_new}
        freq = freqs[chunk_id]
        for j in old:
            pair_counts[ids[j], ids[j + 1]] -= freq
        for j in new:
            new_pair = (merged[j], merged[j + 1])
            pair_counts[new_pair] = pair_counts.get(new_pair, 0) + freq
            if new_pair not in grown:
                grown[new_pair] = chunk_id
                holders[new_pair] = [chunk_id]
            elif holders[new_pair][-1] != chunk_id:
                holders[new_pair].append(chunk_id)
        chunks[chunk_id] = merged
    del pair_counts[pair]
    return grown


def _indices(ids: list[int], token: int) -> list[int]:
    """Every index of `token` in `ids` (list.index does the scanning in C)."""
    found, i = [], -1
    try:
        while True:
            i = ids.index(token, i + 1)
            found.append(i)
    except ValueError:
        return found


class BPETokenizer:
    """A trained byte-level BPE: merges (pair -> new id), the split pattern and the special tokens."""

    def __init__(
        self,
        merges: dict[Pair, int],
        pattern: str | None = GPT4_SPLIT_PATTERN,
        special_tokens: dict[str, int] | None = None,
    ) -> None:
        self.merges = merges
        self.pattern = pattern
        self.special_tokens = special_tokens or {}
        self.vocab = {i: bytes([i]) for i in range(256)}
        for (a, b), new_id in merges.items():  # dicts keep insertion order: parts come before the merge
            self.vocab[new_id] = self.vocab[a] + self.vocab[b]
        self.special_by_id = {i: s for s, i in self.special_tokens.items()}
        self._special_split = special_splitter(self.special_tokens)
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        pattern: str | None = GPT4_SPLIT_PATTERN,
        special_tokens: Iterable[str] = (),
    ) -> BPETokenizer:
        """Learn vocab_size - 256 - len(special_tokens) merges (fewer if the text runs out of pairs)."""
        special_tokens = list(special_tokens)
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is below 256 bytes + {len(special_tokens)} specials")
        ordinary_parts = split_specials(text, special_splitter(special_tokens))[::2]  # never learnt from
        chunk_counts = Counter(chunk for part in ordinary_parts for chunk in split_chunks(part, pattern))
        merges = train_merges(chunk_counts, num_merges)
        first_special = 256 + len(merges)
        specials = {token: first_special + i for i, token in enumerate(special_tokens)}
        return cls(merges, pattern, specials)

    @property
    def vocab_size(self) -> int:
        return len(self.vocab) + len(self.special_tokens)

    def encode_chunk(self, chunk: str) -> list[int]:
        """Merge the chunk's lowest-rank pair until no pair has a merge (ranks = ids: earlier is lower)."""
        cached = self._cache.get(chunk)
        if cached is not None:
            return cached
        ids = list(chunk.encode("utf-8"))
        while len(ids) >= 2:
            pair = min(pairwise(ids), key=lambda p: self.merges.get(p, _NO_MERGE))
            if pair not in self.merges:
                break
            ids = merge(ids, pair, self.merges[pair])
        self._cache[chunk] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """Token ids of `text`; occurrences of the special tokens become their ids."""
        return self._encode_with(text, self.encode_chunk)

    def encode_naive(self, text: str) -> list[int]:
        """The textbook encoder: apply every merge, in training order, to every chunk (slow, no cache)."""

        def apply_all_merges(chunk: str) -> list[int]:
            ids = list(chunk.encode("utf-8"))
            for pair, new_id in self.merges.items():
                ids = merge(ids, pair, new_id)
            return ids

        return self._encode_with(text, apply_all_merges)

    def _encode_with(self, text: str, encode_chunk: Callable[[str], list[int]]) -> list[int]:
        ids: list[int] = []
        for i, part in enumerate(split_specials(text, self._special_split)):
            if i % 2:
                ids.append(self.special_tokens[part])
            else:
                for chunk in split_chunks(part, self.pattern):
                    ids.extend(encode_chunk(chunk))
        return ids

    def clear_cache(self) -> None:
        self._cache.clear()

    def decode(self, ids: Iterable[int]) -> str:
        """Concatenate the tokens' bytes; bytes that are not valid UTF-8 become U+FFFD."""
        pieces = [
            self.special_by_id[i].encode("utf-8") if i in self.special_by_id else self.vocab[i] for i in ids
        ]
        return b"".join(pieces).decode("utf-8", errors="replace")

    def token_bytes(self) -> list[bytes]:
        """Every ordinary token's bytes, in id order (special tokens excluded)."""
        return [self.vocab[i] for i in range(len(self.vocab))]

    def save(self, path: str | Path) -> None:
        """Write the pattern, the merges in order and the special tokens as JSON."""
        state = {
            "type": "byte-bpe",
            "pattern": self.pattern,
            "merges": [[a, b] for a, b in self.merges],
            "special_tokens": self.special_tokens,
        }
        Path(path).write_text(json.dumps(state, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        state = json.loads(Path(path).read_text())
        if state.get("type") != "byte-bpe":
            raise ValueError(f"{path} is not a byte-bpe tokenizer file")
        merges = {(a, b): 256 + i for i, (a, b) in enumerate(state["merges"])}
        return cls(merges, state["pattern"], state["special_tokens"])


_NO_MERGE = float("inf")
