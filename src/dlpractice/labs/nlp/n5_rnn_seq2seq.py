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

from dlpractice.config import PositiveInt, Range, UnitInterval
from dlpractice.data.seq2seq import TASKS, Seq2SeqTasks
from dlpractice.models.rnn_seq2seq import Seq2SeqRNN
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
