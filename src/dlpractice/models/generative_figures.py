"""Figures of lab v9's generators: sample grids, a VAE latent map, interpolations, a DDPM denoising strip,
FID bars and training curves. Images are (N, 1, 28, 28) tensors in [-1, 1]."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.models.generative import DDPM, VAE, Autoencoder


def tile(x: torch.Tensor, columns: int) -> np.ndarray:
    """(N, 1, 28, 28) in [-1, 1] -> one (rows * 28, columns * 28) picture in [0, 1], row by row."""
    n = len(x) - len(x) % columns
    rows = n // columns
    pixels = ((x[:n, 0].detach().numpy() + 1) / 2).clip(0, 1)  # (n, 28, 28)
    return pixels.reshape(rows, columns, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, columns * 28)


def clean_axes(axes) -> None:
    for ax in np.ravel(axes):
        ax.set_xticks([])
        ax.set_yticks([])


def sample_grids(grids: dict[str, torch.Tensor]) -> plt.Figure:
    """One 8-column grid per model, side by side."""
    fig, axes = plt.subplots(1, len(grids), figsize=(2.6 * len(grids), 2.9), squeeze=False)
    for ax, (name, x) in zip(axes[0], grids.items()):
        ax.imshow(tile(x, 8), cmap="gray", vmin=0, vmax=1)
        ax.set_title(name, fontsize=9)
    clean_axes(axes)
    return fig


@torch.no_grad()
def latent_map(vae: VAE, x: torch.Tensor, labels: torch.Tensor, seed: int) -> plt.Figure:
    """The VAE's posterior means of test digits x, brought to 2-D by t-SNE, coloured by their class."""
    from sklearn.manifold import TSNE

    mu, _ = vae.encode(x)  # (N, Z)
    points = (
        mu.numpy() if mu.shape[1] == 2 else TSNE(2, init="pca", random_state=seed).fit_transform(mu.numpy())
    )
    fig, ax = plt.subplots(figsize=(5, 4.4))
    scatter = ax.scatter(
        points[:, 0], points[:, 1], c=labels[: len(x)].numpy(), cmap="tab10", s=6, vmin=-0.5, vmax=9.5
    )
    fig.colorbar(scatter, ax=ax, ticks=range(10), label="digit")
    ax.set_title("VAE posterior means (t-SNE)" if mu.shape[1] != 2 else "VAE posterior means", fontsize=10)
    clean_axes(ax)
    return fig


@torch.no_grad()
def interpolations(vae: VAE, ae: Autoencoder, x: torch.Tensor, pairs: int = 3, steps: int = 10) -> plt.Figure:
    """Straight lines between the codes of pairs of test digits, decoded: the VAE's pass through digits,
    the AE's can cross regions that decode to no digit."""
    weights = torch.linspace(0, 1, steps)[:, None]  # (S, 1)
    rows = []
    for i in range(pairs):
        a, b = x[2 * i : 2 * i + 1], x[2 * i + 1 : 2 * i + 2]
        for encode, decode in ((lambda v: vae.encode(v)[0], vae.decode), (ae.encoder, ae.decode)):
            za, zb = encode(a), encode(b)  # (1, Z)
            rows.append(decode((1 - weights) * za + weights * zb))  # (S, 1, 28, 28)
    fig, ax = plt.subplots(figsize=(steps * 0.6, 2 * pairs * 0.65))
    ax.imshow(tile(torch.cat(rows), steps), cmap="gray", vmin=0, vmax=1)
    ax.set_yticks([28 * r + 14 for r in range(2 * pairs)], ["VAE", "AE"] * pairs, fontsize=8)
    ax.set_xticks([])
    return fig


def denoising_strip(ddpm: DDPM, gen: torch.Generator, n: int = 4, shown: int = 10) -> plt.Figure:
    """Ancestral sampling of n digits, shown at `shown` evenly spaced steps from x_T (noise) to x_0."""
    keep = set(np.linspace(ddpm.steps, 0, shown).round().astype(int).tolist())
    frames = {t: x for t, x in ddpm.ancestral(n, gen) if t in keep}
    times = sorted(frames, reverse=True)
    strip = torch.stack([frames[t].clamp(-1, 1) for t in times], dim=1).flatten(
        0, 1
    )  # (n * shown, 1, 28, 28)
    fig, ax = plt.subplots(figsize=(len(times) * 0.7, n * 0.75))
    ax.imshow(tile(strip, len(times)), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([28 * c + 14 for c in range(len(times))], [f"t={t}" for t in times], fontsize=7)
    ax.set_yticks([])
    return fig


def fid_bars(scores: dict[str, float], steps: int) -> plt.Figure:
    """FID of each sample set against the held-out real half; the real-vs-real floor as a line."""
    names = {"ae": "AE", "vae": "VAE", "dcgan": "DCGAN", "ddpm": f"DDPM\n({steps} steps)"}
    labels = [names.get(k, f"DDIM\n{k[4:]} steps") for k in scores if k != "real"]
    values = [v for k, v in scores.items() if k != "real"]
    fig, ax = plt.subplots(figsize=(1.0 * len(values) + 1.5, 3.4))
    ax.bar(labels, values, color="#4c72b0", edgecolor="black")
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:.1f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(scores["real"], color="#c44e52", linestyle="--", label=f"real vs real {scores['real']:.2f}")
    ax.set(ylabel="FID (classifier features)")
    ax.tick_params(axis="x", labelsize=8)
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return fig


def training_curves(histories: dict[str, list[dict[str, float]]]) -> plt.Figure:
    """One panel per model: train (and val) loss for fit() models, D and G losses for the GAN."""
    titles = {"ae": "AE: MSE", "vae": "VAE: -ELBO (nats/image)", "dcgan": "DCGAN", "ddpm": "DDPM: noise MSE"}
    fig, axes = plt.subplots(1, len(histories), figsize=(3.2 * len(histories), 2.9), squeeze=False)
    for ax, (name, history) in zip(axes[0], histories.items()):
        for key in ("train_loss", "val_loss", "d_loss", "g_loss"):
            points = [(h["step"], h[key]) for h in history if key in h]
            if points:
                ax.plot(*zip(*points), label=key.replace("_loss", ""), linewidth=0.9)
        ax.set(title=titles.get(name, name), xlabel="step")
        ax.title.set_fontsize(9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig
