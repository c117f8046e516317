"""L1 · makemore bigram: predict each character of a name from the one before it.

Two ways to the same model. Counting: tabulate how often each character follows each other one,
smooth, normalise, and read probabilities off the table (NumPy). Learning: a (27, 27) table of logits
trained by gradient descent on the negative log-likelihood (PyTorch, through fit(); and NumPy with the
gradient written by hand, checked to agree with PyTorch step by step). Both reach the same loss, which is
the point: gradient descent recovers the counts. Simplified: no regularisation beyond add-k smoothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.names import Vocab, context_windows, load_names
from dlpractice.models.makemore import Bigram, generate
from dlpractice.models.makemore_numpy import NumpyBigram
from dlpractice.models.saved import load_run_model
from dlpractice.registry import lab
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l1", data=("names",), metric="test_nll", bar=2.48)


@dataclass
class Config(FitConfig):
    smoothing: NonNegativeFloat = 1.0  # add-k smoothing of the counts: unseen bigrams keep some probability
    n_samples: NonNegativeInt = 20
    parity_steps: PositiveInt = 5  # NumPy vs PyTorch agreement check: full-batch gradient steps
    parity_lr: PositiveFloat = 10.0


PRESETS = {
    "smoke": {
        "steps": 200,
        "batch_size": 256,
        "lr": 0.5,
        "eval_every": 100,
        "log_every": 20,
        "ckpt_every": 100,
    },
    "quick": {"steps": 3000, "batch_size": 512, "lr": 0.5, "eval_every": 500},
    "full": {"steps": 10000, "batch_size": 1024, "lr": 0.5, "eval_every": 1000},
}


def bigram_counts(words: list[str], vocab: Vocab) -> np.ndarray:
    """N[i, j] = how often character j follows character i (with '.' at both ends of each word)."""
    # BEGIN EXERCISE l1.1: count every (previous, next) character pair, boundaries included
    counts = np.zeros((len(vocab), len(vocab)), dtype=np.int64)
    for word in words:
        ids = [0, *vocab.encode(word), 0]
        for prev, nxt in zip(ids, ids[1:]):
            counts[prev, nxt] += 1
    # END EXERCISE
    return counts


def count_probabilities(counts: np.ndarray, smoothing: float) -> np.ndarray:
    """Rows of P sum to one: P[i, j] = (N[i, j] + k) / sum_j (N[i, j] + k)."""
    # BEGIN EXERCISE l1.2: smooth and normalise the counts into next-character probabilities
    smoothed = counts + smoothing
    return smoothed / smoothed.sum(axis=1, keepdims=True)
    # END EXERCISE


def average_nll(probs: np.ndarray, prev: np.ndarray, nxt: np.ndarray) -> float:
    """Mean negative log-likelihood of the pairs (prev -> nxt) under the table `probs`."""
    return float(-np.log(probs[prev, nxt]).mean())


def parity_check(
    model: Bigram, prev: np.ndarray, nxt: np.ndarray, cfg: Config
) -> list[tuple[int, float, float]]:
    """Same start, same full-batch steps in NumPy and PyTorch: (step, numpy loss, torch loss)."""
    ours = NumpyBigram(model.logits.detach().double().numpy())
    theirs = Bigram(model.logits.shape[0]).double()
    theirs.load_state_dict(model.state_dict())
    optimizer = torch.optim.SGD(theirs.parameters(), lr=cfg.parity_lr)
    x, y = torch.from_numpy(prev).view(-1, 1), torch.from_numpy(nxt)
    rows = []
    for step in range(cfg.parity_steps):
        _, loss = theirs(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rows.append((step, ours.sgd_step(prev, nxt, cfg.parity_lr), loss.item()))
    return rows


def heatmap(counts: np.ndarray, vocab: Vocab) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 9))
    ax.imshow(counts, cmap="Blues")
    for i in range(len(vocab)):
        for j in range(len(vocab)):
            ax.text(j, i, vocab.chars[i] + vocab.chars[j], ha="center", va="bottom", color="gray", fontsize=6)
            ax.text(j, i, str(counts[i, j]), ha="center", va="top", color="gray", fontsize=6)
    ax.set(title="bigram counts (row: previous character, column: next)")
    ax.axis("off")
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    names = load_names(ctx.data, ctx.data_dir)
    ctx.record_data(names.describe())
    vocab = Vocab.from_words(names.train + names.val + names.test)
    ctx.save_json("vocab.json", vocab.chars)
    splits = {s: context_windows(getattr(names, s), vocab, block_size=1) for s in ("train", "val", "test")}

    # 1. counting (NumPy)
    counts = bigram_counts(names.train, vocab)
    probs = count_probabilities(counts, cfg.smoothing)
    count_nll = {s: average_nll(probs, x[:, 0].numpy(), y.numpy()) for s, (x, y) in splits.items()}

    # 2. the same model learned by gradient descent (PyTorch, through fit())
    model = Bigram(len(vocab))
    parity = parity_check(model, splits["train"][0][:, 0].numpy(), splits["train"][1].numpy(), cfg)
    result = fit(model, TensorData(splits), cfg, ctx)
    nll = {s: evaluate(model, TensorData(splits), s) for s in ("train", "val", "test")}

    # figures and samples
    ctx.loss_figure(result.history)
    ctx.figure("counts", heatmap(counts, vocab), "Bigram counts on the training names")
    generator = torch.Generator().manual_seed(ctx.seed)
    samples = [vocab.decode(ids) for ids in generate(model, 1, cfg.n_samples, generator)]
    ctx.section("Samples (learned bigram)", ", ".join(samples))
    ctx.section(
        "Counting vs learning",
        "| split | counting NLL | learned NLL |\n|---|---|---|\n"
        + "\n".join(f"| {s} | {count_nll[s]:.4f} | {nll[s]:.4f} |" for s in ("train", "val", "test")),
    )
    ctx.section(
        "NumPy vs PyTorch, same start, full-batch SGD",
        "| step | NumPy loss | PyTorch loss |\n|---|---|---|\n"
        + "\n".join(f"| {s} | {a:.6f} | {b:.6f} |" for s, a, b in parity),
    )
    return {
        "test_nll": nll["test"],
        "val_nll": nll["val"],
        "train_nll": nll["train"],
        "count_test_nll": count_nll["test"],
        "count_val_nll": count_nll["val"],
        "numpy_torch_max_diff": max(abs(a - b) for _, a, b in parity),
        "params": float(sum(p.numel() for p in model.parameters())),
        "steps": float(result.step),
        "tokens_per_second": result.targets_per_second,
    }


def sample(run_dir, cfg: Config, n: int, seed: int) -> list[str]:
    """New names from a finished run's weights."""
    from dlpractice.data.names import load_vocab

    vocab = load_vocab(run_dir)
    model = load_run_model(run_dir, Bigram(len(vocab)))
    return [vocab.decode(ids) for ids in generate(model, 1, n, torch.Generator().manual_seed(seed))]
