"""Encoder-decoder models for the generated seq2seq tasks (labs n4, n5): n4's transformer, and the greedy
and beam decoders and exact-match score every such model shares.

A model here follows `logits, loss = model(src, src_len, tgt_in, targets)` and, for decoding,
`state = model.encode(src, src_len)` then `model.next_logits(state, prefix)`: logits (B, V) of the token
after the prefix. The transformer is pre-norm ("Attention Is All You Need" put LayerNorm after each
residual addition), built from n3's pieces (`dlpractice.nn.attention`), with no label smoothing, no
weight tying and no KV cache: each decoding step reruns the decoder on the whole prefix. Beam search has
no length penalty. `use_torch=True` puts `nn.Transformer` of the same size between the same embeddings
and head, the comparison n4 draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.data.seq2seq import BOS, EOS, PAD, VOCAB, Seq2SeqTasks, collate, decode
from dlpractice.nn.attention import MultiHeadAttention, SinusoidalPositions, causal_mask, padding_mask


@dataclass(frozen=True)
class TransformerConfig:
    """The encoder-decoder's sizes (n4's Config declares the same fields with the same defaults)."""

    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2  # in the encoder and in the decoder
    d_ff: int = 256
    dropout: float = 0.0
    max_positions: int = 48
    pos_offset: bool = True  # random position offsets in training


def source_positions(src_len: torch.Tensor, s: int) -> torch.Tensor:
    """(B, S) positions counted back from each source's </s> (0); padding, masked anyway, gets 0."""
    return (src_len[:, None] - 1 - torch.arange(s, device=src_len.device)).clamp(min=0)


class FeedForward(nn.Sequential):
    def __init__(self, d_model: int, d_ff: int, dropout: float):
        super().__init__(nn.Linear(d_model, d_ff), nn.ReLU(), nn.Linear(d_ff, d_model), nn.Dropout(dropout))


class EncoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff, self.drop = FeedForward(d_model, d_ff, dropout), nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), mask=mask))  # (B, S, C)
        return x + self.ff(self.ln2(x))


class DecoderBlock(nn.Module):
    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float):
        super().__init__()
        self.ln1, self.ln2, self.ln3 = (nn.LayerNorm(d_model) for _ in range(3))
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.ff, self.drop = FeedForward(d_model, d_ff, dropout), nn.Dropout(dropout)

    def forward(
        self, y: torch.Tensor, memory: torch.Tensor, self_mask: torch.Tensor, memory_mask: torch.Tensor
    ) -> torch.Tensor:
        y = y + self.drop(self.self_attn(self.ln1(y), mask=self_mask))  # (B, T, C): sees earlier outputs
        y = y + self.drop(self.cross_attn(self.ln2(y), memory, memory_mask))  # reads the source
        return y + self.ff(self.ln3(y))


