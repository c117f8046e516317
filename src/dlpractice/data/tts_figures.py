"""Figures of lab s5: mel frames side by side, Tacotron's attention alignment, predicted vs true durations."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.data import tts as data


def mel_figure(target: torch.Tensor, fast: torch.Tensor, taco: torch.Tensor, text: str) -> plt.Figure:
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    for ax, mel, name in zip(axes, (target, fast, taco), ("eSpeak (target)", "FastSpeech", "Tacotron")):
        ax.imshow(
            data.mel_to_db(mel).T.numpy(), origin="lower", aspect="auto", cmap="magma", vmin=-60, vmax=20
        )
        ax.set(ylabel="mel band", title=f"{name}: {len(mel)} frames")
    axes[-1].set(xlabel=f"frame ({data.HOP / data.SAMPLE_RATE * 1000:.1f} ms)")
    fig.suptitle(repr(text))
    fig.tight_layout()
    return fig


def alignment_figure(alignment: torch.Tensor, symbols: list[str], title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.imshow(alignment.T.numpy(), origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_yticks(range(len(symbols)), symbols, fontsize=6)
    ax.set(xlabel="decoder step", ylabel="phoneme", title=title)
    fig.tight_layout()
    return fig


def durations_figure(true: np.ndarray, predicted: np.ndarray) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 5))
    jitter = np.random.default_rng(0).uniform(-0.2, 0.2, (2, len(true)))
    ax.scatter(true + jitter[0], predicted + jitter[1], s=6, alpha=0.4)
    top = max(true.max(), predicted.max()) + 1
    ax.plot([0, top], [0, top], color="grey", ls="--", lw=1)
    ax.set(xlabel="eSpeak's duration (frames)", ylabel="FastSpeech's prediction (frames)")
    ax.set(title="Phoneme durations on the test strings")
    fig.tight_layout()
    return fig
