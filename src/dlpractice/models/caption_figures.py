"""Figures of lab v11: pictures with their captions, the GRU's attention per word, BLEU against beam size."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import torch

from dlpractice.data.captions import BOS, CaptionSplits, Vocabulary
from dlpractice.models.captioning import Captioner, caption_images


def captions_figure(data: CaptionSplits, index: list[int], written: dict[str, list[list[str]]]) -> plt.Figure:
    """One column per test picture: the picture, then each model's caption and two references below it."""
    fig, axes = plt.subplots(1, len(index), figsize=(2.6 * len(index), 4.2), squeeze=False)
    for ax, i in zip(axes[0], index):
        ax.imshow(data.images["test"][i].transpose(1, 2, 0))
        ax.set_xticks([]), ax.set_yticks([])
        lines = [f"{name}: {' '.join(caps[i]) or '(empty)'}" for name, caps in written.items()]
        lines += [f"ref: {' '.join(ref)}" for ref in data.captions["test"][i][:2]]
        text = "\n".join(textwrap.fill(line, 30) for line in lines)
        ax.set_xlabel(text, fontsize=6.5, loc="left")
    return fig


@torch.no_grad()
def attention_figure(model: Captioner, image: torch.Tensor, vocab: Vocabulary, max_len: int) -> plt.Figure:
    """The GRU decoder's greedy caption of one picture (3, S, S), and for each word (and </s>) the picture
    under the attention weights it was written with."""
    words = caption_images(model, image[None], 1, max_len)[0]
    tokens = torch.tensor([[BOS, *words]])  # (1, T): the caption fed back, as in teacher forcing
    _, weights = model.decoder(model.encoder(image[None]), tokens)  # (1, T, G): one map per word written
    grid = model.encoder.grid
    labels = [vocab.tokens[w] for w in words] + ["</s>"]
    cols = min(len(labels) + 1, 7)
    rows = -(-(len(labels) + 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(1.6 * cols, 1.8 * rows), squeeze=False)
    picture = image.numpy().transpose(1, 2, 0)
    side = picture.shape[0]
    axes[0][0].imshow(picture)
    axes[0][0].set_title("picture", fontsize=8)
    for ax, word, w in zip(axes.flat[1:], labels, weights[0]):
        ax.imshow(picture)
        ax.imshow(w.view(grid, grid).numpy(), cmap="inferno", alpha=0.6, extent=(0, side, side, 0))
        ax.set_title(word, fontsize=8)
    for ax in axes.flat:
        ax.axis("off")
    return fig


def beam_figure(
    by_beam: dict, decoders: tuple[str, ...], beams: list[int], names: dict[str, str]
) -> plt.Figure:
    """BLEU-4 (and, on generated scenes, fact accuracy) of each decoder against the beam size."""
    keys = ["bleu4"] + (["fact_accuracy"] if "fact_accuracy" in by_beam[decoders[0], beams[0]] else [])
    fig, axes = plt.subplots(1, len(keys), figsize=(4.4 * len(keys), 3.4), squeeze=False)
    for ax, key in zip(axes[0], keys):
        for name in decoders:
            ax.plot(beams, [by_beam[name, b][key] for b in beams], "o-", label=names[name])
        ax.set(xlabel="beam size", ylabel=f"test {key.replace('_', ' ')}", xticks=beams)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return fig
