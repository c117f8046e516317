"""The recurrent encoder-decoder with attention of lab n5 (Bahdanau et al., 2015; Luong et al., 2015),
here so that a second lab (r4, the chatbot) can train it: labs never import each other.

A bidirectional GRU or LSTM reads the source as a packed batch (`pack_padded_sequence`: the padding is
never run through the cells); a unidirectional cell writes the output one token at a time, attending to
the encoder states at every step. Bahdanau attention is additive and scores the previous decoder state;
Luong attention is multiplicative ("general") and scores the new one, feeding its attentional vector
to the next step. Training hands the decoder its own predictions more and more (scheduled sampling).
It follows the decoding contract of models/seq2seq.py (`encode`, then `next_logits(state, prefix)`), so
its greedy and beam decoders work on it. Simplified: one layer each way, no dropout, and decoding reruns
the decoder over the prefix at every step (simple, quadratic in length). Setting `record` to a list makes
`attend` append its weights (B, S) there: what an attention map is drawn from.
"""

from __future__ import annotations

from typing import Literal, Protocol

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlpractice.data.seq2seq import PAD, VOCAB


class RNNSizes(Protocol):
    """What the model reads from a lab's Config."""

    n_embd: int
    n_hidden: int
    tf_start: float  # teacher-forcing probability at step 0 ...
    tf_end: float  # ... falling linearly to this at the last step


class Seq2SeqRNN(nn.Module):
    """Bidirectional encoder, attentive decoder; `logits, loss = model(src, src_len, tgt_in, targets)`."""

    def __init__(
        self,
        cell: Literal["gru", "lstm"],
        attention: Literal["bahdanau", "luong"],
        cfg: RNNSizes,
        vocab: int = len(VOCAB),
        steps: int = 1,
    ):
        super().__init__()
        e, h = cfg.n_embd, cfg.n_hidden
        self.cell_kind, self.attention, self.cfg, self.total_steps = cell, attention, cfg, steps
        self.embed = nn.Embedding(vocab, e, padding_idx=PAD)
        self.encoder = (nn.LSTM if cell == "lstm" else nn.GRU)(e, h, batch_first=True, bidirectional=True)
        self.memory_proj = nn.Linear(2 * h, h)  # encoder states (2H) -> keys/values (H)
        self.bridge = nn.Linear(2 * h, h)  # final encoder states -> initial decoder state
        self.cell = (nn.LSTMCell if cell == "lstm" else nn.GRUCell)(e + h, h)  # input: token ⊕ context/h̃
        if attention == "bahdanau":
            self.w_query, self.v = nn.Linear(h, h, bias=False), nn.Linear(h, 1, bias=False)
            self.out = nn.Linear(2 * h + e, vocab)
        else:
            self.w_score, self.w_combine = nn.Linear(h, h, bias=False), nn.Linear(2 * h, h)
            self.out = nn.Linear(h, vocab)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))  # for the teacher-forcing schedule
        self.record: list[torch.Tensor] | None = None  # a list: attend() appends its weights

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(memory (B, S, H), key mask (B, S), h0 (B, H), c0 (B, H)): batch-first, so beams can copy them."""
        packed = pack_padded_sequence(self.embed(src), src_len.cpu(), batch_first=True, enforce_sorted=False)
        outputs, final = self.encoder(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=src.size(1))  # (B, S, 2H)
        h_n = final[0] if self.cell_kind == "lstm" else final  # (2, B, H): last forward, first backward
        h0 = torch.tanh(self.bridge(torch.cat([h_n[0], h_n[1]], -1)))  # (B, H)
        mask = torch.arange(src.size(1), device=src.device)[None] < src_len[:, None]  # (B, S)
        return self.memory_proj(outputs), mask, h0, torch.zeros_like(h0)

    def attend(self, query: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Context (B, H): attention-weighted sum of memory (B, S, H) for a query (B, H)."""
        if self.attention == "bahdanau":  # additive: vᵀ tanh(W q + k)
            scores = self.v(torch.tanh(self.w_query(query)[:, None] + memory)).squeeze(-1)  # (B, S)
        else:  # Luong "general": qᵀ W k
            scores = (memory @ self.w_score(query)[:, :, None]).squeeze(-1)  # (B, S)
        weights = scores.masked_fill(~mask, float("-inf")).softmax(-1)
        if self.record is not None:
            self.record.append(weights.detach())
        return (weights[:, None] @ memory).squeeze(1)  # (B, H)

    def step_fn(self, token: torch.Tensor, carry: tuple[torch.Tensor, ...], memory, mask):
        """One decoder step: (logits (B, V), new carry). carry = (h, c, feed): feed is the last context/h̃."""
        h, c, feed = carry
        x = self.embed(token)  # (B, E)
        # BEGIN EXERCISE n5.1: one decoder step (Bahdanau: attend with the old state; Luong: with the new)
        if self.attention == "bahdanau":
            feed = self.attend(h, memory, mask)  # context from the previous state
        if self.cell_kind == "lstm":
            h, c = self.cell(torch.cat([x, feed], -1), (h, c))
        else:
            h = self.cell(torch.cat([x, feed], -1), h)
        if self.attention == "bahdanau":
            logits = self.out(torch.cat([h, feed, x], -1))  # state, context and input token
        else:
            context = self.attend(h, memory, mask)  # context from the new state
            feed = torch.tanh(self.w_combine(torch.cat([context, h], -1)))  # h̃: fed to the next step
            logits = self.out(feed)
        # END EXERCISE
        return logits, (h, c, feed)

    def run_decoder(self, state, tgt_in: torch.Tensor, teacher_forcing: float = 1.0) -> torch.Tensor:
        """Logits (B, T, V); each input is the true previous token with probability `teacher_forcing`."""
        memory, mask, h, c = state
        carry, logits, token = (h, c, torch.zeros_like(h)), [], tgt_in[:, 0]
        for t in range(tgt_in.size(1)):
            step_logits, carry = self.step_fn(token, carry, memory, mask)
            logits.append(step_logits)
            if t + 1 < tgt_in.size(1):
                token = tgt_in[:, t + 1]
                if teacher_forcing < 1.0:
                    own = step_logits.argmax(-1)
                    use_true = torch.rand(token.shape, device=token.device) < teacher_forcing
                    token = torch.where(use_true, token, own)
        return torch.stack(logits, 1)

    def teacher_forcing(self) -> float:
        progress = min(1.0, self.step.item() / max(1, self.total_steps))
        return self.cfg.tf_start + (self.cfg.tf_end - self.cfg.tf_start) * progress

    def forward(self, src, src_len, tgt_in, targets=None):
        ratio = self.teacher_forcing() if self.training else 1.0
        if self.training:
            self.step += 1
        logits = self.run_decoder(self.encode(src, src_len), tgt_in, ratio)  # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=PAD)
        return logits, loss

    def next_logits(self, state: tuple[torch.Tensor, ...], prefix: torch.Tensor) -> torch.Tensor:
        """Logits (B, V) of the token after `prefix` (B, t), the prefix fed as it is (for the decoders)."""
        return self.run_decoder(state, prefix)[:, -1]
