"""Lab p3's report: the size / latency / accuracy table of the compressed variants and its figures
(accuracy against sparsity, the size-latency-accuracy scatter, a layer's weights before and after int8)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.report import markdown_table


def table(rows: dict[str, dict], latency_batch: int) -> str:
    """Markdown: each variant's accuracy, file bytes (raw, gzipped) and latencies with the speed-up."""
    base = rows["fp32"]
    header = [
        "variant",
        "accuracy",
        "file bytes",
        "gzipped",
        "ms (batch 1)",
        f"ms (batch {latency_batch})",
    ]
    lines = [
        [
            name,
            f"{row['accuracy']:.2%}",
            f"{row['bytes']:,}",
            f"{row['gzip_bytes']:,}",
            f"{row['ms_batch_1']:.3f} ({base['ms_batch_1'] / row['ms_batch_1']:.1f}x)",
            f"{row['ms_batch_n']:.2f} ({base['ms_batch_n'] / row['ms_batch_n']:.1f}x)",
        ]
        for name, row in rows.items()
    ]
    return markdown_table(header, lines) + "\n\n(x: speed-up over fp32; one thread, median of many calls)"


def sparsity_figure(curve: dict[float, float], rows: dict[str, dict], tuned: Sequence[float]) -> plt.Figure:
    """Test accuracy against the share of weights pruned: one-shot, and fine-tuned with the mask held."""
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    ax.plot([100 * s for s in curve], list(curve.values()), marker="o", label="pruned, no fine-tune")
    accuracy = [rows[f"pruned-{round(100 * s)}-ft"]["accuracy"] for s in tuned]
    ax.plot([100 * s for s in tuned], accuracy, marker="s", label="pruned + fine-tuned (mask held)")
    ax.axhline(rows["fp32"]["accuracy"], color="grey", ls="--", label="fp32 teacher")
    ax.set(xlabel="weights set to zero (%, global L1)", ylabel="test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def tradeoff_figure(rows: dict[str, dict]) -> plt.Figure:
    """Each variant at (file size, batch-1 latency), coloured by its test accuracy."""
    fig, ax = plt.subplots(figsize=(7.2, 4.4))
    sizes = [row["bytes"] / 1024 for row in rows.values()]
    latency = [row["ms_batch_1"] for row in rows.values()]
    dots = ax.scatter(sizes, latency, c=[row["accuracy"] for row in rows.values()], cmap="viridis", s=40)
    for name, x, y in zip(rows, sizes, latency):
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    fig.colorbar(dots, label="test accuracy")
    ax.set(xscale="log", xlabel="file size (KiB, log)", ylabel="latency, batch 1 (ms)")
    ax.grid(alpha=0.3)
    return fig


def histogram_figure(weight: torch.Tensor, codes: torch.Tensor) -> plt.Figure:
    """One layer's fp32 weights, and the int8 codes static quantisation stored for them."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.4))
    left.hist(weight.detach().flatten().numpy(), bins=200, color="tab:blue")
    left.set(title="fp32 weights (head's first Linear)", xlabel="value", ylabel="count", yscale="log")
    right.hist(codes.flatten().numpy(), bins=np.arange(-128.5, 128.5), color="tab:orange")
    right.set(title="static int8 codes (a scale per output unit)", xlabel="int8 code", yscale="log")
    return fig
