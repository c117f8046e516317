"""N4 · The encoder-decoder transformer ("Attention Is All You Need", Vaswani et al., 2017).

Built from the n3 pieces (`dlpractice.nn.attention`) in `dlpractice.models.seq2seq`: an encoder of
self-attention blocks, a decoder of causal self-attention plus cross-attention blocks, trained with
teacher forcing on four generated tasks at once (reverse, sort, add, date normalisation;
`dlpractice.data.seq2seq`). Decoding is greedy and beam search; the score is exact match per task,
on lengths seen in training and on reverse/sort up to 20 % longer (the generalisation gap).
`nn.Transformer` of the same size, trained the same way, is the comparison.

Positions decide length generalisation. Source positions count back from </s>, so the k-th character
of a reversal reads the same source position at any length; in training, one random offset per example
shifts its source and target positions together (half the examples keep 0), so every position of the
table is trained and the alignment kept. Token embeddings start at std 1/√C: scaled by √C, they do not
drown the sinusoids. Simplified: pre-norm blocks (`norm_first=True` for nn.Transformer too), no label
smoothing, no weight tying, beam search without length penalty, no KV cache (each step reruns the
decoder on the prefix).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import matplotlib.pyplot as plt
import torch

from dlpractice.config import PositiveInt, Probability, Range, check_multiple
from dlpractice.data.seq2seq import TASKS, VOCAB, Seq2SeqTasks, collate
from dlpractice.models.seq2seq import Seq2SeqTransformer, TransformerConfig
from dlpractice.recipes.seq2seq import exact_match_table, flat_scores, train_and_score
from dlpractice.registry import lab
from dlpractice.train import FitConfig

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n4", requires=("n3",), data=("generated",), metric="long_exact_match", goal="max", bar=0.97)


@dataclass
class Config(FitConfig):
    d_model: PositiveInt = 64
    n_heads: PositiveInt = 4
    n_layers: PositiveInt = 2
    d_ff: PositiveInt = 256
    dropout: Probability = 0.0
    max_positions: PositiveInt = 48
    pos_offset: bool = True  # random position offsets in training
    n_train: Annotated[int, Range(ge=4)] = 40000
    n_eval: PositiveInt = 200  # per task and split
    max_len: PositiveInt = 20  # longest reverse/sort source in training
    add_digits: PositiveInt = 4
    narrow_alphabets: bool = False  # half the reverse/sort training sources from fewer letters (hurt)
    beam_size: PositiveInt = 4
    compare_torch: bool = True  # train nn.Transformer of the same size the same way

    def check(self) -> None:
        check_multiple(self, "d_model", of="n_heads")  # each head gets d_model / n_heads channels


PRESETS = {
    "smoke": {
        "d_model": 32,
        "n_heads": 2,
        "n_layers": 1,
        "d_ff": 64,
        "n_train": 2000,
        "n_eval": 20,
        "max_len": 6,
        "steps": 60,
        "batch_size": 32,
        "lr": 3e-3,
        "log_every": 10,
        "beam_size": 2,
    },
    "quick": {
        "n_train": 20000,
        "n_eval": 100,
        "max_len": 10,
        "steps": 1500,
        "batch_size": 64,
        "lr": 2e-3,
        "warmup_steps": 100,
        "eval_every": 500,
    },
    "full": {  # the article's table shows what else was tried on the longer sorts, none better
        "d_model": 128,
        "n_heads": 8,
        "d_ff": 512,
        "n_train": 200000,
        "steps": 10000,
        "batch_size": 64,
        "lr": 2e-3,
        "warmup_steps": 300,
        "min_lr_ratio": 0.02,
        "eval_every": 1000,
        "log_every": 100,
        "ckpt_every": 3000,
    },
}


def model_config(cfg: Config) -> TransformerConfig:
    """The model's sizes from the lab's Config."""
    return TransformerConfig(
        d_model=cfg.d_model,
        n_heads=cfg.n_heads,
        n_layers=cfg.n_layers,
        d_ff=cfg.d_ff,
        dropout=cfg.dropout,
        max_positions=cfg.max_positions,
        pos_offset=cfg.pos_offset,
    )


def attention_figure(model: Seq2SeqTransformer, data: Seq2SeqTasks) -> plt.Figure:
    """Cross-attention (last decoder block, heads averaged) of one example per task."""
    examples = [next(e for e in data.splits["test"] if e.task == task) for task in data.tasks]
    fig, axes = plt.subplots(1, len(examples), figsize=(4 * len(examples), 4))
    attn = model.decoder[-1].cross_attn
    attn.keep_weights = True
    for ax, e in zip(axes, examples):
        src, src_len, tgt_in, _ = collate([e])
        model(src, src_len, tgt_in)
        ax.imshow(attn.weights[0].mean(0).cpu().numpy(), cmap="viridis")
        ax.set_xticks(range(len(e.src)), [VOCAB[i] for i in e.src], fontsize=7)
        ax.set_yticks(range(len(e.tgt) - 1), [VOCAB[i] for i in e.tgt[1:]], fontsize=7)
        ax.set(title=e.task, xlabel="source", ylabel="output")
    attn.keep_weights = False
    return fig


def worst_of_reverse_and_sort(scores: dict[str, dict[str, float]], split: str) -> float:
    """The lower of reverse and sort exact match on `split`, each with its better decoder (greedy/beam)."""
    return min(max(scores[split][t], scores[f"{split}_beam"][t]) for t in ("reverse", "sort"))


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = Seq2SeqTasks(
        TASKS,
        cfg.n_train,
        cfg.n_eval,
        max_len=cfg.max_len,
        add_digits=cfg.add_digits,
        narrow_alphabets=cfg.narrow_alphabets,
    )
    ctx.record_data(data.describe())  # generated whatever --data asks: these tasks have no real version
    model = Seq2SeqTransformer(model_config(cfg))
    rows = {"ours": train_and_score(model, data, cfg, ctx)}
    ctx.loss_figure(rows["ours"]["history"])
    ctx.figure("attention", attention_figure(model, data), "Cross-attention of the last decoder block")
    if cfg.compare_torch:
        torch.manual_seed(ctx.seed)
        theirs = Seq2SeqTransformer(model_config(cfg), use_torch=True)
        rows["nn.Transformer"] = train_and_score(theirs, data, cfg, ctx.child("nn_transformer"))
    ctx.section("Exact match (greedy / beam)", exact_match_table(rows, data.tasks))
    scores = rows["ours"]["scores"]
    seen, longer = worst_of_reverse_and_sort(scores, "test"), worst_of_reverse_and_sort(scores, "long")
    ctx.section(
        "Length generalisation",
        f"Reverse and sort, lengths {data.long_range[0]}-{data.long_range[1]} (training: 1-{cfg.max_len}): "
        f"worst of the two {longer:.1%} against {seen:.1%} at seen lengths (each with its better "
        f"decoder), a gap of {seen - longer:+.1%}.",
    )
    metrics = {"long_exact_match": longer, "generalisation_gap": seen - longer}
    for name, prefix in (("ours", ""), ("nn.Transformer", "torch_")):
        if name in rows:
            row = rows[name]
            metrics |= flat_scores(row["scores"], prefix)
            metrics |= {f"{prefix}params": float(row["params"]), f"{prefix}train_seconds": row["seconds"]}
    return metrics
