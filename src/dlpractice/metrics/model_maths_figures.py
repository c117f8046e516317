"""Lab p5's figures: training memory terms per model and optimiser, FLOPs predicted against counted, GPT
memory against sequence length, and the achieved share of the CPU's matmul peak."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

TERMS = ("weights", "grads", "optimiser", "activations")
MIB = 2**20
LABELS = {"float32": "activations, float32", "checkpointed": "activations, checkpointed blocks"}
LABELS |= {"bfloat16": "activations, bfloat16", "kv_cache": "KV cache, float32 (inference)"}


def memory_figure(memories: dict[str, dict[str, dict[str, dict[str, int]]]]) -> plt.Figure:
    """One panel per model: for each optimiser a predicted and a measured bar, stacked by term (MiB).
    `memories[model][optimiser]["predicted" | "measured"][term]` in bytes."""
    fig, axes = plt.subplots(1, len(memories), figsize=(3.2 * len(memories), 3.8), squeeze=False)
    colours = dict(zip(TERMS, plt.cm.tab10.colors, strict=False))
    for ax, (model, by_optimiser) in zip(axes[0], memories.items(), strict=True):
        labels = []
        for i, (optimiser, sides) in enumerate(by_optimiser.items()):
            for j, side in enumerate(("predicted", "measured")):
                bottom, x = 0.0, 2.5 * i + j
                for term in TERMS:
                    height = sides[side][term] / MIB
                    ax.bar(
                        x, height, bottom=bottom, color=colours[term], hatch="//" if j else None, width=0.9
                    )
                    bottom += height
            labels.append((2.5 * i + 0.5, optimiser))
        ax.set_xticks([x for x, _ in labels], [name for _, name in labels])
        ax.set(title=model, ylabel="MiB" if ax is axes[0][0] else None)
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[t]) for t in TERMS]
    handles.append(plt.Rectangle((0, 0), 1, 1, fill=False, hatch="//"))
    fig.legend(handles, [*TERMS, "measured (hatched)"], loc="lower center", ncol=5, fontsize=8)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def flops_figure(points: dict[str, dict[str, tuple[float, float]]]) -> plt.Figure:
    """Predicted FLOPs (x) against FlopCounterMode's count (y), log-log; `points[model][kind]` is
    (predicted, counted). On the diagonal the formula is exact."""
    fig, ax = plt.subplots(figsize=(5.5, 5))
    markers = {"forward": "o", "training": "s", "forward, CPU flash attention": "x"}
    values = [v for kinds in points.values() for pair in kinds.values() for v in pair if v > 0]
    span = np.array([min(values) / 2, max(values) * 2])
    ax.plot(span, span, color="grey", lw=0.8, label="counted = predicted")
    for i, (model, kinds) in enumerate(points.items()):
        for kind, (predicted, counted) in kinds.items():
            ax.scatter(predicted, counted, marker=markers[kind], color=plt.cm.tab10(i), s=40)
        ax.scatter([], [], color=plt.cm.tab10(i), label=model)
    for kind, marker in markers.items():
        ax.scatter([], [], marker=marker, color="black", label=kind)
    ax.set(xscale="log", yscale="log", xlabel="predicted FLOPs (formula)", ylabel="counted FLOPs")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def sequence_figure(seq_lens: tuple[int, ...], sweep: dict[str, dict[str, list[int]]]) -> plt.Figure:
    """MiB against sequence length: lines are the formulas, markers the measurements."""
    fig, ax = plt.subplots(figsize=(6, 4.2))
    for i, (name, sides) in enumerate(sweep.items()):
        colour = plt.cm.tab10(i)
        label = LABELS.get(name, name)
        ax.plot(seq_lens, np.array(sides["predicted"]) / MIB, color=colour, label=f"{label} (formula)")
        ax.scatter(seq_lens, np.array(sides["measured"]) / MIB, color=colour, marker="o", s=25)
    ax.scatter([], [], color="black", s=25, label="measured")
    ax.set(xscale="log", yscale="log", xlabel="sequence length T", ylabel="MiB")
    ax.set_xticks(seq_lens, [str(t) for t in seq_lens], minor=False)
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_title("saved activations (training) and KV cache (inference)", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def mfu_figure(models: list[str], achieved: list[float], peak: float) -> plt.Figure:
    """Achieved GFLOP/s of a training step per model, and the matmul peak it is a share of."""
    fig, ax = plt.subplots(figsize=(6, 3.8))
    bars = ax.bar(models, achieved, color=plt.cm.tab10(0))
    ax.axhline(peak, color="black", ls="--", lw=1, label=f"matmul peak {peak:.1f} GFLOP/s")
    for bar, value in zip(bars, achieved, strict=True):
        ax.annotate(
            f"{value / peak:.0%}", (bar.get_x() + bar.get_width() / 2, value), ha="center", va="bottom"
        )
    ax.set(ylabel="GFLOP/s (training step)", title="CPU MFU: achieved / peak, one thread")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
