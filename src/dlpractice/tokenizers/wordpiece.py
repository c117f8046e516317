"""WordPiece (Schuster & Nakajima, 2012; BERT): likelihood-scored merges, `##` pieces, greedy encoding.

Training follows the Hugging Face course's description: words start as characters, every character
after the first carrying the `##` continuation prefix; each step merges the pair with the highest
score count(ab) / (count(a) * count(b)) (ties: the higher pair count, then the smaller pair of strings)
until the vocabulary is full. Encoding is BERT's greedy longest-match-first, word by word, and a word
with a piece that is not in the vocabulary becomes a single [UNK], as in BERT and Hugging Face.

Simplified: no normalisation (case and accents are kept), words come from the Hugging Face
`Whitespace` pre-tokenizer's rule (runs of word characters, runs of other non-space characters), and
each merge recounts all pairs of the distinct words (fine for the small corpora of the lab).

Round trip: whitespace is not kept, so decode(encode(s)) == " ".join(pre_tokenize(s)) for any `s`
made of characters seen in training; other text decodes with [UNK] in place of the unknown words. A
word that itself starts with "##" is ambiguous (decode glues it to the previous word), as in BERT.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from itertools import pairwise

import regex

PREFIX = "##"
UNK = "[UNK]"
WORD_PATTERN = regex.compile(r"\w+|[^\w\s]+")
MAX_WORD_CHARS = 100  # BERT's limit: longer words become [UNK]


def pre_tokenize(text: str) -> list[str]:
    """Runs of word characters and runs of other non-space characters; whitespace is dropped."""
    return WORD_PATTERN.findall(text)


def initial_pieces(word: str) -> list[str]:
    """The first character as is, the rest as continuation pieces: "cat" -> ["c", "##a", "##t"]."""
    return [word[0]] + [PREFIX + char for char in word[1:]]


def join_pair(a: str, b: str) -> str:
    """The token made by merging `a` and the continuation piece `b`: ("ca", "##t") -> "cat"."""
    return a + b.removeprefix(PREFIX)


def best_pair(splits: dict[str, list[str]], word_counts: Counter[str]) -> tuple[str, str] | None:
    """The adjacent pair with the highest count(ab) / (count(a) * count(b)), or None when none is left."""
    piece_counts: Counter[str] = Counter()
    pair_counts: Counter[tuple[str, str]] = Counter()
    for word, pieces in splits.items():
        freq = word_counts[word]
        for piece in pieces:
            piece_counts[piece] += freq
        for pair in pairwise(pieces):
            pair_counts[pair] += freq
    if not pair_counts:
        return None

    def rank(pair: tuple[str, str]) -> tuple[float, int, tuple[str, str]]:
        a, b = pair
        score = pair_counts[pair] / (piece_counts[a] * piece_counts[b])
        return (-score, -pair_counts[pair], pair)

    return min(pair_counts, key=rank)


def merge_pieces(pieces: list[str], pair: tuple[str, str]) -> list[str]:
    """Replace each occurrence of `pair` in `pieces` by the joined token, left to right."""
    merged, i = [], 0
    while i < len(pieces):
        if i + 1 < len(pieces) and (pieces[i], pieces[i + 1]) == pair:
            merged.append(join_pair(*pair))
            i += 2
        else:
            merged.append(pieces[i])
            i += 1
    return merged


class WordPieceTokenizer:
    """A WordPiece vocabulary (token -> id, special tokens first) with greedy longest-match encoding."""

    def __init__(self, vocab: dict[str, int], unk_token: str = UNK) -> None:
        if unk_token not in vocab:
            raise ValueError(f"the vocabulary has no unknown token {unk_token!r}")
        self.vocab = vocab
        self.unk_token = unk_token
        self.id_to_token = {i: token for token, i in vocab.items()}

    @classmethod
    def train(cls, text: str, vocab_size: int, special_tokens: Iterable[str] = (UNK,)) -> WordPieceTokenizer:
        """Specials, then the alphabet (sorted), then merged tokens until `vocab_size` or no pair is left.

        The vocabulary is larger than `vocab_size` when the specials and the alphabet alone exceed it.
        """
        special_tokens = list(special_tokens)
        word_counts = Counter(pre_tokenize(text))
        splits = {word: initial_pieces(word) for word in word_counts}
        # Every character both word-initial and as a continuation, so that any word of seen characters
        # can be spelled (the Hugging Face trainer keeps only the forms it saw).
        chars = {char for word in word_counts for char in word}
        alphabet = sorted(chars | {PREFIX + char for char in chars})
        tokens = special_tokens + [piece for piece in alphabet if piece not in special_tokens]
        known = set(tokens)
        while len(tokens) < vocab_size:
            pair = best_pair(splits, word_counts)
            if pair is None:
                break
            splits = {word: merge_pieces(pieces, pair) for word, pieces in splits.items()}
            new_token = join_pair(*pair)
            if new_token not in known:  # two merge paths can spell the same token
                tokens.append(new_token)
                known.add(new_token)
        return cls({token: i for i, token in enumerate(tokens)}, unk_token=special_tokens[0])

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def tokenize_word(self, word: str) -> list[str]:
        """Greedy longest-match-first; the whole word is [UNK] when some position matches nothing."""
        if len(word) > MAX_WORD_CHARS:
            return [self.unk_token]
        pieces = []
        # BEGIN EXERCISE n2.4: split the word greedily, taking the longest vocabulary piece at each position
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else PREFIX + word[start:end]
                if piece in self.vocab:
                    pieces.append(piece)
                    start = end
                    break
            else:
                return [self.unk_token]
        # END EXERCISE
        return pieces

    def tokenize(self, text: str) -> list[str]:
        return [piece for word in pre_tokenize(text) for piece in self.tokenize_word(word)]

    def encode(self, text: str) -> list[int]:
        return [self.vocab[piece] for piece in self.tokenize(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """Continuation pieces glue onto the previous token; other tokens are separated by a space."""
        out = []
        for i in ids:
            token = self.id_to_token[i]
            if token.startswith(PREFIX) and out:
                out[-1] += token.removeprefix(PREFIX)
            else:
                out.append(token)
        return " ".join(out)
