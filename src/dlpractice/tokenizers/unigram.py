"""Unigram language-model tokenizer (Kudo, 2018), trained the way SentencePiece trains it.

A text is a sequence of independent pieces, P(x) = prod p(piece). Training starts from a large seed
vocabulary (every character plus the most frequent substrings, scored by frequency x length), then
alternates EM and pruning: EM re-estimates p(piece) from the expected piece counts (forward-backward
over each word's lattice of segmentations); pruning drops the pieces whose removal loses the least
likelihood (SentencePiece's estimate: re-segment the piece with the rest of the vocabulary), keeping
every single character, until the vocabulary has the requested size. Encoding is the Viterbi
(most likely) segmentation.

Spaces become the marker "▁" and a "▁" is put in front of the text, so a word is "▁" plus the
characters up to the next space; pieces never cross a word start. Simplified compared with
SentencePiece: no normalisation, maximum-likelihood M-step (no Bayesian digamma correction), a
frequent-substring seed counted directly (no suffix array), no sampling.

Round trip: decode(encode(s)) == s for any `s` made of characters seen in training, except that a
literal "▁" in `s` comes back as a space. An unseen character becomes <unk>, decoded as "⁇".
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable

import regex

SPACE = "\u2581"  # ▁
UNK = "<unk>"
UNK_SURFACE = "\u2047"  # ⁇, what SentencePiece prints for an unknown piece
UNK_PENALTY = 10.0  # <unk> scores this far below the least likely piece, as in SentencePiece
WORD_PATTERN = regex.compile(f"{SPACE}[^{SPACE}]*|[^{SPACE}]+")


def to_words(text: str) -> list[str]:
    """'Hello  world' -> ['▁Hello', '▁', '▁world']: spaces become ▁ and each word starts at one."""
    if not text:
        return []
    return WORD_PATTERN.findall(SPACE + text.replace(" ", SPACE))


def from_pieces(pieces: Iterable[str]) -> str:
    """The inverse of to_words: ▁ becomes a space and the leading one (added by to_words) goes."""
    return "".join(pieces).replace(SPACE, " ").removeprefix(" ")


def seed_pieces(word_counts: Counter[str], max_piece_len: int, seed_size: int) -> dict[str, float]:
    """Log-probabilities of every character plus the `seed_size` substrings with most count x length."""
    substring_counts: Counter[str] = Counter()
    for word, freq in word_counts.items():
        for start in range(len(word)):
            for end in range(start + 1, min(len(word), start + max_piece_len) + 1):
                substring_counts[word[start:end]] += freq
    chars = {piece: count for piece, count in substring_counts.items() if len(piece) == 1}
    longer = [(count * len(piece), piece) for piece, count in substring_counts.items() if len(piece) > 1]
    longer = [item for item in longer if substring_counts[item[1]] > 1]
    scores = dict(chars)
    for score, piece in sorted(longer, key=lambda item: (-item[0], item[1]))[:seed_size]:
        scores[piece] = score
    return normalise(scores)


def normalise(counts: dict[str, float]) -> dict[str, float]:
    """Log-probabilities proportional to the (positive) counts."""
    log_total = math.log(sum(counts.values()))
    return {piece: math.log(count) - log_total for piece, count in counts.items()}


def logsumexp(values: list[float]) -> float:
    """log(sum(exp(v))) without overflow; -inf for no values (a position no piece reaches)."""
    top = max(values, default=-math.inf)
    if top == -math.inf:
        return top
    return top + math.log(sum(math.exp(v - top) for v in values))


def lattice(word: str, logp: dict[str, float], max_piece_len: int) -> list[list[tuple[int, str]]]:
    """For each end position, the (start, piece) of every vocabulary piece that ends there."""
    ending_at: list[list[tuple[int, str]]] = [[] for _ in range(len(word) + 1)]
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - max_piece_len), end):
            piece = word[start:end]
            if piece in logp:
                ending_at[end].append((start, piece))
    return ending_at


def forward(ending_at: list[list[tuple[int, str]]], logp: dict[str, float]) -> list[float]:
    """alpha[j] = log of the summed probability of all segmentations of word[:j]."""
    alpha = [0.0] + [-math.inf] * (len(ending_at) - 1)
    for end in range(1, len(ending_at)):
        alpha[end] = logsumexp([alpha[start] + logp[piece] for start, piece in ending_at[end]])
    return alpha


def backward(ending_at: list[list[tuple[int, str]]], logp: dict[str, float]) -> list[float]:
    """beta[i] = log of the summed probability of all segmentations of word[i:]."""
    n = len(ending_at) - 1
    starting_at: list[list[tuple[int, str]]] = [[] for _ in range(n + 1)]
    for end, edges in enumerate(ending_at):
        for start, piece in edges:
            starting_at[start].append((end, piece))
    beta = [-math.inf] * n + [0.0]
    for start in range(n - 1, -1, -1):
        beta[start] = logsumexp([logp[piece] + beta[end] for end, piece in starting_at[start]])
    return beta


def expected_counts(word_counts: Counter[str], logp: dict[str, float], max_piece_len: int) -> Counter[str]:
    """E-step: how often each piece is used, averaged over all segmentations by their probability."""
    counts: Counter[str] = Counter()
    for word, freq in word_counts.items():
        ending_at = lattice(word, logp, max_piece_len)
        alpha, beta = forward(ending_at, logp), backward(ending_at, logp)
        log_z = alpha[-1]
        for end, edges in enumerate(ending_at):
            for start, piece in edges:
                counts[piece] += freq * math.exp(alpha[start] + logp[piece] + beta[end] - log_z)
    return counts


def em_step(word_counts: Counter[str], logp: dict[str, float], max_piece_len: int) -> dict[str, float]:
    """One EM iteration: p(piece) proportional to its expected count (kept tiny, not zero, if unused)."""
    counts = expected_counts(word_counts, logp, max_piece_len)
    return normalise({piece: max(counts[piece], 1e-12) for piece in logp})


def log_likelihood(word_counts: Counter[str], logp: dict[str, float], max_piece_len: int) -> float:
    """log P(corpus) = sum over words of freq x log (sum over segmentations of their probability)."""
    return sum(
        freq * forward(lattice(word, logp, max_piece_len), logp)[-1] for word, freq in word_counts.items()
    )


def viterbi(word: str, logp: dict[str, float], max_piece_len: int, unk_logp: float) -> list[str]:
    """The most likely segmentation; a character missing from `logp` may stand alone at `unk_logp`."""
    # BEGIN EXERCISE n2.3: Viterbi: best score of each prefix, then follow the back-pointers
    best = [0.0] + [-math.inf] * len(word)
    best_start = [0] * (len(word) + 1)
    for end in range(1, len(word) + 1):
        for start in range(max(0, end - max_piece_len), end):
            piece = word[start:end]
            score = logp.get(piece, unk_logp if end - start == 1 else None)
            if score is not None and best[start] + score > best[end]:
                best[end] = best[start] + score
                best_start[end] = start
    pieces = []
    end = len(word)
    while end > 0:
        pieces.append(word[best_start[end] : end])
        end = best_start[end]
    return pieces[::-1]
    # END EXERCISE


def removal_losses(
    word_counts: Counter[str], logp: dict[str, float], max_piece_len: int, keep: set[str]
) -> dict[str, float]:
    """SentencePiece's estimate of the log-likelihood lost by removing each piece not in `keep`.

    A removed piece's occurrences (in the Viterbi segmentations) would be spelled by its own best
    segmentation without it; the loss compares the piece's probability with that alternative's.
    """
    unk_logp = min(logp.values()) - UNK_PENALTY
    freq: Counter[str] = Counter()
    for word, count in word_counts.items():
        for piece in viterbi(word, logp, max_piece_len, unk_logp):
            freq[piece] += count
    total = sum(freq.values())
    losses = {}
    for piece, piece_logp in list(logp.items()):
        if piece in keep:
            continue
        f = freq[piece]
        if f == 0:
            losses[piece] = 0.0  # never on a best path: free to remove
            continue
        del logp[piece]  # segment the piece with the rest of the vocabulary, then put it back
        alternative = viterbi(piece, logp, max_piece_len, unk_logp)
        logp[piece] = piece_logp
        # Removing it moves its f occurrences onto the alternative's pieces and adds f x (len - 1) tokens.
        log_total_alt = math.log(total + f * (len(alternative) - 1))
        logprob_alt = sum(math.log(freq[alt] + f) - log_total_alt for alt in alternative)
        losses[piece] = f * (math.log(f) - math.log(total) - logprob_alt)
    return losses


def prune(
    word_counts: Counter[str], logp: dict[str, float], max_piece_len: int, keep: set[str], size: int
) -> dict[str, float]:
    """Keep the pieces in `keep` and the ones whose removal would cost most, `size` in all."""
    losses = removal_losses(word_counts, logp, max_piece_len, keep)
    by_loss = sorted(losses, key=lambda piece: (-losses[piece], piece))
    kept = set(keep) | set(by_loss[: max(0, size - len(keep))])
    return normalise({piece: math.exp(score) for piece, score in logp.items() if piece in kept})


class UnigramTokenizer:
    """Pieces with log-probabilities; id 0 is <unk>, then the pieces from most to least likely."""

    def __init__(self, logp: dict[str, float], max_piece_len: int = 16) -> None:
        self.logp = logp
        self.max_piece_len = max_piece_len
        self.pieces = [UNK] + sorted(logp, key=lambda piece: (-logp[piece], piece))
        self.piece_to_id = {piece: i for i, piece in enumerate(self.pieces)}
        self.unk_logp = min(logp.values()) - UNK_PENALTY
        self._cache: dict[str, list[int]] = {}

    @classmethod
    def train(
        cls,
        text: str,
        vocab_size: int,
        max_piece_len: int = 16,
        seed_size: int | None = None,
        shrink_factor: float = 0.75,
        em_iterations: int = 2,
    ) -> UnigramTokenizer:
        """EM, then prune to max(target, shrink_factor x size), until `vocab_size` pieces (with <unk>).

        Every character of the text is kept, so the vocabulary is larger when the text has more
        distinct characters than `vocab_size` - 1. `seed_size` defaults to 4 x `vocab_size`.
        """
        word_counts = Counter(to_words(text))
        chars = {char for word in word_counts for char in word}
        logp = seed_pieces(word_counts, max_piece_len, seed_size or 4 * vocab_size)
        target = max(vocab_size - 1, len(chars))  # - 1 for <unk>
        while True:
            for _ in range(em_iterations):
                logp = em_step(word_counts, logp, max_piece_len)
            if len(logp) <= target:
                return cls(logp, max_piece_len)
            size = max(target, int(len(logp) * shrink_factor))
            logp = prune(word_counts, logp, max_piece_len, chars, size)

    @property
    def vocab_size(self) -> int:
        return len(self.pieces)

    def tokenize(self, text: str) -> list[str]:
        return [self.pieces[i] for i in self.encode(text)]

    def encode(self, text: str) -> list[int]:
        """Viterbi segmentation of each word (cached); unknown characters become <unk> (id 0)."""
        ids = []
        for word in to_words(text):
            cached = self._cache.get(word)
            if cached is None:
                pieces = viterbi(word, self.logp, self.max_piece_len, self.unk_logp)
                cached = self._cache[word] = [self.piece_to_id.get(piece, 0) for piece in pieces]
            ids.extend(cached)
        return ids

    def decode(self, ids: Iterable[int]) -> str:
        return from_pieces(UNK_SURFACE if i == 0 else self.pieces[i] for i in ids)
