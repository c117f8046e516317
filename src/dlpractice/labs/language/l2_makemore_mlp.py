"""L2 · makemore MLP (Bengio et al., 2003): predict the next character from the previous few.

Each of the last `block_size` characters is looked up in a learned embedding table, the embeddings are
concatenated and passed through a tanh hidden layer with BatchNorm, then a linear layer gives logits for
the next character. Kaiming init (gain 5/3 for tanh) and a small output layer keep the start healthy:
the report shows the initial loss against ln(27) and how saturated the tanh units are. The NumPy twin
(`models/makemore_numpy.py`) writes every gradient by hand and is checked against PyTorch step by step.
Simplified from the paper: no direct input-to-output connections; AdamW instead of plain SGD.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.names import Vocab, context_windows, load_names, load_vocab
from dlpractice.models.makemore import MLP, generate
from dlpractice.models.makemore_numpy import NumpyMLP
from dlpractice.models.saved import load_run_model
from dlpractice.recipes.serving import name_predictor, name_vocab
from dlpractice.registry import lab
from dlpractice.serving import Predictor, ServingSpec
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l2", requires=("l1",), data=("names",), metric="val_loss", bar=2.12)


@dataclass
class Config(FitConfig):
    block_size: PositiveInt = 3  # characters of context
    n_embd: PositiveInt = 10  # embedding dimensions per character
    n_hidden: PositiveInt = 200
    batchnorm: bool = True
    n_samples: NonNegativeInt = 20
    parity_steps: PositiveInt = 5  # NumPy vs PyTorch agreement check: SGD steps on one batch
    parity_lr: PositiveFloat = 0.1


PRESETS = {
    "smoke": {
        "steps": 300,
        "batch_size": 64,
        "n_hidden": 64,
        "lr": 3e-3,
        "eval_every": 100,
        "log_every": 20,
        "ckpt_every": 100,
    },
    "quick": {"steps": 6000, "batch_size": 128, "lr": 3e-3, "weight_decay": 0.1, "eval_every": 500},
    "full": {
        "steps": 30000,
        "batch_size": 256,
        "block_size": 4,
        "n_embd": 16,
        "n_hidden": 400,
        "lr": 3e-3,
        "weight_decay": 0.1,
        "warmup_steps": 500,
        "min_lr_ratio": 0.01,
        "eval_every": 2000,
        "log_every": 100,
        "ckpt_every": 5000,
    },
}


def parity_check(model: MLP, x: torch.Tensor, y: torch.Tensor, cfg: Config) -> list[tuple[int, float, float]]:
    """Same weights, same batch, same SGD steps in NumPy (hand-written backward) and PyTorch (float64)."""
    theirs = MLP(model.wte.num_embeddings, cfg.block_size, cfg.n_embd, cfg.n_hidden, batchnorm=True).double()
    theirs.load_state_dict(model.state_dict())
    ours = NumpyMLP({k: v.numpy() for k, v in theirs.state_dict().items()})
    optimizer = torch.optim.SGD(theirs.parameters(), lr=cfg.parity_lr)
    rows = []
    for step in range(cfg.parity_steps):
        _, loss = theirs(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        rows.append((step, ours.sgd_step(x.numpy(), y.numpy(), cfg.parity_lr), loss.item()))
    return rows


def embedding_figure(model: MLP, vocab: Vocab) -> plt.Figure:
    """Characters in the learned embedding space (its first two principal components if C > 2)."""
    emb = model.wte.weight.detach().numpy()  # (V, C)
    centred = emb - emb.mean(0)
    if emb.shape[1] > 2:
        _, _, vt = np.linalg.svd(centred, full_matrices=False)
        centred = centred @ vt[:2].T  # (V, 2)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(centred[:, 0], centred[:, 1], s=250, color="lightsteelblue")
    for i, ch in enumerate(vocab.chars):
        ax.text(centred[i, 0], centred[i, 1], ch, ha="center", va="center")
    axis = "embedding dim" if emb.shape[1] == 2 else "principal component"
    ax.set(xlabel=f"{axis} 1", ylabel=f"{axis} 2", title="learned character embeddings")
    ax.grid(alpha=0.3)
    return fig


def activation_figure(init: torch.Tensor, trained: torch.Tensor) -> plt.Figure:
    """Histograms of the tanh activations at init and after training; |h| > 0.97 is saturated."""
    fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
    for ax, h, when in zip(axes, (init, trained), ("at init", "trained")):
        saturated = (h.abs() > 0.97).float().mean().item()
        ax.hist(h.flatten().numpy(), bins=50)
        ax.set(title=f"tanh activations {when}: {saturated:.1%} saturated", xlabel="h")
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    names = load_names(ctx.data, ctx.data_dir)
    ctx.record_data(names.describe())
    vocab = Vocab.from_words(names.train + names.val + names.test)
    ctx.save_json("vocab.json", vocab.chars)
    splits = {s: context_windows(getattr(names, s), vocab, cfg.block_size) for s in ("train", "val", "test")}
    data = TensorData(splits)

    model = MLP(len(vocab), cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.batchnorm)
    probe = splits["val"][0][:1000]  # a fixed batch to look at the hidden layer
    with torch.no_grad():
        h_init = model.hidden(probe)[1]
        initial_loss = model(*splits["train"])[1].item()
    parity = (
        parity_check(model, splits["train"][0][:64], splits["train"][1][:64], cfg) if cfg.batchnorm else []
    )

    result = fit(model, data, cfg, ctx)
    losses = {s: evaluate(model, data, s) for s in ("train", "val", "test")}

    model.eval()
    with torch.no_grad():
        h_trained = model.hidden(probe)[1]
    ctx.loss_figure(result.history)
    ctx.figure("embedding", embedding_figure(model, vocab), "Character embeddings")
    ctx.figure(
        "activations",
        activation_figure(h_init, h_trained),
        "Hidden-layer activations (BatchNorm diagnostics)",
    )
    generator = torch.Generator().manual_seed(ctx.seed)
    samples = [vocab.decode(ids) for ids in generate(model, cfg.block_size, cfg.n_samples, generator)]
    ctx.section("Samples", ", ".join(samples))
    ctx.section(
        "Initialisation",
        f"loss at init {initial_loss:.4f}; a uniform guess gives ln({len(vocab)}) = "
        f"{math.log(len(vocab)):.4f}.",
    )
    if parity:
        ctx.section(
            "NumPy vs PyTorch, same start, SGD on one batch (float64)",
            "| step | NumPy loss | PyTorch loss |\n|---|---|---|\n"
            + "\n".join(f"| {s} | {a:.8f} | {b:.8f} |" for s, a, b in parity),
        )
    metrics = {
        "val_loss": losses["val"],
        "test_loss": losses["test"],
        "train_loss": losses["train"],
        "initial_loss": initial_loss,
        "params": float(sum(p.numel() for p in model.parameters())),
        "steps": float(result.step),
        "train_seconds": result.seconds,
        "tokens_per_second": result.targets_per_second,
    }
    if parity:
        metrics["numpy_torch_max_diff"] = max(abs(a - b) for _, a, b in parity)
    return metrics


def sample(run_dir, cfg: Config, n: int, seed: int) -> list[str]:
    """New names from a finished run's weights."""
    vocab = load_vocab(run_dir)
    model = load_run_model(run_dir, MLP(len(vocab), cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.batchnorm))
    return [
        vocab.decode(ids) for ids in generate(model, cfg.block_size, n, torch.Generator().manual_seed(seed))
    ]


def serve(run_dir, cfg: Config) -> Predictor:
    """`dlp serve`: names that start with each request's prompt, at its temperature and top-k."""
    vocab = name_vocab(run_dir)
    model = load_run_model(run_dir, MLP(len(vocab), cfg.block_size, cfg.n_embd, cfg.n_hidden, cfg.batchnorm))
    return name_predictor(model, vocab, cfg.block_size)


SERVING = ServingSpec(
    input="prompt",
    output="text",
    load=serve,
    examples=("", "em", "jo", "ka"),
    max_chars=20,
    max_tokens=30,
    defaults={"max_tokens": 20, "temperature": 1.0, "top_k": 0},
)
