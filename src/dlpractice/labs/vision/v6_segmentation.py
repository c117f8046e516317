"""V6 · Semantic segmentation: a U-Net labels every pixel of cluttered scenes; mIoU and Dice by hand.

A small U-Net (models/unet.py) trains with fit() on generated 64x64 scenes (data/scenes.py: circles,
squares, triangles and crosses of random colours, overlapping, on textured backgrounds with clutter), or on
Oxford-IIIT Pets (background / pet / border) when it is in the data directory. Scored on the test scenes
with a pixel confusion matrix: per-class IoU, mean IoU (the lab's metric) and Dice (metrics/segmentation.py,
checked against torchmetrics in the run). The scenes segmented worst are the run's failure cases.
Simplified: one model, no augmentation, no test-time flips, no CRF post-processing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.colors import ListedColormap

from dlpractice.config import NonNegativeInt, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.images import to_model_input
from dlpractice.data.scenes import SegmentationSplits, load_pets, scene_splits
from dlpractice.metrics import segmentation as seg
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.models.unet import UNet
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, png_data_uri, ranked_image_failures
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v6", requires=("v2",), data=("scenes",), metric="test_miou", goal="max")
# background grey, then one distinct colour per class (up to 8 classes)
PALETTE = ListedColormap(
    ["#d9d9d9", "#e41a1c", "#377eb8", "#4daf4a", "#984ea3", "#ff7f00", "#a65628", "#f781bf"]
)


@dataclass
class Config(FitConfig):
    dataset: Literal["scenes", "pets"] = "scenes"
    n_train: PositiveInt = 2000  # generated scenes per split (scenes only)
    n_val: PositiveInt = 200
    n_test: PositiveInt = 300
    pets_limit: NonNegativeInt = 0  # pets: use this many images (0: all)
    side: PositiveInt = 64  # pets: resized to side x side (scenes are 64x64)
    width: PositiveInt = 12  # channels of the U-Net's first stage; each stage below doubles them
    depth: PositiveInt = 3  # poolings; the side must divide by 2**depth
    n_shown: PositiveInt = 6  # test scenes in the examples figure


PRESETS = {
    "smoke": {
        "n_train": 48,
        "n_val": 8,
        "n_test": 12,
        "width": 4,
        "depth": 2,
        "steps": 12,
        "batch_size": 8,
        "lr": 1e-2,
        "eval_every": 6,
        "log_every": 3,
        "n_shown": 3,
    },
    "quick": {"n_train": 800, "steps": 250, "batch_size": 16, "lr": 3e-3, "eval_every": 50, "log_every": 10},
    "full": {
        "n_train": 3000,
        "steps": 800,
        "batch_size": 16,
        "lr": 3e-3,
        "weight_decay": 1e-4,
        "warmup_steps": 30,
        "eval_every": 100,
        "log_every": 20,
        "restore_best": True,
    },
}


def load_data(cfg: Config, ctx: RunContext) -> SegmentationSplits:
    if cfg.dataset == "pets":
        return load_pets(ctx.data_dir, cfg.side, cfg.pets_limit, ctx.seed)
    return scene_splits(cfg.n_train, cfg.n_val, cfg.n_test, ctx.seed)


@torch.no_grad()
def predict_masks(model: torch.nn.Module, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    """(N, H, W) predicted class ids, in eval mode (BatchNorm's running statistics)."""
    model.eval()
    return torch.cat([model(x[i : i + batch])[0].argmax(1) for i in range(0, len(x), batch)]).numpy()


def torchmetrics_miou(pred: np.ndarray, target: np.ndarray, n_classes: int) -> float:
    """The reference: torchmetrics' global mean IoU over classes present, on the same predictions."""
    from torchmetrics.classification import MulticlassJaccardIndex

    per_class = MulticlassJaccardIndex(n_classes, average="none", zero_division=float("nan"))(
        torch.as_tensor(pred), torch.as_tensor(target)
    )
    return float(torch.nanmean(per_class))


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_data(cfg, ctx)
    info = data.describe() | {"dataset": cfg.dataset}
    ctx.record_data(info | {"split": f"{info['n_train']}/{info['n_val']}/{info['n_test']} images"})
    splits = {s: (torch.as_tensor(data.x[s]), torch.as_tensor(data.y[s])) for s in ("train", "val", "test")}
    torch.manual_seed(ctx.seed)
    model = UNet(len(data.classes), width=cfg.width, depth=cfg.depth)
    result = fit(model, TensorData(splits, eval_batch_size=64), cfg, ctx)
    model.to("cpu")
    pred = predict_masks(model, splits["test"][0])
    ctx.loss_figure(
        result.history, title="Loss curves (per-pixel cross-entropy)", ylabel="cross-entropy (nats)"
    )
    metrics = report(data, pred, cfg, ctx)
    ctx.save_json("serving.json", {"classes": list(data.classes), "side": int(data.x["test"].shape[-1])})
    params = sum(p.numel() for p in model.parameters())
    return metrics | {"params": float(params), "train_seconds": result.seconds}


def report(data: SegmentationSplits, pred: np.ndarray, cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Per-class table and bar chart, examples, the worst scenes (failures.json); the metrics."""
    classes, target = data.classes, data.y["test"]
    confusion = seg.confusion_matrix(pred, target, len(classes))
    iou, dice = seg.iou_per_class(confusion), seg.dice_per_class(confusion)
    rows = [
        [name, f"{iou[c]:.3f}", f"{dice[c]:.3f}", f"{confusion[c].sum() / confusion.sum():.1%}"]
        for c, name in enumerate(classes)
    ]
    ctx.section("Test scores per class", markdown_table(["class", "IoU", "Dice", "share of pixels"], rows))
    ctx.figure("iou", iou_figure(iou, classes), "IoU per class (test)")
    per_image = seg.image_mean_iou(pred, target, len(classes))
    shown = np.arange(min(cfg.n_shown, len(pred)))
    ctx.figure("examples", masks_figure(data.x["test"], target, pred, shown, per_image), "Test scenes")
    worst = np.argsort(per_image, kind="stable")[: cfg.n_shown]
    ctx.figure(
        "worst",
        masks_figure(data.x["test"], target, pred, worst, per_image),
        "The worst-segmented test scenes",
    )
    ctx.save_json(FAILURES, failure_records(data.x["test"], per_image))
    metrics = {f"iou_{name}": float(iou[c]) for c, name in enumerate(classes)}
    metrics |= {f"dice_{name}": float(dice[c]) for c, name in enumerate(classes)}
    miou = seg.mean_iou(confusion)
    reference = torchmetrics_miou(pred, target, len(classes))
    return metrics | {
        "test_miou": miou,
        "test_dice": seg.mean_dice(confusion),
        "pixel_accuracy": float(np.trace(confusion) / confusion.sum()),
        "worst_image_miou": float(per_image.min()),
        "torchmetrics_miou_diff": abs(miou - reference),
    }


def failure_records(images: np.ndarray, per_image: np.ndarray, k: int = 100) -> list[dict[str, Any]]:
    """The k test scenes with the lowest mean IoU, worst first; the IoU stands where a confidence would."""
    order = np.argsort(per_image, kind="stable")[:k]
    return ranked_image_failures(images, order, per_image, "scene", lambda i: f"mIoU {per_image[i]:.2f}")


def masks_figure(x: np.ndarray, target: np.ndarray, pred: np.ndarray, index, per_image) -> plt.Figure:
    """One column per scene: the image, the true mask and the predicted mask (with its mean IoU)."""
    fig, axes = plt.subplots(3, len(index), figsize=(1.8 * len(index), 5.6), squeeze=False)
    vmax = PALETTE.N - 1
    for col, i in enumerate(index):
        axes[0][col].imshow(x[i].transpose(1, 2, 0))
        axes[1][col].imshow(target[i], cmap=PALETTE, vmin=0, vmax=vmax, interpolation="nearest")
        axes[2][col].imshow(pred[i], cmap=PALETTE, vmin=0, vmax=vmax, interpolation="nearest")
        axes[2][col].set_title(f"mIoU {per_image[i]:.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for row, name in enumerate(("image", "true", "predicted")):
        axes[row][0].set_ylabel(name, fontsize=9)
    return fig


def iou_figure(iou: np.ndarray, classes) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.6, 3.2))
    ax.bar(classes, iou, color=[PALETTE(c) for c in range(len(classes))], edgecolor="black")
    for c, value in enumerate(iou):
        ax.text(c, value + 0.01, f"{value:.2f}", ha="center", fontsize=8)
    ax.set(ylabel="test IoU", ylim=(0, 1.08))
    ax.grid(axis="y", alpha=0.3)
    return fig


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the predicted class of every pixel of an uploaded picture, drawn in the palette, and each
    class's share of the pixels."""
    saved = read_run_json(run_dir, "serving.json")
    classes, side = saved["classes"], saved["side"]
    model = load_run_model(run_dir, UNet(len(classes), width=cfg.width, depth=cfg.depth))

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], side, 3, dark_background=False) for item in batch])
        return [mask_answer(mask, classes) for mask in predict_masks(model, x)]  # x (B, 3, S, S)

    return Predictor(predict)


def mask_answer(mask: np.ndarray, classes: list[str]) -> dict[str, Any]:
    """A (S, S) mask as an image answer: the mask in PALETTE's colours, and each class's share of pixels."""
    shares = np.bincount(mask.reshape(-1), minlength=len(classes)) / mask.size
    colours = PALETTE(mask)[..., :3]  # (S, S, 3) in [0, 1]
    return {"image": png_data_uri(colours), "values": {name: float(s) for name, s in zip(classes, shares)}}


SERVING = ServingSpec(input="image", output="image", load=serve)
