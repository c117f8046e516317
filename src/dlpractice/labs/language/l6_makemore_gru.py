"""L6 · makemore GRU (Cho et al., 2014): a gated hidden state, with two gates and no separate memory.

A reset gate r decides how much of the old state shapes the candidate n = tanh(W_in x + r * (W_hn h)),
and an update gate z blends old and new: h' = (1 - z) * n + z * h. Fewer parameters than the LSTM for
the same width, often as good. The cell is written out in torch ops (`GRUCell` in models/makemore.py)
and checked against nn.GRU with the same weights (note where PyTorch puts the reset gate: after W_hn h,
not before as in the paper); the full preset trains with nn.GRU (`use_torch`), faster on a CPU. The
figure shows the gates along one name. Simplified: no dropout, a single linear read-out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dlpractice.config import PositiveInt
from dlpractice.recipes.makemore import (
    RecurrentConfig,
    recurrent_presets,
    run_recurrent,
    sample_recurrent,
)
from dlpractice.registry import lab

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l6", requires=("l5",), data=("names",), metric="val_loss", bar=2.05)
CELL = "gru"


@dataclass
class Config(RecurrentConfig):
    n_hidden: PositiveInt = 128


# full: 256 hidden units, AdamW 3e-3, batch 64 names, 6000 steps
PRESETS = recurrent_presets(full_steps=6000, use_torch=True)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return run_recurrent(cfg, ctx, CELL)


def sample(run_dir: Path, cfg: Config, n: int, seed: int) -> list[str]:
    """New names from a finished run's weights."""
    return sample_recurrent(run_dir, cfg, n, seed, CELL)
