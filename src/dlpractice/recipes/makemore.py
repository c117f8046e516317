"""What the makemore labs l3-l7 share: the names and their splits, training and the common report, and
the whole of l4-l6 (one recurrent lab, three cells).

l3 trains on right-aligned context windows (as l1-l2 do). The sequence labs l4-l7 train on whole names
read from the start ('.emma' -> 'emma.', a target at every position) but are evaluated on the same
windows as l1-l3 (see `SequenceLM`), so every lab's val/test loss is the same per-character NLL.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from torch import nn

from dlpractice.config import NonNegativeInt, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.names import NameSplits, Vocab, context_windows, load_names, load_vocab
from dlpractice.models.makemore import generate, left_align, name_rows, name_sequences
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext


@dataclass
class SequenceConfig(FitConfig):
    """Knobs shared by l4-l7."""

    block_size: PositiveInt = 16  # longer than any name in names.txt (15), so every window starts with '.'
    n_embd: PositiveInt = 32
    n_samples: NonNegativeInt = 20
    packed: bool = False  # train on all names end to end ('.emma.ava.') cut anywhere: no padding


def load_splits(ctx: RunContext, split: str = "80/10/10") -> tuple[NameSplits, Vocab]:
    """The names split 80/10/10 (or as makemore does), recorded in the run; the vocabulary, saved for
    `dlp sample`."""
    names = load_names(ctx.data, ctx.data_dir, split)
    ctx.record_data(names.describe())
    vocab = Vocab.from_words(names.train + names.val + names.test)
    ctx.save_json("vocab.json", vocab.chars)
    return names, vocab


def window_data(names: NameSplits, vocab: Vocab, block_size: int) -> TensorData:
    """Every (context window -> next character) pair of each split; fit() trains on 'train'."""
    return TensorData(
        {s: context_windows(getattr(names, s), vocab, block_size) for s in ("train", "val", "test")}
    )


def name_stream(words: list[list[int]], block_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every block_size-long slice of '.emma.ava.olivia.' and the same shifted by one: (N, T) each.

    As nanoGPT trains: every position is a target and nothing is padding, but a slice may start in the
    middle of a name and hold the end of the one before; the model learns to start over after '.'.
    """
    stream = torch.tensor([0, *(t for ids in words for t in (*ids, 0))])
    starts = torch.arange(len(stream) - block_size).unsqueeze(1)  # (N, 1)
    index = starts + torch.arange(block_size)  # (N, T)
    return stream[index], stream[index + 1]


def sequence_data(
    names: NameSplits, vocab: Vocab, block_size: int, packed: bool = False, whole_names: bool = False
) -> TensorData:
    """Training names for fit() (one per row, `packed` end to end, or `whole_names` several to a row);
    windows to evaluate ('train_windows': those of 4,000 train names)."""
    splits = {s: context_windows(getattr(names, s), vocab, block_size) for s in ("val", "test")}
    splits["train_windows"] = context_windows(names.train[:4000], vocab, block_size)  # a sample, for speed
    make = name_rows if whole_names else name_stream if packed else name_sequences
    splits["train"] = make([vocab.encode(w) for w in names.train], block_size)
    return TensorData(splits)


def train_and_report(
    model: nn.Module,
    data: TensorData,
    vocab: Vocab,
    cfg: FitConfig,
    ctx: RunContext,
    train_split: str = "train",
) -> dict[str, float]:
    """fit(), then the losses on every split, the loss curve and samples; returns the lab's metrics.

    `cfg` is the lab's Config: fit()'s fields plus `block_size` and `n_samples`."""
    initial = evaluate(model, data, "val")
    started = time.perf_counter()
    result = fit(model, data, cfg, ctx)
    seconds = time.perf_counter() - started
    losses = {
        s: evaluate(model, data, split)
        for s, split in (("train", train_split), ("val", "val"), ("test", "test"))
    }
    ctx.loss_figure(result.history)
    samples = [
        vocab.decode(ids)
        for ids in generate(model, cfg.block_size, cfg.n_samples, torch.Generator().manual_seed(ctx.seed))
    ]
    ctx.section("Samples", ", ".join(samples))
    return {
        "val_loss": losses["val"],
        "test_loss": losses["test"],
        "train_loss": losses["train"],
        "initial_loss": initial,
        "params": float(sum(p.numel() for p in model.parameters())),
        "steps": float(result.step),
        "train_seconds": seconds,
        "tokens_per_second": result.targets_per_second,
    }


def sample_from_run(
    run_dir: Path, build: Callable[[int], nn.Module], block_size: int, n: int, seed: int
) -> list[str]:
    """New names from a finished run: `build(vocab_size)` makes the model, the run's weights fill it."""
    from dlpractice.models.saved import load_run_model

    vocab = load_vocab(run_dir)
    model = load_run_model(run_dir, build(len(vocab)))
    return [vocab.decode(ids) for ids in generate(model, block_size, n, torch.Generator().manual_seed(seed))]


def probe_name(names: NameSplits, vocab: Vocab, block_size: int) -> tuple[str, torch.Tensor]:
    """The first validation name of 6+ letters, as a left-aligned (1, T) sequence '.name'."""
    word = next((w for w in names.val if 6 <= len(w) < block_size), names.val[0][: block_size - 1])
    window = torch.tensor([[0] * (block_size - len(word)) + vocab.encode(word)])
    return word, left_align(window)[0]


