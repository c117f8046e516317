"""GPT after nanoGPT (Karpathy), plus a bigram and a GRU baseline behind the same interface (lab l8).

Every model maps ids (B, T) to next-token logits at every position (B, T, V) and follows the contract
`logits, loss = model(idx, targets)` with targets (B, T); `generate()` samples from any of them. The GPT
is GPT-2's layout: token + learned position embeddings, pre-LN blocks of causal self-attention (PyTorch's
fused `scaled_dot_product_attention`; l7 writes the same attention out by hand) and a GELU MLP, a final
LayerNorm and a head tied to the token embedding. No biases, as in nanoGPT's shakespeare_char recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


def lm_loss(logits: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor | None:
    """Mean cross-entropy over every position: logits (B, T, V), targets (B, T)."""
    if targets is None:
        return None
    return F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


class CausalSelfAttention(nn.Module):
    """Multi-head attention where position t sees positions <= t; one fused kernel does the maths."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        assert n_embd % n_head == 0, "n_embd must be divisible by n_head"
        self.n_head, self.dropout = n_head, dropout
        self.c_attn = nn.Linear(n_embd, 3 * n_embd, bias=False)
        self.c_proj = nn.Linear(n_embd, n_embd, bias=False)
        self.resid_drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)  # (B, T, C) each
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # heads side by side again
        return self.resid_drop(self.c_proj(y))


class Block(nn.Module):
    """Pre-LN: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, n_embd: int, n_head: int, dropout: float = 0.0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(n_embd, bias=False)
        self.attn = CausalSelfAttention(n_embd, n_head, dropout)
        self.ln_2 = nn.LayerNorm(n_embd, bias=False)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd, bias=False),
            nn.GELU(),
            nn.Linear(4 * n_embd, n_embd, bias=False),
            nn.Dropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


@dataclass(frozen=True, kw_only=True)
class GPTConfig:
    """The size of a language model, by keyword; the defaults are nanoGPT's CPU recipe (shakespeare_char)."""

    vocab_size: int
    block_size: int = 64  # tokens of context
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128  # channels; a multiple of n_head
    dropout: float = 0.0


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        c = config
        self.config, self.block_size = config, c.block_size
        self.wte = nn.Embedding(c.vocab_size, c.n_embd)
        self.wpe = nn.Embedding(c.block_size, c.n_embd)
        self.drop = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(Block(c.n_embd, c.n_head, c.dropout) for _ in range(c.n_layer))
        self.ln_f = nn.LayerNorm(c.n_embd, bias=False)
        self.lm_head = nn.Linear(c.n_embd, c.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying (Press & Wolf, 2017): (V, C) read and written
        residual_std = 0.02 / math.sqrt(2 * c.n_layer)
        for name, p in self.named_parameters():  # GPT-2 init; residual projections scaled by depth
            std = residual_std if name.endswith(("c_proj.weight", "mlp.2.weight")) else 0.02
            if p.dim() >= 2:
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        B, T = idx.shape
        assert self.block_size >= T, f"sequence of {T} tokens, block_size is {self.block_size}"
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        return logits, lm_loss(logits, targets)

    def generate(
        self, idx, max_new_tokens: int, temperature: float = 1.0, top_k: int | None = None, generator=None
    ):
        return generate(self, idx, max_new_tokens, temperature, top_k, generator)


class BigramLM(nn.Module):
    """The next character from the current one only: a (V, V) table of logits (the baseline to beat)."""

    def __init__(self, vocab_size: int, block_size: int):
        super().__init__()
        self.block_size = block_size
        self.table = nn.Embedding(vocab_size, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.table(idx)  # (B, T, V)
        return logits, lm_loss(logits, targets)


class GRULM(nn.Module):
    """Embedding, a stacked nn.GRU read left to right, a linear head: causal by construction."""

    def __init__(self, vocab_size: int, block_size: int, n_layer: int, n_embd: int, dropout: float = 0.0):
        super().__init__()
        self.block_size = block_size
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.rnn = nn.GRU(
            n_embd, n_embd, num_layers=n_layer, batch_first=True, dropout=dropout if n_layer > 1 else 0.0
        )
        self.lm_head = nn.Linear(n_embd, vocab_size)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        h, _ = self.rnn(self.wte(idx))  # (B, T, C)
        logits = self.lm_head(h)  # (B, T, V)
        return logits, lm_loss(logits, targets)


def build_model(model_type: str, config: GPTConfig) -> nn.Module:
    """One of the three language models, by name, of the size `config` gives (the bigram ignores the size)."""
    c = config
    if model_type == "gpt":
        return GPT(c)
    if model_type == "gru":
        return GRULM(c.vocab_size, c.block_size, n_layer=c.n_layer, n_embd=c.n_embd, dropout=c.dropout)
    if model_type == "bigram":
        return BigramLM(c.vocab_size, c.block_size)
    raise ValueError(f"unknown model_type {model_type!r}; use gpt, gru or bigram")


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token per row (B, 1) from last-position logits (B, V): temperature, then top-k, then sample."""
    # BEGIN EXERCISE l8.1: scale by the temperature, keep the top_k largest logits, sample from the softmax
    logits = logits.float() / temperature
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, [-1]]  # (B, 1): k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs.cpu(), 1, generator=generator).to(logits.device)
    # END EXERCISE


@torch.no_grad()
def generate(
    model: nn.Module,
    idx: torch.Tensor,
    max_new_tokens: int,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Extend idx (B, T) by max_new_tokens, feeding back at most the last block_size tokens (no KV cache)."""
    was_training = model.training
    model.eval()
    for _ in range(max_new_tokens):
        logits, _ = model(idx[:, -model.block_size :])  # (B, T, V)
        idx = torch.cat([idx, sample_next(logits[:, -1, :], temperature, top_k, generator)], dim=1)
    model.train(was_training)
    return idx
