"""The figures of lab r3: few-shot accuracy by method and shots, federated accuracy against rounds, and the
tiny NeRF's held-out views and PSNR curve."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch


def few_shot_figure(
    accuracy: dict[str, dict[int, tuple[float, float]]], labels: dict[str, str], ways: int
) -> plt.Figure:
    """Bars of each method's accuracy (with its 95 % interval) at each shot count; the chance level."""
    shots = list(next(iter(accuracy.values())))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    width = 0.8 / len(accuracy)
    for i, (name, by_shots) in enumerate(accuracy.items()):
        means, halves = zip(*(by_shots[s] for s in shots))
        offset = (i - (len(accuracy) - 1) / 2) * width
        ax.bar(np.arange(len(shots)) + offset, means, width, yerr=halves, capsize=3, label=labels[name])
    ax.axhline(1 / ways, color="black", ls=":", lw=1, label="chance")
    ax.set_xticks(range(len(shots)), [f"{ways}-way {s}-shot" for s in shots])
    ax.set(ylabel="accuracy on unseen classes", ylim=(0, 1.25))  # room above the bars for the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.legend(fontsize=8, loc="upper left", ncols=2)
    ax.grid(axis="y", alpha=0.3)
    return fig


def rounds_figure(curves: dict[str, list[float]], central: list[float]) -> plt.Figure:
    """Test accuracy after each communication round (non-IID dashed) and centralised SGD after each epoch."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for setting, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, "--" if "noniid" in setting else "-", label=setting)
    ax.plot(range(1, len(central) + 1), central, color="black", lw=1, label="centralised (x = epochs)")
    ax.set(xlabel="communication round", ylabel="test accuracy", ylim=(0, 1))
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def views_figure(truth: torch.Tensor, renders: dict[str, list[torch.Tensor]]) -> plt.Figure:
    """Held-out views (V, H, W, 3): the truth, then each model's render of them, a row each."""
    rows = {"truth": list(truth)} | renders
    fig, axes = plt.subplots(
        len(rows), len(truth), figsize=(2.2 * len(truth), 2.2 * len(rows)), squeeze=False
    )
    for r, (title, images) in enumerate(rows.items()):
        for ax, image in zip(axes[r], images):
            ax.imshow(image.clamp(0, 1).numpy(), interpolation="nearest")
            ax.set_xticks([]), ax.set_yticks([])
        axes[r][0].set_ylabel(title, fontsize=8)
    fig.tight_layout()
    return fig


def psnr_figure(curves: dict[str, list[tuple[int, float]]]) -> plt.Figure:
    """Held-out PSNR against training steps, one line per model."""
    fig, ax = plt.subplots(figsize=(6.0, 3.6))
    for name, curve in curves.items():
        ax.plot(*zip(*curve), "o-", ms=3, label=name)
    ax.set(xlabel="training step", ylabel="held-out PSNR (dB)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig
