"""V5 · Object detection: a YOLO-style grid detector and a DETR-style set predictor; IoU, NMS and mAP by hand.

Both detectors (models/detectors.py) train with fit(), each in a child run, on a hard generated task
(data/detection.py: 3-7 small shapes of 8 classes, overlapping and partly hidden, on cluttered textured
64x64 backgrounds), or on Penn-Fudan pedestrians or PASCAL VOC when they are in the data directory. The grid
detector's candidates go through non-maximum suppression (metrics/detection.py, by hand); the set
predictor's need none. Both are scored with COCO's mAP@0.5 (the lab's metric: the better of the two) and
mAP@[.5:.95], written by hand and checked against pycocotools in the run; images/s is the whole detection
(forward pass, decoding, NMS) on one thread. The grid detector is exported to ONNX and checked against
onnxruntime. The test images detected worst (per-image AP) are the run's failure cases.
Simplified: no augmentation, no pretrained backbone, one input size, the same small budget for both models.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Rectangle

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, UnitInterval
from dlpractice.data.batching import TensorData
from dlpractice.data.detection import DetectionSplits, load_penn_fudan, load_voc, shape_splits
from dlpractice.data.images import to_model_input
from dlpractice.metrics import detection as det
from dlpractice.models.detectors import GridDetector, SetDetector, export_onnx
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, ranked_image_failures
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v5", requires=("v2",), data=("shapes",), metric="test_map50", goal="max")
DETECTORS = ("grid", "detr")
COLOURS = plt.get_cmap("tab20").colors


@dataclass
class Config(FitConfig):
    dataset: Literal["shapes", "penn-fudan", "voc"] = "shapes"
    n_train: PositiveInt = 3000  # generated images per split (shapes only)
    n_val: PositiveInt = 200
    n_test: PositiveInt = 300
    real_limit: NonNegativeInt = 0  # penn-fudan, voc: use this many images (0: all)
    side: PositiveInt = 64  # images are side x side; a multiple of 8
    width: PositiveInt = 16  # channels of each backbone's first stage
    d_model: PositiveInt = 64  # DETR: transformer width, a multiple of 4 (the sine positions)
    layers: PositiveInt = 2  # DETR: encoder and decoder layers (each)
    queries: PositiveInt = 12  # DETR: object queries, the most objects it can find in one image
    detr_steps: PositiveInt = 1000  # DETR's own steps and learning rate (the grid uses steps and lr)
    detr_lr: PositiveFloat = 3e-4
    score_threshold: UnitInterval = 0.01  # candidates below it are dropped before NMS and mAP
    nms_iou: UnitInterval = 0.5
    serve_score: UnitInterval = 0.3  # served boxes: at least this score
    onnx: bool = True  # export the grid detector and check onnxruntime gives the same outputs
    n_shown: PositiveInt = 6


PRESETS = {
    "smoke": {
        "n_train": 32,
        "n_val": 8,
        "n_test": 10,
        "width": 4,
        "d_model": 16,
        "layers": 1,
        "steps": 6,
        "detr_steps": 6,
        "batch_size": 8,
        "lr": 3e-3,
        "eval_every": 3,
        "log_every": 2,
        "n_shown": 3,
        "onnx": False,  # the export alone takes longer than the rest; tests/models checks it
    },
    "quick": {"n_train": 800, "steps": 150, "detr_steps": 150, "batch_size": 16, "lr": 2e-3, "detr_lr": 5e-4},
    "full": {
        "n_train": 3000,
        "steps": 800,
        "detr_steps": 500,
        "batch_size": 32,
        "lr": 2e-3,
        "detr_lr": 5e-4,
        "weight_decay": 1e-4,
        "warmup_steps": 50,
        "eval_every": 100,
        "log_every": 20,
    },
}


def load_data(cfg: Config, ctx: RunContext) -> DetectionSplits:
    if cfg.dataset == "penn-fudan":
        return load_penn_fudan(ctx.data_dir, cfg.side, cfg.real_limit, ctx.seed)
    if cfg.dataset == "voc":
        return load_voc(ctx.data_dir, cfg.side, cfg.real_limit, ctx.seed)
    return shape_splits(cfg.n_train, cfg.n_val, cfg.n_test, ctx.seed, cfg.side)


def build(name: str, n_classes: int, cfg: Config) -> torch.nn.Module:
    if name == "grid":
        return GridDetector(n_classes, cfg.width)
    return SetDetector(n_classes, cfg.side, cfg.width, cfg.d_model, cfg.layers, queries=cfg.queries)


@torch.no_grad()
def detect(model: torch.nn.Module, x: torch.Tensor, cfg: Config, batch: int = 64) -> list[det.Detections]:
    """Each image's detections: every (candidate, class) above the score threshold, boxes clipped to the
    image, the best 100, and (for the grid, whose neighbouring cells see the same object) NMS per class."""
    model.eval()
    found = []
    for start in range(0, len(x), batch):
        boxes, scores = model.predict(x[start : start + batch])  # (B, K, 4), (B, K, C)
        for image_boxes, image_scores in zip(boxes.clamp(0, x.shape[-1]), scores):
            candidate, label = torch.nonzero(image_scores > cfg.score_threshold, as_tuple=True)
            score = image_scores[candidate, label]
            best = torch.argsort(score, descending=True)[: det.MAX_DETECTIONS]
            kept_boxes, kept_scores, kept_labels = image_boxes[candidate[best]], score[best], label[best]
            if isinstance(model, GridDetector):
                keep = det.batched_nms(kept_boxes, kept_scores, kept_labels, cfg.nms_iou)
                kept_boxes, kept_scores, kept_labels = kept_boxes[keep], kept_scores[keep], kept_labels[keep]
            image = det.Detections(
                kept_boxes.double().numpy(), kept_labels.numpy(), kept_scores.double().numpy()
            )
            found.append(image.without_degenerate())
    return found


def train_one(name: str, data: DetectionSplits, tensors: TensorData, cfg: Config, ctx: RunContext) -> dict:
    """Fit one detector in its own child run; its test detections, their scores and its speed."""
    torch.manual_seed(ctx.seed)
    model = build(name, len(data.classes), cfg)
    settings = cfg if name == "grid" else dataclasses.replace(cfg, steps=cfg.detr_steps, lr=cfg.detr_lr)
    started = time.process_time()  # CPU seconds of this process: on a shared machine, fairer than wall time
    result = fit(model, tensors, settings, ctx.child(name))
    cpu_seconds = time.process_time() - started
    model.to("cpu")
    x_test = tensors.splits["test"][0]
    started = time.perf_counter()
    found = detect(model, x_test, cfg)
    seconds = time.perf_counter() - started
    truths = [det.Detections.from_targets(t).without_degenerate() for t in data.targets["test"]]
    n = len(data.classes)
    coco_map, coco_map50 = det.pycocotools_map(found, truths, n)
    scores = {
        "map50": det.mean_average_precision(found, truths, n, 0.5),
        "map": det.mean_average_precision(found, truths, n),
        "images_per_s": len(x_test) / seconds,
        "params": float(sum(p.numel() for p in model.parameters())),
        "train_seconds": result.seconds,
        "train_cpu_seconds": cpu_seconds,
    }
    scores["pycocotools_diff"] = max(abs(scores["map"] - coco_map), abs(scores["map50"] - coco_map50))
    return {"model": model, "found": found, "truths": truths, "history": result.history, "scores": scores}


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_data(cfg, ctx)
    info = data.describe() | {"dataset": cfg.dataset}
    ctx.record_data(info | {"split": f"{info['n_train']}/{info['n_val']}/{info['n_test']} images"})
    splits = {s: (torch.as_tensor(data.x[s]), torch.as_tensor(data.targets[s])) for s in data.x}
    tensors = TensorData(splits, eval_batch_size=64)
    trained = {name: train_one(name, data, tensors, cfg, ctx) for name in DETECTORS}
    for name, one in trained.items():
        ctx.loss_figure(one["history"], name=f"loss-{name}", title=f"Loss curves ({name})", ylabel="loss")
    best = max(DETECTORS, key=lambda name: trained[name]["scores"]["map50"])
    metrics = {
        f"{name}_{key}": value for name, one in trained.items() for key, value in one["scores"].items()
    }
    metrics |= report(data, trained, best, cfg, ctx)
    if cfg.onnx:
        metrics |= onnx_parity(trained["grid"]["model"], splits["test"][0][:8], ctx)
    ctx.save_json("serving.json", {"classes": list(data.classes), "side": cfg.side, "detector": best})
    return metrics | {"test_map50": trained[best]["scores"]["map50"], "best_is_grid": float(best == "grid")}


def report(data: DetectionSplits, trained: dict, best: str, cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Per-class AP table, PR curves, detections drawn, the worst images (failures.json); worst image's AP."""
    rows = []
    for c, name in enumerate(data.classes):
        aps = [det.class_ap(trained[d]["found"], trained[d]["truths"], c) for d in DETECTORS]
        rows.append([name, *(f"{ap:.3f}" for ap in aps)])
    ctx.section("Test AP@0.5 per class", markdown_table(["class", *DETECTORS], rows))
    ctx.figure("pr", pr_figure(trained, data.classes), "Precision-recall curves at IoU 0.5 (test)")
    images = data.x["test"]
    shown = np.arange(min(cfg.n_shown, len(images)))
    ctx.figure("detections", detections_figure(images, trained, shown, data.classes), "Test detections")
    per_image = det.per_image_ap50(trained[best]["found"], trained[best]["truths"], len(data.classes))
    scored = np.flatnonzero(~np.isnan(per_image))
    worst = scored[np.argsort(per_image[scored], kind="stable")]
    ctx.figure(
        "worst",
        detections_figure(images, trained, worst[: cfg.n_shown], data.classes),
        f"The test images {best} detected worst",
    )
    ctx.save_json(FAILURES, failure_records(images, per_image, worst, trained[best]["found"]))
    return {"worst_image_ap50": float(per_image[worst[0]]) if len(worst) else float("nan")}