def along_name_figure(word: str, panels: dict[str, torch.Tensor], title: str, units: int = 32) -> plt.Figure:
    """Heat maps of activations (T, H) along '.word': one panel per gate, the first `units` units."""
    fig, axes = plt.subplots(1, len(panels), figsize=(2.6 * len(panels) + 1, 4), squeeze=False)
    labels = ["."] + list(word)
    for ax, (name, values) in zip(axes[0], panels.items()):
        shown = values[: len(labels), :units].T.numpy()  # (units, positions)
        vmin = 0.0 if shown.min() >= 0 else -1.0
        image = ax.imshow(shown, aspect="auto", cmap="viridis", vmin=vmin, vmax=1.0)
        ax.set(title=name, xlabel="input character", ylabel="unit")
        ax.set_xticks(range(len(labels)), labels)
        fig.colorbar(image, ax=ax, fraction=0.05)
    fig.suptitle(title)
    return fig


# --------------------------------------------------------------------------------------------------
# l4-l6: one recurrent lab, three cells
# --------------------------------------------------------------------------------------------------


@dataclass
class RecurrentConfig(SequenceConfig):
    n_hidden: PositiveInt = 128
    n_layer: PositiveInt = 1
    use_torch: bool = False  # train with nn.RNN/nn.LSTM/nn.GRU instead of the written-out cell


def recurrent_presets(full_steps: int, use_torch: bool) -> dict[str, dict]:
    """smoke / quick / full for l4-l6; the full preset differs only in length and implementation."""
    return {
        "smoke": {
            "steps": 150,
            "batch_size": 32,
            "n_hidden": 32,
            "lr": 1e-2,
            "eval_every": 75,
            "log_every": 15,
        },
        "quick": {"steps": 3000, "batch_size": 64, "n_hidden": 128, "lr": 3e-3, "eval_every": 500},
        "full": {
            "steps": full_steps,
            "batch_size": 64,
            "n_embd": 32,
            "n_hidden": 256,
            "use_torch": use_torch,
            "lr": 3e-3,
            "weight_decay": 0.1,
            "warmup_steps": 200,
            "min_lr_ratio": 0.01,
            "eval_every": 1000,
            "log_every": 100,
            "ckpt_every": 2000,
        },
    }


def build_recurrent(cfg: RecurrentConfig, cell: str, vocab_size: int, use_torch: bool | None = None):
    from dlpractice.models.makemore import RecurrentLM

    flag = cfg.use_torch if use_torch is None else use_torch
    return RecurrentLM(vocab_size, cfg.block_size, cfg.n_embd, cfg.n_hidden, cell, cfg.n_layer, flag)


def time_step(model: nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 3) -> float:
    """Milliseconds for one forward + backward pass (best of `repeats`)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        model(x, y)[1].backward()
        best = min(best, time.perf_counter() - started)
    model.zero_grad(set_to_none=True)
    return best * 1000


def ours_vs_torch(model, cfg: RecurrentConfig, cell: str, data: TensorData) -> tuple[float, str]:
    """Copy the weights into the other implementation; the largest logit difference and a timing table."""
    from dlpractice.models.makemore import copy_recurrent_weights

    twin = build_recurrent(cfg, cell, model.lm_head.out_features, use_torch=not model.use_torch)
    copy_recurrent_weights(model, twin)
    x, y = (t[:256] for t in data.splits["train"])
    with torch.no_grad():
        diff = (model.logits_all(x) - twin.logits_all(x)).abs().max().item()
    ms = {m.use_torch: time_step(m, x, y) for m in (model, twin)}
    table = (
        "| implementation | forward + backward, 256 names (ms) |\n|---|---|\n"
        f"| written-out cell (torch ops) | {ms[False]:.1f} |\n| nn.{cell.upper()} | {ms[True]:.1f} |\n\n"
        f"Same weights, largest difference in logits: {diff:.2e}."
    )
    return diff, table


def run_recurrent(cfg: RecurrentConfig, ctx: RunContext, cell: str) -> dict[str, float]:
    """The whole of l4, l5 or l6: only `cell` differs."""
    from dlpractice.models.makemore import copy_recurrent_weights, run_cells

    names, vocab = load_splits(ctx)
    data = sequence_data(names, vocab, cfg.block_size, cfg.packed)
    model = build_recurrent(cfg, cell, len(vocab))
    diff, table = ours_vs_torch(model, cfg, cell, data)
    ctx.section(f"Written-out {cell.upper()} cell vs nn.{cell.upper()}, same weights", table)
    metrics = train_and_report(model, data, vocab, cfg, ctx, train_split="train_windows")

    ours = build_recurrent(cfg, cell, len(vocab), use_torch=False)  # the trained weights, cell by cell
    copy_recurrent_weights(model, ours)
    word, seq = probe_name(names, vocab, cfg.block_size)
    with torch.no_grad():
        _, gates = run_cells(ours.cells, ours.wte(seq))
    panels = {name: g[0] for name, g in gates[-1].items()}  # top layer, (T, H) each
    ctx.figure(
        "gates",
        along_name_figure(word, panels, f"{cell.upper()} activations along '.{word}'"),
        "Gates along a name",
    )
    return {**metrics, "cell_torch_max_diff": diff}


def sample_recurrent(run_dir: Path, cfg: RecurrentConfig, n: int, seed: int, cell: str) -> list[str]:
    return sample_from_run(run_dir, lambda v: build_recurrent(cfg, cell, v), cfg.block_size, n, seed)