class Seq2SeqTransformer(nn.Module):
    """Our encoder-decoder, or (`use_torch`) the same embeddings and head around `nn.Transformer`."""

    def __init__(self, cfg: TransformerConfig, vocab: int = len(VOCAB), use_torch: bool = False):
        super().__init__()
        self.d_model, self.max_positions, self.pos_offset = cfg.d_model, cfg.max_positions, cfg.pos_offset
        self.embed = nn.Embedding(vocab, cfg.d_model, padding_idx=PAD)
        with torch.no_grad():  # std 1/√C: times √C, tokens have the unit scale of the sinusoids
            self.embed.weight.normal_(0.0, cfg.d_model**-0.5)[PAD] = 0.0
        self.positions = SinusoidalPositions(cfg.max_positions, cfg.d_model)
        self.use_torch = use_torch
        if use_torch:
            sizes = (cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.n_layers, cfg.d_ff, cfg.dropout)
            self.core = nn.Transformer(*sizes, batch_first=True, norm_first=True)
        else:
            args = (cfg.d_model, cfg.n_heads, cfg.d_ff, cfg.dropout)
            self.encoder = nn.ModuleList(EncoderBlock(*args) for _ in range(cfg.n_layers))
            self.decoder = nn.ModuleList(DecoderBlock(*args) for _ in range(cfg.n_layers))
            self.enc_ln, self.dec_ln = nn.LayerNorm(cfg.d_model), nn.LayerNorm(cfg.d_model)
        self.head = nn.Linear(cfg.d_model, vocab)

    def embed_at(self, ids: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Token embeddings × √C plus the sinusoids of `positions` (B, T): (B, T, C)."""
        return self.embed(ids) * self.d_model**0.5 + self.positions(positions)

    def random_offset(self, batch: int, longest: int, device: torch.device) -> torch.Tensor:
        """(B, 1) offsets for source and target: 0 when evaluating and for half the training examples
        (the positions evaluation uses), random for the others (positions only longer inputs reach)."""
        if not (self.training and self.pos_offset):
            return torch.zeros(batch, 1, dtype=torch.long, device=device)
        offset = torch.randint(0, self.max_positions - longest + 1, (batch, 1), device=device)
        return offset * (torch.rand(batch, 1, device=device) < 0.5)

    def encode(
        self, src: torch.Tensor, src_len: torch.Tensor, offset: torch.Tensor | int = 0
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(memory (B, S, C), key mask (B, 1, 1, S)); source positions count back from </s>."""
        mask = padding_mask(src_len, src.size(1))
        x = self.embed_at(src, source_positions(src_len, src.size(1)) + offset)
        if self.use_torch:
            return self.core.encoder(x, src_key_padding_mask=~mask[:, 0, 0]), mask
        for block in self.encoder:
            x = block(x, mask)
        return self.enc_ln(x), mask

    def decode(
        self, memory: torch.Tensor, mask: torch.Tensor, tgt_in: torch.Tensor, offset: torch.Tensor | int = 0
    ) -> torch.Tensor:
        """Logits (B, T, V) for every next token of the prefix tgt_in (B, T)."""
        t = tgt_in.size(1)
        y = self.embed_at(tgt_in, torch.arange(t, device=tgt_in.device).expand_as(tgt_in) + offset)
        if self.use_torch:  # nn.Transformer's masks are True where blocked
            blocked, padded = ~causal_mask(t, device=tgt_in.device), tgt_in == PAD
            y = self.core.decoder(y, memory, blocked, None, padded, ~mask[:, 0, 0])
        else:
            self_mask = causal_mask(t, device=tgt_in.device) & (tgt_in != PAD)[:, None, None, :]  # (B,1,T,T)
            for block in self.decoder:
                y = block(y, memory, self_mask, mask)
            y = self.dec_ln(y)
        return self.head(y)

    def forward(
        self,
        src: torch.Tensor,
        src_len: torch.Tensor,
        tgt_in: torch.Tensor,
        targets: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        offset = self.random_offset(len(src), max(src.size(1), tgt_in.size(1)), src.device)
        logits = self.decode(*self.encode(src, src_len, offset), tgt_in, offset)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)
        return logits, loss

    def next_logits(self, state: tuple[torch.Tensor, ...], prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the token after `prefix` (B, t); `state` is what encode() returned."""
        return self.decode(*state, prefix)[:, -1]


@torch.no_grad()
def greedy_decode(model: nn.Module, src: torch.Tensor, src_len: torch.Tensor, max_steps: int) -> torch.Tensor:
    """(B, ≤max_steps+1) ids starting with <s>: always the most likely next token."""
    state = model.encode(src, src_len)
    seqs = torch.full((len(src), 1), BOS, device=src.device)
    done = torch.zeros(len(src), dtype=torch.bool, device=src.device)
    for _ in range(max_steps):
        token = model.next_logits(state, seqs).argmax(-1)  # (B,)
        token = token.masked_fill(done, PAD)
        seqs, done = torch.cat([seqs, token[:, None]], 1), done | (token == EOS)
        if done.all():
            break
    return seqs


@torch.no_grad()
def beam_decode(
    model: nn.Module, src: torch.Tensor, src_len: torch.Tensor, max_steps: int, beam: int
) -> torch.Tensor:
    """Keep the `beam` most likely prefixes per example (sum of log-probabilities); return the best."""
    b, k = len(src), beam
    state = tuple(s.repeat_interleave(k, 0) for s in model.encode(src, src_len))  # (B·k, ...)
    seqs = torch.full((b * k, 1), BOS, device=src.device)
    scores = torch.full((b, k), float("-inf"), device=src.device)
    scores[:, 0] = 0.0  # all beams start identical: keep one alive
    done = torch.zeros(b * k, dtype=torch.bool, device=src.device)
    for _ in range(max_steps):
        logp = model.next_logits(state, seqs).log_softmax(-1)  # (B·k, V)
        v = logp.size(-1)
        logp[done] = float("-inf")
        logp[done, PAD] = 0.0  # a finished beam only extends with padding, at no cost
        total = (scores.view(-1, 1) + logp).view(b, k * v)  # (B, k·V)
        scores, index = total.topk(k, dim=-1)  # (B, k)
        parent = (torch.arange(b, device=src.device)[:, None] * k + index // v).flatten()  # (B·k,)
        token = (index % v).flatten()
        seqs = torch.cat([seqs[parent], token[:, None]], 1)
        done = done[parent] | (token == EOS)
        if done.all():
            break
    best = torch.arange(b, device=src.device) * k + scores.argmax(-1)
    return seqs[best]


def exact_match(model: nn.Module, data: Seq2SeqTasks, split: str, beam: int = 1) -> dict[str, float]:
    """Fraction of each task's examples decoded exactly right (greedy when beam == 1)."""
    model.eval()
    device = next(model.parameters()).device
    right: dict[str, list[bool]] = {}
    examples = data.splits[split]
    for start in range(0, len(examples), data.eval_batch_size):
        chunk = examples[start : start + data.eval_batch_size]
        src, src_len, tgt_in, _ = (t.to(device) for t in collate(chunk))
        decoder = greedy_decode if beam == 1 else partial(beam_decode, beam=beam)
        ids = decoder(model, src, src_len, max_steps=tgt_in.size(1) + 2)
        for e, row in zip(chunk, ids.tolist()):
            right.setdefault(e.task, []).append(decode(row[1:]) == e.target)
    return {task: sum(r) / len(r) for task, r in right.items()}
