"""L8 · nanoGPT on characters (Karpathy's nanoGPT, shakespeare_char): a GPT writes Shakespeare.

The corpus becomes one long stream of character ids, split 90/10 by position; every training example is
a random window of `block_size` characters with the same window shifted by one as its targets, so the
model predicts the next character at every position. The GPT (models/gpt.py) is GPT-2's layout with the
fused causal attention kernel and a tied head; `model_type` swaps in a bigram table or a GRU behind the
same interface, to see what attention buys. Validation loss is nanoGPT's estimate: the mean over
`eval_iters` batches of random windows (here always the same windows). The full preset is nanoGPT's
CPU recipe (4 layers, 4 heads, 128 wide, 64 characters of context, 12 windows a step, 2,000 steps) with
a higher peak learning rate; the fast preset reaches the bar in a quarter fewer steps. The article
(docs/labs/l8-nanogpt.md) has the measurements behind both, and the comparison with nanoGPT's own code.
Simplified from nanoGPT: no KV cache when sampling; float32 and no torch.compile by default (neither
bf16 autocast nor compiling made a step of a model this small faster on a CPU).
Offline, the corpus is the standard library's own docstrings instead of Shakespeare.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Probability, check_multiple
from dlpractice.data.shakespeare import CharVocab, TokenStream, load_corpus
from dlpractice.models.gpt import GPTConfig, build_model, generate
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.recipes.serving import text_predictor
from dlpractice.registry import lab
from dlpractice.serving import Predictor, ServingSpec
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l8", requires=("l7",), data=("shakespeare",), metric="val_loss", bar=1.88)


@dataclass
class Config(FitConfig):
    model_type: Literal["gpt", "gru", "bigram"] = "gpt"
    n_layer: PositiveInt = 4
    n_head: PositiveInt = 4
    n_embd: PositiveInt = 128
    block_size: PositiveInt = 64
    dropout: Probability = 0.0
    compile: bool = False  # torch.compile the model (opt-in: slow to start, faster per step on GPU)
    eval_iters: PositiveInt = 20  # batches of `batch_size` random windows per evaluation, as nanoGPT
    sample_tokens: PositiveInt = 500  # characters per sample
    temperature: PositiveFloat = 0.8
    top_k: NonNegativeInt = 0  # 0 keeps every character

    def check(self) -> None:
        if self.model_type == "gpt":
            check_multiple(self, "n_embd", of="n_head")  # each head gets n_embd / n_head channels


PRESETS = {
    "smoke": {
        "steps": 150,
        "batch_size": 16,
        "block_size": 32,
        "n_layer": 2,
        "n_head": 2,
        "n_embd": 32,
        "lr": 3e-3,
        "eval_iters": 4,
        "eval_every": 75,
        "log_every": 10,
        "sample_tokens": 100,
    },
    "quick": {
        "steps": 500,
        "batch_size": 12,
        "lr": 1e-3,
        "weight_decay": 0.1,
        "warmup_steps": 50,
        "eval_every": 100,
        "log_every": 10,
    },
    "full": {  # nanoGPT README: train_shakespeare_char.py on a CPU
        "steps": 2000,
        "batch_size": 12,
        "block_size": 64,
        "n_layer": 4,
        "n_head": 4,
        "n_embd": 128,
        "dropout": 0.0,
        "lr": 3e-3,  # nanoGPT: 1e-3
        "min_lr_ratio": 0.1,
        "warmup_steps": 100,
        "weight_decay": 0.1,
        "beta2": 0.99,
        "grad_clip": 1.0,
        "eval_iters": 20,
        "eval_every": 250,
        "log_every": 10,
        "ckpt_every": 500,
    },
}
# nanoGPT's CPU recipe with a shorter schedule: the same model and batch, 1,500 steps at a 4e-3 peak
PRESETS["fast"] = {**PRESETS["full"], "steps": 1500, "lr": 4e-3, "warmup_steps": 50}


def build(cfg: Config, vocab_size: int) -> torch.nn.Module:
    size = GPTConfig(
        vocab_size=vocab_size,
        block_size=cfg.block_size,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_embd=cfg.n_embd,
        dropout=cfg.dropout,
    )
    return build_model(cfg.model_type, size)


def write(model: torch.nn.Module, vocab: CharVocab, cfg: Config, n: int, seed: int) -> list[str]:
    """n samples of cfg.sample_tokens characters, each started from a newline."""
    start = vocab.stoi.get("\n", 0)
    device = next(model.parameters()).device
    idx = torch.full((n, 1), start, dtype=torch.long, device=device)
    top_k = cfg.top_k or None
    out = generate(model, idx, cfg.sample_tokens, cfg.temperature, top_k, torch.Generator().manual_seed(seed))
    return [vocab.decode(row[1:]) for row in out.tolist()]


def sample_figure(text: str) -> plt.Figure:
    lines = text.splitlines()[:30]
    fig, ax = plt.subplots(figsize=(8, 0.22 * len(lines) + 0.8))
    ax.axis("off")
    ax.text(0, 1, "\n".join(line[:100] for line in lines), family="monospace", fontsize=8, va="top")
    ax.set_title("a sample (temperature and top-k as configured)", fontsize=9)
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    corpus = load_corpus(ctx.data, ctx.data_dir)
    ctx.record_data(corpus.describe())
    vocab = CharVocab(corpus.chars)
    ctx.save_json("vocab.json", vocab.chars)
    splits = {"train": vocab.encode(corpus.train), "val": vocab.encode(corpus.val)}
    data = TokenStream(splits, cfg.block_size, cfg.eval_iters, eval_batch_size=cfg.batch_size)
    model = build(cfg, len(vocab))
    if cfg.compile:
        model.compile()  # in place: the state_dict keeps its names, so checkpoints stay loadable
    initial = evaluate(model, data, "val")
    result = fit(model, data, cfg, ctx)
    model.to("cpu")
    metrics = {
        "val_loss": evaluate(model, data, "val"),
        "train_loss": evaluate(model, data, "train"),
        "initial_loss": initial,
        "tokens_per_second": result.targets_per_second,
        "train_seconds": result.seconds,
        "params": float(sum(p.numel() for p in model.parameters())),
        "vocab_size": float(len(vocab)),
        "steps": float(result.step),
    }
    ctx.loss_figure(result.history)
    text = write(model, vocab, cfg, 1, ctx.seed)[0]
    ctx.figure("sample", sample_figure(text), "A sample")
    ctx.section("Sample", f"```\n{text}\n```")
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def sample(run_dir: Path, cfg: Config, n: int, seed: int) -> list[str]:
    """n passages of cfg.sample_tokens characters from a finished run's weights."""
    vocab = CharVocab(read_run_json(run_dir, "vocab.json"))
    return write(load_run_model(run_dir, build(cfg, len(vocab))), vocab, cfg, n, seed)


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: each request's prompt continued at its temperature and top-k."""
    chars = read_run_json(run_dir, "vocab.json")
    return text_predictor(load_run_model(run_dir, build(cfg, len(chars))), chars, cfg.block_size)


SERVING = ServingSpec(
    input="prompt",
    output="text",
    load=serve,
    examples=("ROMEO:", "To be", "The "),
    max_chars=500,
    max_tokens=500,
    defaults={"max_tokens": 200, "temperature": 0.8, "top_k": 0},
)
