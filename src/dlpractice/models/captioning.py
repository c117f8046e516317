"""Image captioning models for lab v11: a small CNN gives a grid of features; a decoder writes the caption.

Two decoders read the same kind of grid (B, G, D), one feature vector per cell:
- "gru": Show, Attend and Tell (Xu et al., 2015): at every word a GRU cell attends over the grid with
  additive (Bahdanau) attention scored by its previous state, and reads the word and the context vector.
  Simplified: no gating scalar on the context and no doubly stochastic attention penalty.
- "transformer": a pre-norm transformer decoder (torch.nn layers) whose self-attention is causal and skips
  padding, and whose cross-attention reads the grid.
Both follow `logits, loss = model(images, tokens_in, targets)`: teacher forcing (the true previous word
goes in) with the loss over real words only (targets padded with IGNORE). Decoding is beam search with
length normalisation (greedy is beam 1); each step reruns the decoder over the prefix (simple, quadratic
in length: captions are short). The encoder is models/attribution.py's SmallCNN with a third pooling and
a learned embedding of each grid cell, so that the decoders know where a feature is.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.data.captions import BOS, EOS, IGNORE, PAD, UNK
from dlpractice.models.attribution import SmallCNN

Decoder = Literal["gru", "transformer"]


class GridEncoder(nn.Module):
    """Images (B, 3, S, S) -> features (B, G, D) on a (S/8) x (S/8) grid, with each cell's position added."""

    def __init__(self, side: int, widths: tuple[int, int, int], d_model: int):
        super().__init__()
        self.cnn = nn.Sequential(SmallCNN(in_channels=3, widths=widths).features, nn.MaxPool2d(2))
        self.grid = side // 8
        self.proj = nn.Linear(widths[-1], d_model)
        self.cells = nn.Parameter(torch.randn(self.grid * self.grid, d_model) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        maps = self.cnn(images)  # (B, C, S/8, S/8)
        return self.proj(maps.flatten(2).transpose(1, 2)) + self.cells  # (B, G, D)


def soft_attention(
    query: torch.Tensor, keys: torch.Tensor, values: torch.Tensor, score: nn.Linear
) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive attention over the grid: the context (B, C) and the weights (B, G).

    query (B, A) is the projected decoder state, keys (B, G, A) the projected grid, values (B, G, C) the
    grid itself; `score` maps each cell's tanh(key + query) (A,) to one number.
    """
    # BEGIN EXERCISE v11.3: score every cell, softmax over the grid, the weighted sum of the values
    scores = score(torch.tanh(keys + query[:, None, :])).squeeze(-1)  # (B, G)
    weights = scores.softmax(dim=-1)  # (B, G): each row sums to 1 over the cells
    context = (weights[..., None] * values).sum(dim=1)  # (B, C)
    # END EXERCISE
    return context, weights


class AttentionGRU(nn.Module):
    """Show, Attend and Tell's decoder with a GRU cell: attend (previous state), then step the cell."""

    def __init__(self, vocab: int, d_model: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.init_state = nn.Linear(d_model, d_model)
        self.query, self.key, self.score = (
            nn.Linear(d_model, d_model),
            nn.Linear(d_model, d_model),
            nn.Linear(d_model, 1),
        )
        self.cell = nn.GRUCell(2 * d_model, d_model)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(2 * d_model, vocab)

    def forward(self, grid: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits (B, T, V) of each next word and the attention weights (B, T, G) used to predict it."""
        keys = self.key(grid)  # (B, G, D): projected once for every step
        h = torch.tanh(self.init_state(grid.mean(1)))  # (B, D): the state starts from the whole picture
        words = self.embed(tokens)  # (B, T, D)
        logits, weights = [], []
        for t in range(tokens.size(1)):
            context, w = soft_attention(self.query(h), keys, grid, self.score)  # (B, D), (B, G)
            h = self.cell(torch.cat([words[:, t], context], -1), h)
            logits.append(self.head(self.drop(torch.cat([h, context], -1))))
            weights.append(w)
        return torch.stack(logits, 1), torch.stack(weights, 1)


class TransformerCaptioner(nn.Module):
    """Word and position embeddings, then pre-norm decoder layers: causal self-attention, cross-attention
    to the grid, feed-forward."""

    def __init__(self, vocab: int, d_model: int, n_heads: int, n_layers: int, max_len: int, dropout: float):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model, padding_idx=PAD)
        self.positions = nn.Embedding(max_len + 2, d_model)  # <s>, the words, </s>
        layer = nn.TransformerDecoderLayer(
            d_model, n_heads, 4 * d_model, dropout, batch_first=True, norm_first=True
        )
        self.layers = nn.TransformerDecoder(layer, n_layers, norm=nn.LayerNorm(d_model))
        self.head = nn.Linear(d_model, vocab)

    def forward(self, grid: torch.Tensor, tokens: torch.Tensor) -> tuple[torch.Tensor, None]:
        t = tokens.size(1)
        x = self.embed(tokens) + self.positions(torch.arange(t, device=tokens.device))  # (B, T, D)
        causal = torch.ones(t, t, dtype=torch.bool, device=tokens.device).triu(1)  # True = may not attend
        y = self.layers(x, grid, tgt_mask=causal, tgt_key_padding_mask=tokens == PAD)
        return self.head(y), None  # (B, T, V)


class Captioner(nn.Module):
    """The encoder and one decoder: `logits, loss = model(images, tokens_in, targets)`."""

    def __init__(
        self,
        decoder: Decoder,
        vocab: int,
        side: int = 64,
        widths: tuple[int, int, int] = (16, 32, 64),
        d_model: int = 128,
        n_heads: int = 4,
        n_layers: int = 2,
        max_len: int = 20,
        dropout: float = 0.1,
    ):
        super().__init__()
        self.encoder = GridEncoder(side, widths, d_model)
        if decoder == "gru":
            self.decoder = AttentionGRU(vocab, d_model, dropout)
        else:
            self.decoder = TransformerCaptioner(vocab, d_model, n_heads, n_layers, max_len, dropout)

    def forward(
        self, images: torch.Tensor, tokens: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits, _ = self.decoder(self.encoder(images), tokens)  # (B, T, V)
        loss = None
        if targets is not None:  # padding (IGNORE) adds nothing and is not counted in the mean
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)
        return logits, loss

    def next_logits(self, grid: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the word after `prefix` (B, t), given the encoded grid (B, G, D)."""
        return self.decoder(grid, prefix)[0][:, -1]


def beam_step(
    scores: torch.Tensor, logp: torch.Tensor, finished: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step of beam search for B images with k beams each.

    scores (B, k): each beam's summed log-probability so far; logp (B, k, V): log-probabilities of its next
    word; finished (B, k): beams that have written </s>, which only grow by <pad> at no cost. Returns the k
    best extensions of each image among all k·V: their scores, which beam each extends, and the word added
    (each (B, k)).
    """
    # BEGIN EXERCISE v11.2: finished beams extend by <pad> for free; best k of all k·V extensions per image
    b, k, v = logp.shape
    pad_only = torch.full_like(logp, float("-inf"))
    pad_only[..., PAD] = 0.0
    logp = torch.where(finished[..., None], pad_only, logp)
    total = (scores[..., None] + logp).view(b, k * v)  # (B, k·V)
    new_scores, index = total.topk(k, dim=-1)  # (B, k)
    parent, token = index // v, index % v
    # END EXERCISE
    return new_scores, parent, token


@torch.no_grad()
def beam_search(
    model: Captioner, images: torch.Tensor, beam: int, max_len: int, alpha: float = 0.7
) -> list[list[int]]:
    """Each image's best caption (word ids, without <s> and </s>) among `beam` hypotheses, ranked at the
    end by log-probability / length**alpha (alpha 0: no length normalisation); beam 1 is greedy."""
    b, k = len(images), beam
    grid = model.encoder(images).repeat_interleave(k, 0)  # (B·k, G, D)
    seqs = torch.full((b * k, 1), BOS, dtype=torch.long)
    scores = torch.full((b, k), float("-inf"))
    scores[:, 0] = 0.0  # all beams start the same: keep one of them alive
    finished = torch.zeros(b, k, dtype=torch.bool)
    for _ in range(max_len + 1):
        logits = model.next_logits(grid, seqs)  # (B·k, V)
        logits[:, [PAD, BOS, UNK]] = float("-inf")  # never written inside a caption
        scores, parent, token = beam_step(scores, logits.log_softmax(-1).view(b, k, -1), finished)
        rows = (torch.arange(b)[:, None] * k + parent).flatten()  # (B·k,) the beams extended
        seqs = torch.cat([seqs[rows], token.reshape(-1, 1)], 1)
        finished = finished.gather(1, parent) | (token == EOS)
        if finished.all():
            break
    lengths = (seqs[:, 1:] != PAD).sum(1).view(b, k).clamp(min=1)  # words and </s>
    best = (scores / lengths**alpha).argmax(-1)  # (B,)
    chosen = seqs.view(b, k, -1)[torch.arange(b), best, 1:]  # (B, L)
    return [[i for i in row.tolist() if i not in (PAD, EOS)] for row in chosen]


@torch.no_grad()
def caption_images(
    model: Captioner, images: torch.Tensor, beam: int, max_len: int, alpha: float = 0.7, batch: int = 50
) -> list[list[int]]:
    """beam_search over images (N, 3, S, S) in batches, in eval mode."""
    model.eval()
    out: list[list[int]] = []
    for start in range(0, len(images), batch):
        out += beam_search(model, images[start : start + batch], beam, max_len, alpha)
    return out
