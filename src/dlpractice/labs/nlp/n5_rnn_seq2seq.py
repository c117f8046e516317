"""N5 · RNN encoder-decoder with attention (Bahdanau et al., 2015; Luong et al., 2015).

A bidirectional GRU or LSTM reads the source as a packed batch (`pack_padded_sequence`: the padding is
never run through the cells); a unidirectional cell writes the output one token at a time, attending to
the encoder states at every step. Bahdanau attention is additive and scores the previous decoder state;
Luong attention is multiplicative ("general") and scores the new one, feeding its attentional vector
to the next step. Training starts fully teacher-forced and hands the decoder its own predictions more
and more (a linear schedule, "scheduled sampling"). Same tasks, decoding and exact match as n4
(`dlpractice.data.seq2seq`; the greedy and beam decoders of `dlpractice.models.seq2seq`), and n4's
transformer, at its default size, trained in the same run with the same budget, in one table.
Simplified: one encoder and one decoder layer, no dropout, and decoding reruns the decoder over the
prefix at every step (simple, quadratic in length).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dlpractice.config import PositiveInt, Range, UnitInterval
from dlpractice.data.seq2seq import PAD, TASKS, VOCAB, Seq2SeqTasks
from dlpractice.models.seq2seq import Seq2SeqTransformer, TransformerConfig
from dlpractice.recipes.seq2seq import exact_match_table, flat_scores, train_and_score
from dlpractice.registry import lab
from dlpractice.train import FitConfig

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n5", requires=("n4",), data=("generated",), metric="test_exact_match", goal="max")


@dataclass
class Config(FitConfig):
    # <cell>-<attention>: each variant is trained and scored
    variants: tuple[Literal["gru-bahdanau", "gru-luong", "lstm-bahdanau", "lstm-luong"], ...] = (
        "gru-bahdanau",
        "lstm-luong",
    )
    n_embd: PositiveInt = 64
    n_hidden: PositiveInt = 128
    tf_start: UnitInterval = 1.0  # teacher-forcing probability at step 0 ...
    tf_end: UnitInterval = 0.5  # ... falling linearly to this at the last step
    n_train: Annotated[int, Range(ge=4)] = 40000
    n_eval: PositiveInt = 200
    max_len: PositiveInt = 20
    add_digits: PositiveInt = 4
    beam_size: PositiveInt = 4
    compare_transformer: bool = True  # train n4's transformer (its default size) with the same budget


PRESETS = {
    "smoke": {
        "variants": ("gru-bahdanau", "lstm-luong"),
        "n_embd": 16,
        "n_hidden": 32,
        "n_train": 2000,
        "n_eval": 10,
        "max_len": 5,
        "steps": 40,
        "batch_size": 32,
        "lr": 3e-3,
        "eval_every": 20,
        "log_every": 10,
        "beam_size": 2,
        "compare_transformer": False,
    },
    "quick": {
        "n_hidden": 96,
        "n_train": 20000,
        "n_eval": 100,
        "max_len": 10,
        "steps": 1500,
        "batch_size": 64,
        "lr": 3e-3,
        "eval_every": 500,
    },
    "full": {  # three models in about a quarter of an hour on one CPU thread
        "steps": 3000,
        "batch_size": 64,
        "lr": 2e-3,
        "warmup_steps": 200,
        "min_lr_ratio": 0.02,
        "eval_every": 1000,
        "log_every": 100,
        "ckpt_every": 1000,
    },
}


class Seq2SeqRNN(nn.Module):
    """Bidirectional encoder, attentive decoder; `logits, loss = model(src, src_len, tgt_in, targets)`."""

    def __init__(
        self,
        cell: Literal["gru", "lstm"],
        attention: Literal["bahdanau", "luong"],
        cfg: Config,
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


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = Seq2SeqTasks(TASKS, cfg.n_train, cfg.n_eval, max_len=cfg.max_len, add_digits=cfg.add_digits)
    ctx.record_data(data.describe())  # generated whatever --data asks: these tasks have no real version
    rows = {}
    for i, variant in enumerate(cfg.variants):
        cell, attention = variant.split("-")
        torch.manual_seed(ctx.seed)
        model = Seq2SeqRNN(cell, attention, cfg, steps=cfg.steps)
        run_ctx = ctx if i == 0 else ctx.child(variant)
        rows[variant] = train_and_score(model, data, cfg, run_ctx)
        if i == 0:
            ctx.loss_figure(rows[variant]["history"])
    if cfg.compare_transformer:
        torch.manual_seed(ctx.seed)
        transformer = Seq2SeqTransformer(TransformerConfig())  # n4's default size, trained with cfg's budget
        rows["transformer (n4)"] = train_and_score(transformer, data, cfg, ctx.child("transformer"))
    ctx.section("Exact match (greedy / beam), same budget", exact_match_table(rows, data.tasks))
    metrics: dict[str, float] = {}
    for name, row in rows.items():
        key = name.split(" ")[0].replace("-", "_")
        metrics |= flat_scores(row["scores"], f"{key}_")
        metrics |= {f"{key}_params": float(row["params"]), f"{key}_train_seconds": row["seconds"]}
    first = rows[cfg.variants[0]]["scores"]["test"]
    metrics["test_exact_match"] = sum(first.values()) / len(first)
    return metrics
