"""A linear-chain CRF and the BiLSTM-CRF tagger (Lample et al., 2016; Ma & Hovy, 2016) for n7.

The CRF scores a whole tag sequence y for a sentence x of length T:

    score(x, y) = start[y₁] + Σₜ emit[t, yₜ] + Σₜ trans[yₜ₋₁, yₜ] + end[y_T]

and normalises over every sequence: log p(y | x) = score(x, y) − log Z(x), log Z = logsumexp over all Kᵀ
paths. The forward algorithm computes log Z in O(T·K²) by summing over the previous tag one step at a
time; Viterbi finds the best path the same way with max in place of logsumexp, then backtracks. Both
run on a batch of sentences of different lengths, under a mask that is True on real tokens.

The BiLSTM-CRF gets its emissions from a bidirectional LSTM over word embeddings concatenated with
character features (a CNN over each word's characters, max-pooled: capitals, digits, suffixes), so it
sees how a word is written even when the word itself was never seen; `build_vocab` and `encode` turn
sentences into its word and character ids. Simplified: word embeddings are learned from scratch (no
GloVe), one LSTM layer.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlpractice.data.batching import pad_rows

PAD = 0  # padding id of words, characters and the word index used by the mask
UNK = 1  # id of unknown words and characters
MAX_WORD_CHARS = 20  # the characters of a word the character CNN reads


class CRF(nn.Module):
    def __init__(self, num_tags: int):
        super().__init__()
        self.transitions = nn.Parameter(torch.empty(num_tags, num_tags).uniform_(-0.1, 0.1))  # [from, to]
        self.start = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))
        self.end = nn.Parameter(torch.empty(num_tags).uniform_(-0.1, 0.1))

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """score(x, y) of the given tags (B, T) under emissions (B, T, K) and mask (B, T): (B,)."""
        lengths = mask.sum(1)
        emitted = emissions.gather(2, tags[:, :, None]).squeeze(2)  # (B, T)
        moved = self.transitions[tags[:, :-1], tags[:, 1:]]  # (B, T-1)
        last = tags.gather(1, (lengths - 1)[:, None]).squeeze(1)  # (B,)
        return (
            self.start[tags[:, 0]] + (emitted * mask).sum(1) + (moved * mask[:, 1:]).sum(1) + self.end[last]
        )

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """log Z(x) (B,) by the forward algorithm; emissions (B, T, K), mask (B, T), every row ≥ 1 token."""
        # BEGIN EXERCISE n7.1: the forward algorithm: alpha over tags, step by step, masked
        alpha = self.start + emissions[:, 0]  # (B, K): log-sum of all paths ending in each tag
        for t in range(1, emissions.size(1)):
            # (B, K_prev, 1) + (K_prev, K) + (B, 1, K): sum out the previous tag
            step = torch.logsumexp(alpha[:, :, None] + self.transitions + emissions[:, t, None, :], dim=1)
            alpha = torch.where(mask[:, t, None], step, alpha)  # padding leaves alpha as it was
        return torch.logsumexp(alpha + self.end, dim=1)
        # END EXERCISE

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean negative log-likelihood of the tags, −(score − log Z), over the batch."""
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).mean()

    @torch.no_grad()
    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> list[list[int]]:
        """The best tag path of each sentence (as long as the sentence): argmax_y score(x, y)."""
        # BEGIN EXERCISE n7.2: Viterbi: best score per tag, back-pointers, backtrack each sentence
        score = self.start + emissions[:, 0]  # (B, K): best path ending in each tag
        pointers = []  # (B, K) per step: the best previous tag of each tag
        for t in range(1, emissions.size(1)):
            best, previous = (score[:, :, None] + self.transitions + emissions[:, t, None, :]).max(dim=1)
            score = torch.where(mask[:, t, None], best, score)
            pointers.append(previous)
        score = score + self.end
        paths = []
        for b, length in enumerate(mask.sum(1).tolist()):
            tag = int(score[b].argmax())
            path = [tag]
            for previous in reversed(pointers[: length - 1]):
                tag = int(previous[b, tag])
                path.append(tag)
            paths.append(path[::-1])
        return paths
        # END EXERCISE