def failure_records(images, per_image, worst, found, k: int = 100) -> list[dict[str, Any]]:
    """The k test images with the lowest AP@0.5, worst first; the AP stands where a confidence would."""
    return ranked_image_failures(
        images,
        worst[:k],
        per_image,
        "image",
        lambda i: f"AP@0.5 {per_image[i]:.2f}, {len(found[i].boxes)} boxes",
    )


def draw(ax, image: np.ndarray, boxes: det.Detections, classes, min_score: float = 0.3) -> None:
    """An image with its boxes (those scoring at least min_score), each labelled and coloured by class."""
    ax.imshow(image.transpose(1, 2, 0))
    for k, (box, label) in enumerate(zip(boxes.boxes, boxes.labels)):
        score = None if boxes.scores is None else boxes.scores[k]
        if score is not None and score < min_score:
            continue
        colour = COLOURS[int(label) % len(COLOURS)]
        # imshow puts pixel centres on integers, so a box's pixel edges sit half a pixel before them
        ax.add_patch(
            Rectangle(
                (box[0] - 0.5, box[1] - 0.5), box[2] - box[0], box[3] - box[1], fill=False, ec=colour, lw=1
            )
        )
        text = classes[int(label)] + ("" if score is None else f" {score:.2f}")
        ax.text(box[0] - 0.5, box[1] - 1, text, color=colour, fontsize=5, va="bottom")
    ax.set_xticks([])
    ax.set_yticks([])


