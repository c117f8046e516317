"""L3 · makemore WaveNet (van den Oord et al., 2016, as in makemore lecture 5): fuse characters pairwise.

l2 squashes its whole context into one hidden layer at once. Here the context grows a tree: embed 8
characters, fuse neighbours into 4 pairs, pairs into 2 quads, quads into 1 (`FlattenConsecutive`), each
level a linear layer, BatchNorm and tanh. That is a dilated causal convolution evaluated at the last
position only. BatchNorm sees (B, T, C) inputs in the lower levels and must average over batch *and* time
(`SeqBatchNorm`), the bug the lecture fixes. The figure shows each level's tanh activations.
Simplified from WaveNet: tanh instead of gated activations, no residual or skip connections, no
convolution reuse across positions at training time (one prediction per window).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import matplotlib.pyplot as plt
import torch

from dlpractice.config import NonNegativeInt, PositiveInt, Range, require
from dlpractice.models.makemore import SeqBatchNorm, WaveNet
from dlpractice.recipes.makemore import (
    load_splits,
    sample_from_run,
    train_and_report,
    window_data,
)
from dlpractice.registry import lab
from dlpractice.train import FitConfig

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l3", requires=("l2",), data=("names",), metric="val_loss", bar=1.99)


@dataclass
class Config(FitConfig):
    block_size: PositiveInt = 8  # characters of context: a power of `fuse`
    fuse: Annotated[int, Range(ge=2)] = 2  # positions fused per level
    n_embd: PositiveInt = 24
    n_hidden: PositiveInt = 128
    n_samples: NonNegativeInt = 20

    def check(self) -> None:
        power = self.fuse
        while power < self.block_size:
            power *= self.fuse
        require(power == self.block_size, f"block_size={self.block_size} must be a power of fuse={self.fuse}")


PRESETS = {
    "smoke": {"steps": 200, "batch_size": 64, "n_hidden": 32, "lr": 3e-3, "eval_every": 100, "log_every": 20},
    "quick": {"steps": 6000, "batch_size": 128, "lr": 3e-3, "weight_decay": 0.1, "eval_every": 500},
    "full": {
        "steps": 20000,
        "batch_size": 256,
        "block_size": 8,
        "n_embd": 24,
        "n_hidden": 200,
        "lr": 3e-3,
        "weight_decay": 0.1,
        "warmup_steps": 500,
        "min_lr_ratio": 0.01,
        "eval_every": 2000,
        "log_every": 100,
        "ckpt_every": 5000,
    },
}


def build(cfg: Config, vocab_size: int) -> WaveNet:
    return WaveNet(vocab_size, cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.fuse)


def levels_figure(acts: list[torch.Tensor]) -> plt.Figure:
    """Histogram of each level's tanh outputs; |h| > 0.97 counts as saturated."""
    fig, axes = plt.subplots(1, len(acts), figsize=(3 * len(acts), 3), sharey=True, squeeze=False)
    for level, (ax, h) in enumerate(zip(axes[0], acts), start=1):
        saturated = (h.abs() > 0.97).float().mean().item()
        shape = "x".join(map(str, h.shape[1:]))
        ax.hist(h.flatten().numpy(), bins=50)
        ax.set(title=f"level {level} ({shape}): {saturated:.0%} sat.", xlabel="tanh output")
    return fig


def batchnorm_table(model: WaveNet, probe: torch.Tensor) -> str:
    """Per-position vs pooled statistics at the first level: why BatchNorm must reduce over (B, T)."""
    x = model.levels[1](model.levels[0](model.wte(probe)))  # (B, T/2, H): the first linear layer's output
    per_position = x.mean(0)  # (T/2, H): what a dim-0-only BatchNorm would use, one row per position
    pooled = x.mean((0, 1))  # (H,): what SeqBatchNorm uses
    spread = (per_position - pooled).abs().mean(1)  # (T/2,)
    rows = "\n".join(f"| {t} | {v:.3f} |" for t, v in enumerate(spread.tolist()))
    return (
        "Mean |per-position mean - pooled mean| over the first level's units, on a validation batch. "
        "A BatchNorm that reduced over the batch only would keep one set of statistics per position "
        f"({len(spread)} sets, each from {len(probe)} samples) instead of one shared set.\n\n"
        f"| position pair | gap |\n|---|---|\n{rows}"
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    names, vocab = load_splits(ctx)
    data = window_data(names, vocab, cfg.block_size)
    model = build(cfg, len(vocab))
    assert any(isinstance(m, SeqBatchNorm) for m in model.modules())
    metrics = train_and_report(model, data, vocab, cfg, ctx)
    model.eval()
    probe = data.splits["val"][0][:2000]
    with torch.no_grad():
        ctx.figure("levels", levels_figure(model.activations(probe)), "Activations per level")
        ctx.section("BatchNorm over batch and time", batchnorm_table(model, probe))
    return metrics


def sample(run_dir: Path, cfg: Config, n: int, seed: int) -> list[str]:
    """New names from a finished run's weights."""
    return sample_from_run(run_dir, lambda v: build(cfg, v), cfg.block_size, n, seed)
