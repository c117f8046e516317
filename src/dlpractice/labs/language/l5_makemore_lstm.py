"""L5 · makemore LSTM (Hochreiter & Schmidhuber, 1997): a gated memory cell carried along the name.

Four gates computed from the character and the previous output: input i, forget f, candidate g and
output o; the memory is c' = f * c + i * g and the output h' = o * tanh(c'). The additive update lets
gradients pass through many steps where a plain RNN's shrink. The cell is written out in torch ops
(`LSTMCell` in models/makemore.py) and checked against nn.LSTM with the same weights; the full preset
trains with nn.LSTM (`use_torch`), which is faster on a CPU. The figure shows the four gates along one
name. Simplified: no peepholes, no dropout, a single linear read-out.
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

LAB = lab("l5", requires=("l4",), data=("names",), metric="val_loss", bar=2.05)
CELL = "lstm"


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
