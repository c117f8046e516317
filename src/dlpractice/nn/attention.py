"""Attention building blocks (labs n3, n4, l7, l8): scaled dot-product attention, masks, multi-head
attention, and sinusoidal, learned and rotary position encodings.

Conventions: tensors are batch-first; a mask is boolean and True where a query MAY attend to a key
(the convention of `torch.nn.functional.scaled_dot_product_attention`; `nn.MultiheadAttention` uses
the opposite, True = blocked). Every function returns the attention weights too, so labs can draw them.
Simplified: no KV cache, no fused kernels, no grouped-query heads; dropout only on the weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    dropout_p: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(q kᵀ / √d) v, and the weights.

    q (..., Tq, D), k (..., Tk, D), v (..., Tk, Dv); mask (True = may attend) broadcasts to (..., Tq, Tk).
    """
    # BEGIN EXERCISE n3.1: scores, mask (-inf where blocked), softmax over keys, weighted sum of values
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))  # (..., Tq, Tk)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    weights = scores.softmax(dim=-1)  # (..., Tq, Tk), each row sums to 1
    if dropout_p > 0:
        weights = F.dropout(weights, dropout_p)
    out = weights @ v  # (..., Tq, Dv)
    # END EXERCISE
    return out, weights


def causal_mask(t_q: int, t_k: int | None = None, device: torch.device | str | None = None) -> torch.Tensor:
    """(Tq, Tk) bool: query i may see keys 0..i (aligned at the end when Tk > Tq, as with a cache)."""
    t_k = t_q if t_k is None else t_k
    # BEGIN EXERCISE n3.2: lower-triangular boolean mask (True = may attend)
    mask = torch.ones(t_q, t_k, dtype=torch.bool, device=device).tril(diagonal=t_k - t_q)
    # END EXERCISE
    return mask


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """(B, 1, 1, Tk) bool from the true lengths (B,): True on real keys, False on padding."""
    max_len = int(lengths.max()) if max_len is None else max_len
    # BEGIN EXERCISE n3.3: positions 0..Tk-1 below each length, shaped to broadcast over heads, queries
    real = torch.arange(max_len, device=lengths.device)[None, :] < lengths[:, None]  # (B, Tk)
    mask = real[:, None, None, :]
    # END EXERCISE
    return mask


class MultiHeadAttention(nn.Module):
    """Project to H heads of size C/H, attend in each head, concatenate, project back.

    Self-attention: `mha(x)`; cross-attention: `mha(x, memory)`. With `keep_weights` set, the last
    call's weights (B, H, Tq, Tk) are kept in `self.weights` for figures.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model {d_model} is not divisible by n_heads {n_heads}")
        self.n_heads, self.dropout = n_heads, dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)
        self.keep_weights = False
        self.weights: torch.Tensor | None = None

    def split_heads(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        return x.view(b, t, self.n_heads, c // self.n_heads).transpose(1, 2)  # (B, H, T, C/H)

    def forward(
        self,
        x: torch.Tensor,
        memory: torch.Tensor | None = None,
        mask: torch.Tensor | None = None,
        rope: RotaryEmbedding | None = None,
    ) -> torch.Tensor:
        """x (B, Tq, C), memory (B, Tk, C) or None for self-attention; mask broadcasts to (B, H, Tq, Tk)."""
        memory = x if memory is None else memory
        q = self.split_heads(self.q_proj(x))  # (B, H, Tq, D)
        k = self.split_heads(self.k_proj(memory))  # (B, H, Tk, D)
        v = self.split_heads(self.v_proj(memory))  # (B, H, Tk, D)
        if rope is not None:
            q, k = rope(q), rope(k)
        out, weights = scaled_dot_product_attention(q, k, v, mask, self.dropout if self.training else 0.0)
        if self.keep_weights:
            self.weights = weights.detach()
        b, h, t, d = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(b, t, h * d))  # (B, Tq, C)

    @torch.no_grad()
    def copy_from_torch(self, mha: nn.MultiheadAttention) -> MultiHeadAttention:
        """Take the weights of a batch-first `nn.MultiheadAttention` (its in_proj stacks q, k, v)."""
        for proj, w in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_weight.chunk(3)):
            proj.weight.copy_(w)
        if mha.in_proj_bias is not None:
            for proj, b in zip((self.q_proj, self.k_proj, self.v_proj), mha.in_proj_bias.chunk(3)):
                proj.bias.copy_(b)
        self.out_proj.load_state_dict(mha.out_proj.state_dict())
        return self


def sinusoidal_table(max_len: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """(max_len, C): PE[p, 2i] = sin(p / base^(2i/C)), PE[p, 2i+1] = cos(...) (Vaswani et al., 2017)."""
    position = torch.arange(max_len, dtype=torch.float32)[:, None]  # (T, 1)
    inv_freq = base ** (-torch.arange(0, d_model, 2, dtype=torch.float32) / d_model)  # (C/2,)
    table = torch.zeros(max_len, d_model)
    table[:, 0::2] = torch.sin(position * inv_freq)
    table[:, 1::2] = torch.cos(position * inv_freq[: d_model // 2])
    return table


class SinusoidalPositions(nn.Module):
    """Fixed sinusoidal encodings, looked up by position: (B, T) positions -> (B, T, C)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.register_buffer("table", sinusoidal_table(max_len, d_model), persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table[positions]


class LearnedPositions(nn.Module):
    """A trained embedding per position (GPT-2): (B, T) positions -> (B, T, C)."""

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.table(positions)


class RotaryEmbedding(nn.Module):
    """Rotary positions (Su et al., 2021): rotate each pair of channels (2i, 2i+1) of q and k by p·θᵢ.

    Then q_m · k_n depends on m - n only. Applied to (B, H, T, D) tensors inside attention.
    """

    def __init__(self, head_dim: int, max_len: int = 4096, base: float = 10000.0):
        super().__init__()
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim)  # (D/2,)
        angles = torch.arange(max_len, dtype=torch.float32)[:, None] * inv_freq  # (T, D/2)
        self.register_buffer("cos", angles.cos(), persistent=False)
        self.register_buffer("sin", angles.sin(), persistent=False)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        t = x.size(-2)
        cos, sin = self.cos[offset : offset + t], self.sin[offset : offset + t]  # (T, D/2)
        even, odd = x[..., 0::2], x[..., 1::2]  # (..., T, D/2)
        rotated = torch.stack((even * cos - odd * sin, even * sin + odd * cos), dim=-1)  # (..., T, D/2, 2)
        return rotated.flatten(-2).type_as(x)