def detections_figure(images: np.ndarray, trained: dict, index, classes) -> plt.Figure:
    """One column per image: the true boxes, then each detector's (score >= 0.3)."""
    rows = ["true", *DETECTORS]
    fig, axes = plt.subplots(
        len(rows), len(index), figsize=(2.2 * len(index), 2.3 * len(rows)), squeeze=False
    )
    for col, i in enumerate(index):
        truth = trained[DETECTORS[0]]["truths"][i]
        for row, name in enumerate(rows):
            draw(axes[row][col], images[i], truth if name == "true" else trained[name]["found"][i], classes)
    for row, name in enumerate(rows):
        axes[row][0].set_ylabel(name, fontsize=9)
    return fig


def pr_figure(trained: dict, classes) -> plt.Figure:
    """Each detector's precision-recall curve per class (the envelope AP reads), at IoU 0.5."""
    fig, axes = plt.subplots(1, len(trained), figsize=(5.2 * len(trained), 4), squeeze=False)
    for ax, (name, one) in zip(axes[0], trained.items()):
        for c, cls in enumerate(classes):
            curve = det.class_curve(one["found"], one["truths"], c, 0.5)
            if curve is None:
                continue
            recall, precision = curve
            envelope = np.maximum.accumulate(precision[::-1])[::-1]
            ax.plot(
                recall,
                envelope,
                color=COLOURS[c % len(COLOURS)],
                label=f"{cls} {det.average_precision(*curve):.2f}",
            )
        ax.set(
            title=f"{name}: mAP@0.5 {one['scores']['map50']:.3f}",
            xlabel="recall",
            ylabel="precision",
            xlim=(0, 1),
            ylim=(0, 1.02),
        )
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6, loc="lower left")
    return fig


