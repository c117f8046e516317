"""word2vec: skip-gram with negative sampling (Mikolov et al., 2013), and the queries asked of any word
vectors (nearest neighbours by cosine, analogies by 3CosAdd).

Each word has two vectors: v (as a centre word, the embedding kept at the end) and u (as a context
word). For an observed pair (c, o) and K noise words k drawn from the unigram distribution raised to
0.75, the loss is

    -log σ(u_o · v_c) - Σ_k log σ(-u_k · v_c)

averaged over the batch: the observed pair is pushed to score high, the noise pairs low. Trained with
fit() on minibatches of pairs (lab l9 uses plain SGD with a linearly decaying rate, as the C code does,
which takes one pair at a time); like the C code, v starts small and random and u at zero. Simplified: a noise
word that happens to equal the context word is kept (the C code skips it).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SkipGramNS(nn.Module):
    def __init__(self, vocab_size: int, dim: int):
        super().__init__()
        self.centre = nn.Embedding(vocab_size, dim)  # v
        self.context = nn.Embedding(vocab_size, dim)  # u
        nn.init.uniform_(self.centre.weight, -0.5 / dim, 0.5 / dim)
        nn.init.zeros_(self.context.weight)

    def forward(
        self, centre: torch.Tensor, noise: torch.Tensor, context: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """centre (B,), noise (B, K), context (B,) -> scores (B, 1 + K), the observed pair first; loss."""
        # BEGIN EXERCISE l9.1: score the observed pair and the noise pairs; the negative-sampling loss
        v = self.centre(centre)  # (B, D)
        u = self.context(torch.cat([context[:, None], noise], dim=1))  # (B, 1 + K, D)
        scores = (u @ v[:, :, None]).squeeze(-1)  # (B, 1 + K)
        loss = -(F.logsigmoid(scores[:, 0]) + F.logsigmoid(-scores[:, 1:]).sum(dim=1)).mean()
        # END EXERCISE
        return scores, loss

    def vectors(self) -> torch.Tensor:
        """(V, D) the centre vectors, the word2vec convention (gensim's `wv`)."""
        return self.centre.weight.detach().clone()


def unit_rows(vectors: torch.Tensor) -> torch.Tensor:
    """Each row scaled to length 1 (an all-zero row stays zero), so dot products are cosines."""
    return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)


def nearest(vectors: torch.Tensor, words: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k words most cosine-similar to each of `words` (N,), the word itself left out: ids, cosines."""
    unit = unit_rows(vectors)  # (V, D)
    similarity = unit[words] @ unit.T  # (N, V)
    similarity[torch.arange(len(words)), words] = -torch.inf
    top = similarity.topk(k, dim=1)
    return top.indices, top.values


def analogy(
    vectors: torch.Tensor, a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, k: int = 1
) -> torch.Tensor:
    """a : b :: c : ?  by 3CosAdd: the k words d maximising cos(d, b) - cos(d, a) + cos(d, c).

    a, b, c (N,) ids -> (N, k) ids, best first. The three question words are never answers (as in
    Mikolov et al. and gensim's most_similar); the vectors are normalised first, so every word counts
    by its direction only.
    """
    # BEGIN EXERCISE l9.3: answer analogies by 3CosAdd on unit vectors, leaving out the question words
    unit = unit_rows(vectors)  # (V, D)
    target = unit[b] - unit[a] + unit[c]  # (N, D)
    scores = target @ unit.T  # (N, V): the sum of the three cosines, up to target's length
    rows = torch.arange(len(a))
    for words in (a, b, c):
        scores[rows, words] = -torch.inf
    return scores.topk(k, dim=1).indices
    # END EXERCISE