class BiLSTMCRF(nn.Module):
    """`emissions, loss = model(words, chars, tags)`: words (B, T), chars (B, T, C), tags (B, T), pad −100."""

    def __init__(
        self,
        n_words: int,
        n_chars: int,
        n_tags: int,
        word_dim: int = 100,
        char_dim: int = 25,
        char_filters: int = 50,
        hidden: int = 100,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.words = nn.Embedding(n_words, word_dim, padding_idx=PAD)
        self.chars = nn.Embedding(n_chars, char_dim, padding_idx=PAD)
        self.char_cnn = nn.Conv1d(char_dim, char_filters, kernel_size=3, padding=1)
        self.lstm = nn.LSTM(word_dim + char_filters, hidden, batch_first=True, bidirectional=True)
        self.drop = nn.Dropout(dropout)
        self.emit = nn.Linear(2 * hidden, n_tags)
        self.crf = CRF(n_tags)

    def char_features(self, chars: torch.Tensor) -> torch.Tensor:
        """(B, T, C) character ids (any integer type) -> (B, T, F): convolve each word's characters, max."""
        B, T, C = chars.shape
        x = self.chars(chars.reshape(B * T, C).long()).transpose(1, 2)  # (B·T, E, C)
        h = torch.relu(self.char_cnn(x))  # (B·T, F, C), ≥ 0, so masking with 0 keeps the max
        h = h.masked_fill(chars.reshape(B * T, 1, C) == PAD, 0.0)
        return h.max(dim=2).values.view(B, T, -1)

    def emissions(self, words: torch.Tensor, chars: torch.Tensor) -> torch.Tensor:
        """Per-token tag scores (B, T, K) from the BiLSTM over [word embedding ⊕ character features]."""
        lengths = (words != PAD).sum(1)
        x = self.drop(torch.cat([self.words(words), self.char_features(chars)], dim=-1))  # (B, T, D)
        packed = pack_padded_sequence(x, lengths.cpu(), batch_first=True, enforce_sorted=False)
        h, _ = pad_packed_sequence(self.lstm(packed)[0], batch_first=True, total_length=words.size(1))
        return self.emit(self.drop(h))  # (B, T, K)

    def forward(self, words: torch.Tensor, chars: torch.Tensor, tags: torch.Tensor | None = None):
        emissions = self.emissions(words, chars)
        loss = None
        if tags is not None:
            loss = self.crf.nll(emissions, tags.clamp(min=0), words != PAD)  # −100 padding -> any tag, masked
        return emissions, loss

    @torch.no_grad()
    def decode(self, words: torch.Tensor, chars: torch.Tensor) -> list[list[int]]:
        return self.crf.viterbi(self.emissions(words, chars), words != PAD)


# ---- the tagger's inputs: words and characters as ids --------------------------------------------------


def normalise(word: str) -> str:
    return re.sub(r"\d", "0", word.lower())  # case lives in the characters; digits are all alike


def build_vocab(sentences: Sequence[Sequence[str]], min_count: int) -> tuple[dict[str, int], dict[str, int]]:
    """Word ids (normalised words seen min_count times) and character ids (at most 255, stored as uint8)."""
    counts = Counter(normalise(t) for s in sentences for t in s)
    words = sorted(w for w, n in counts.items() if n >= min_count)
    chars = [c for c, _ in Counter(c for s in sentences for t in s for c in t).most_common(253)]
    return {w: i + 2 for i, w in enumerate(words)}, {c: i + 2 for i, c in enumerate(chars)}


def encode(
    sentences: Sequence[Sequence[str]], words: dict[str, int], chars: dict[str, int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Word ids (N, T) and character ids (N, T, MAX_WORD_CHARS) as uint8, both padded with PAD."""
    word_ids = pad_rows([[words.get(normalise(t), UNK) for t in s] for s in sentences], PAD)
    char_ids = torch.zeros(*word_ids.shape, MAX_WORD_CHARS, dtype=torch.uint8)
    for i, s in enumerate(sentences):
        for j, token in enumerate(s):
            ids = [chars.get(c, UNK) for c in token[:MAX_WORD_CHARS]]
            char_ids[i, j, : len(ids)] = torch.tensor(ids, dtype=torch.uint8)
    return word_ids, char_ids
