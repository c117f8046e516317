"""F3 · Activation functions: their shapes, their derivatives, and what they do to gradient flow.

Six activations (sigmoid, tanh, ReLU, LeakyReLU, GELU, Swish) are drawn with their derivatives (from
autograd, next to the formula). Then the same 10-layer, 64-wide MLP (PyTorch's default init, plain
SGD so nothing rescales the gradients) is trained on the digits once per activation. Every few steps
the gradient norm of each layer's weights is recorded: with sigmoid it shrinks layer by layer towards
the input (each derivative is at most 1/4), which is why that network barely learns. At the end the
dead-unit fraction (units whose derivative is ~0 on every validation example) and the test accuracy
go into one table. Simplified: one width, one learning rate, one seed; no normalisation layers (lab f6).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import PositiveFloat, PositiveInt
from dlpractice.data.digits import load_digits
from dlpractice.models.mlp import ACTIVATIONS, MLP, error_rate, to_torch, train_classifier
from dlpractice.registry import lab

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f3", requires=("f1",), data=("digits",), metric="best_test_accuracy", goal="max")


@dataclass
class Config:
    depth: PositiveInt = 10  # hidden layers
    width: PositiveInt = 64
    steps: PositiveInt = 1500
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 0.02  # SGD with momentum 0.9: no per-parameter rescaling hides vanishing gradients
    record_every: PositiveInt = 25  # steps between gradient-norm snapshots
    init: Literal["kaiming", "default"] = "kaiming"  # He normal (gain sqrt 2, every activation) or torch's


PRESETS = {
    "smoke": {"steps": 60, "record_every": 20, "width": 32},
    "quick": {},
    "full": {"steps": 4000, "record_every": 50},
}


def swish(x: torch.Tensor) -> torch.Tensor:
    """Swish (SiLU): x * sigmoid(x), smooth, unbounded above, slightly negative below zero."""
    # BEGIN EXERCISE f3.1: swish from torch.sigmoid (torch.nn.functional.silu is the reference)
    return x * torch.sigmoid(x)
    # END EXERCISE


def derivative(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """d fn(x) / dx at every point of x, by autograd (fn acts elementwise)."""
    with torch.enable_grad():
        x = x.detach().clone().requires_grad_(True)
        fn(x).sum().backward()
    return x.grad


def dead_fraction(model: MLP, x: torch.Tensor, threshold: float = 1e-3) -> float:
    """Fraction of hidden units whose activation derivative is below `threshold` on every example."""
    # BEGIN EXERCISE f3.2: run x through the blocks; a unit is dead if f'(z) < threshold for all rows
    dead, total = 0, 0
    with torch.no_grad():
        h = x
        for block in model.blocks:
            linear, activation = block[0], block[-1]
            z = linear(h)  # (N, width) pre-activations
            slope = derivative(activation, z).abs()  # (N, width)
            dead += int((slope < threshold).all(dim=0).sum())
            total += z.shape[1]
            h = activation(z)
    return dead / total
    # END EXERCISE


def layer_grad_norms(model: MLP) -> list[float]:
    """||dL/dW|| of every hidden Linear layer, input side first."""
    return [block[0].weight.grad.norm().item() for block in model.blocks]


def curves_figure() -> plt.Figure:
    x = torch.linspace(-5, 5, 400)
    fig, axes = plt.subplots(2, 3, figsize=(11, 6), sharex=True)
    for ax, (name, make) in zip(axes.flat, ACTIVATIONS.items()):
        fn = swish if name == "swish" else make()
        ax.plot(x, fn(x).detach(), label="f(x)")
        ax.plot(x, derivative(fn, x), "--", label="f'(x)")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set(title=name, ylim=(-1.5, 2.5))
        ax.legend(fontsize=8)
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    digits = load_digits(ctx.data)
    ctx.record_data(digits.describe())
    splits = {
        s: to_torch(getattr(digits, f"x_{s}"), getattr(digits, f"y_{s}")) for s in ("train", "val", "test")
    }
    ctx.figure("activations", curves_figure(), "Activation functions and their derivatives")

    norms: dict[str, list[list[float]]] = {}  # activation -> snapshots of per-layer gradient norms
    losses: dict[str, list[float]] = {}
    metrics: dict[str, float] = {}
    rows = []
    with ctx.progress(total=len(ACTIVATIONS)) as bar:
        for i, name in enumerate(ACTIVATIONS):
            torch.manual_seed(ctx.seed)  # the same initial weights for every activation (same shapes)
            model = MLP(64, 10, cfg.width, cfg.depth, activation=name)
            if cfg.init == "kaiming":
                for block in model.blocks:
                    torch.nn.init.kaiming_normal_(block[0].weight, nonlinearity="relu")
                    torch.nn.init.zeros_(block[0].bias)
            snapshots: list[list[float]] = []

            def record(step: int, model: MLP, loss: float, snapshots=snapshots) -> None:
                if step % cfg.record_every == 0:
                    snapshots.append(layer_grad_norms(model))

            history = train_classifier(
                model,
                splits,
                cfg.steps,
                cfg.batch_size,
                cfg.lr,
                optimizer="sgd",
                seed=ctx.seed,
                on_step=record,
            )
            norms[name], losses[name] = snapshots, history.losses
            accuracy = 1 - error_rate(model, *splits["test"])
            dead = dead_fraction(model, splits["val"][0])
            first, last = np.mean([s[0] for s in snapshots]), np.mean([s[-1] for s in snapshots])
            metrics[f"{name}_test_accuracy"] = accuracy
            metrics[f"{name}_dead_fraction"] = dead
            rows.append(
                f"| {name} | {accuracy:.3f} | {dead:.1%} | {first:.2e} | {last:.2e} | {first / last:.2g} |"
            )
            ctx.tracker.log_metrics(i, {f"{name}_test_accuracy": accuracy})
            bar.update(i + 1, loss=float(np.mean(history.losses[-20:])), val=accuracy)

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
    for name in ACTIVATIONS:
        left.plot(range(1, cfg.depth + 1), np.mean(norms[name], axis=0), "o-", label=name)
        right.plot(np.convolve(losses[name], np.ones(10) / 10, mode="valid"), label=name)
    left.set(
        yscale="log",
        xlabel="layer (1 = next to the input)",
        ylabel="mean ||dL/dW||",
        title=f"gradient norm per layer, {cfg.depth}-layer MLP",
    )
    right.set(xlabel="step", ylabel="train loss (smoothed)", title="training loss")
    left.legend(fontsize=8)
    ctx.figure("gradient_flow", fig, "Gradient flow per layer and training loss")

    grid = np.array([[np.mean([s[k] for s in norms[n]]) for k in range(cfg.depth)] for n in ACTIVATIONS])
    fig, ax = plt.subplots(figsize=(8, 3.5))
    image = ax.imshow(np.log10(grid), aspect="auto", cmap="viridis")
    ax.set(
        yticks=range(len(ACTIVATIONS)),
        yticklabels=list(ACTIVATIONS),
        xlabel="layer",
        xticks=range(cfg.depth),
        xticklabels=range(1, cfg.depth + 1),
    )
    ax.set_title("log10 mean gradient norm")
    fig.colorbar(image)
    ctx.figure("gradient_heatmap", fig, "Gradient norm per activation and layer")
    ctx.section(
        "Results",
        "| activation | test accuracy | dead units | grad norm, layer 1 | grad norm, last layer | ratio |\n"
        "|---|---|---|---|---|---|\n" + "\n".join(rows),
    )
    metrics["best_test_accuracy"] = max(v for k, v in metrics.items() if k.endswith("_test_accuracy"))
    metrics["sigmoid_first_to_last_grad_ratio"] = float(grid[0, 0] / grid[0, -1])
    return metrics
