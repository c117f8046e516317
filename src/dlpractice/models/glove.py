"""GloVe (Pennington, Socher & Manning, 2014): word vectors fitted to the log co-occurrence counts.

With X[i, j] the (distance-weighted) count of word j near word i, GloVe asks the dot product of a word
vector w_i and a context vector w~_j, plus a bias for each, to equal log X[i, j]:

    J = Σ over X[i, j] > 0 of  f(X[i, j]) · (w_i · w~_j + b_i + b~_j - log X[i, j])²
    f(x) = min(1, (x / x_max) ** α)

f gives rare pairs (noisy counts) little weight and caps frequent ones, so "the, of" does not dominate.
Pairs never seen together (X = 0) are not in the sum. Here J is the mean over a minibatch of non-zero
entries, trained with fit() and Adam (the paper: the sum, AdaGrad, one entry at a time); the word's
vector at the end is w + w~, the paper's choice.
"""

from __future__ import annotations

import torch
from torch import nn


class GloVe(nn.Module):
    def __init__(self, vocab_size: int, dim: int, x_max: float = 100.0, alpha: float = 0.75):
        super().__init__()
        self.x_max, self.alpha = x_max, alpha
        self.word = nn.Embedding(vocab_size, dim)  # w
        self.context = nn.Embedding(vocab_size, dim)  # w~
        self.word_bias = nn.Embedding(vocab_size, 1)  # b
        self.context_bias = nn.Embedding(vocab_size, 1)  # b~
        for table in (self.word, self.context):  # the reference code's uniform(-0.5, 0.5) / dim
            nn.init.uniform_(table.weight, -0.5 / dim, 0.5 / dim)
        for bias in (self.word_bias, self.context_bias):
            nn.init.zeros_(bias.weight)

    def forward(
        self, rows: torch.Tensor, cols: torch.Tensor, counts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """rows, cols (B,) word ids, counts (B,) X[row, col] > 0 -> predicted log counts (B,); loss."""
        predicted = (
            (self.word(rows) * self.context(cols)).sum(dim=1)
            + self.word_bias(rows).squeeze(1)
            + self.context_bias(cols).squeeze(1)
        )  # (B,)
        # BEGIN EXERCISE l9.2: GloVe's loss: squared error against log X, weighted by min(1, (X/x_max)^α)
        weight = (counts / self.x_max).pow(self.alpha).clamp(max=1.0)  # (B,)
        loss = (weight * (predicted - counts.log()) ** 2).mean()
        # END EXERCISE
        return predicted, loss

    def vectors(self) -> torch.Tensor:
        """(V, D) w + w~, the paper's word vectors."""
        return (self.word.weight + self.context.weight).detach().clone()
