"""L4 · makemore RNN (Elman, 1990): a hidden state carried along the name, one tanh step per character.

The cell, h' = tanh(W_ih x + b_ih + W_hh h + b_hh), is written out in torch ops (`RNNCell` in
models/makemore.py) and checked against nn.RNN with the same weights; `use_torch` trains with nn.RNN.
Training reads whole names from their start and scores every position (teacher forcing); evaluation
scores the same context windows as l1-l3. The figure shows the hidden units along one name: how many sit
at ±1 (saturated tanh, where gradients vanish). Simplified: no dropout, a single linear read-out, names
are cut at block_size - 1 characters (names.txt has none longer than 15).
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

LAB = lab("l4", requires=("l2",), data=("names",), metric="val_loss", bar=2.05)
CELL = "rnn"


@dataclass
class Config(RecurrentConfig):
    n_hidden: PositiveInt = 128


# full: 256 hidden units, AdamW 3e-3, batch 64 names, 8000 steps
PRESETS = recurrent_presets(full_steps=8000, use_torch=False)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    return run_recurrent(cfg, ctx, CELL)


def sample(run_dir: Path, cfg: Config, n: int, seed: int) -> list[str]:
    """New names from a finished run's weights."""
    return sample_recurrent(run_dir, cfg, n, seed, CELL)