def onnx_parity(model: GridDetector, x: torch.Tensor, ctx: RunContext) -> dict[str, float]:
    """Export the grid detector to ONNX and run it with onnxruntime: the largest output difference."""
    if importlib.util.find_spec("onnxscript") is None or importlib.util.find_spec("onnxruntime") is None:
        ctx.section(
            "ONNX",
            "Skipped: `pip install onnx onnxscript onnxruntime` to export and check the grid detector.",
        )
        return {}
    import onnxruntime

    path = export_onnx(model, ctx.run_dir / "grid" / "detector.onnx", x.shape[-1])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    boxes, scores = session.run(None, {"images": x.numpy()})
    with torch.no_grad():
        ref_boxes, ref_scores = model.predict(x)
    diff = max(np.abs(boxes - ref_boxes.numpy()).max(), np.abs(scores - ref_scores.numpy()).max())
    return {"onnx_max_abs_diff": float(diff)}


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the run's better detector; boxes in the uploaded picture's own pixels."""
    saved = read_run_json(run_dir, "serving.json")
    classes, side, name = saved["classes"], saved["side"], saved["detector"]
    model = load_run_model(
        Path(run_dir) / name, build(name, len(classes), dataclasses.replace(cfg, side=side))
    )

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], side, 3, dark_background=False) for item in batch])
        found = detect(model, x, cfg)  # x (B, 3, S, S)
        return [
            boxes_answer(f, item["image"].shape, side, classes, cfg.serve_score)
            for f, item in zip(found, batch)
        ]

    return Predictor(predict)


def boxes_answer(
    found: det.Detections, shape: tuple[int, ...], side: int, classes, min_score: float
) -> dict[str, Any]:
    """Detections on the model's side x side input -> boxes in the original (H, W) picture's pixels."""
    scale = np.array([shape[1], shape[0], shape[1], shape[0]]) / side
    return {
        "boxes": [
            {
                "label": classes[int(label)],
                "score": round(float(score), 4),
                "box": [round(float(v), 1) for v in box * scale],
            }
            for box, label, score in zip(found.boxes, found.labels, found.scores)
            if score >= min_score
        ]
    }


SERVING = ServingSpec(input="image", output="boxes", load=serve)
