"""Detection scores by hand: box IoU and GIoU, non-maximum suppression, and COCO's mAP.

Boxes are (x0, y0, x1, y1) in pixels, x1 > x0 and y1 > y0 (a box with no width or height is degenerate:
`Detections.without_degenerate` removes it from truth and detections before anything is scored, here and
when the tests hand the same boxes to pycocotools). IoU, GIoU and NMS are checked against
`torchvision.ops`; mAP against `pycocotools` on the same detections, to 1e-6.

mAP follows COCO (Lin et al., 2014) exactly: per image and class, detections by falling score (at most 100)
are matched greedily to the unmatched true box of highest IoU at or above the threshold; over the whole
split a class's matches give a precision-recall curve; precision is made non-increasing from the right and
read at 101 recall levels 0, 0.01, ..., 1 (0 past the highest recall reached); AP is their mean, mAP the
mean over classes with at least one true box. mAP@0.5 uses IoU 0.5; mAP@[.5:.95] averages ten thresholds
0.5, 0.55, ..., 0.95, so it rewards tight boxes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)  # COCO's; the same floats pycocotools uses
RECALL_LEVELS = np.linspace(0.0, 1.0, 101)
MAX_DETECTIONS = 100  # per image and class, as COCO's maxDets=100


def box_area(boxes: torch.Tensor) -> torch.Tensor:
    """(N, 4) -> (N,) areas; 0 for a degenerate box, never negative."""
    return (boxes[:, 2] - boxes[:, 0]).clamp(min=0) * (boxes[:, 3] - boxes[:, 1]).clamp(min=0)


def box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU of (N, 4) and (M, 4) boxes -> (N, M): intersection area over union area."""
    # BEGIN EXERCISE v5.1: pairwise IoU: the intersection rectangle of every pair, over the union's area
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])  # (N, M, 2)
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])  # (N, M, 2)
    sides = (bottom_right - top_left).clamp(min=0)  # no overlap: a side below 0 means an empty rectangle
    inter = sides[..., 0] * sides[..., 1]
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return inter / union
    # END EXERCISE


def generalized_box_iou(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pairwise GIoU (Rezatofighi et al., 2019) -> (N, M): IoU minus the share of the smallest enclosing
    box that the union leaves empty. In [-1, 1]; unlike IoU it still has a gradient for boxes that do not
    touch, which is why DETR's loss uses it."""
    top_left = torch.maximum(a[:, None, :2], b[None, :, :2])
    bottom_right = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    sides = (bottom_right - top_left).clamp(min=0)
    inter = sides[..., 0] * sides[..., 1]  # (N, M)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    hull = (
        torch.maximum(a[:, None, 2:], b[None, :, 2:]) - torch.minimum(a[:, None, :2], b[None, :, :2])
    ).clamp(min=0)
    hull_area = hull[..., 0] * hull[..., 1]
    return inter / union - (hull_area - union) / hull_area


def nms(boxes: torch.Tensor, scores: torch.Tensor, iou_threshold: float) -> torch.Tensor:
    """Greedy non-maximum suppression: the indices of the boxes kept, highest score first. A box is dropped
    when its IoU with a box already kept is above `iou_threshold` (as torchvision.ops.nms)."""
    # BEGIN EXERCISE v5.2: greedy NMS: keep the best box, drop the boxes overlapping it too much; repeat
    order = torch.argsort(scores, descending=True, stable=True)
    overlaps = box_iou(boxes[order], boxes[order])  # (N, N) in score order
    suppressed = torch.zeros(len(order), dtype=torch.bool)
    keep = []
    for i in range(len(order)):
        if suppressed[i]:
            continue
        keep.append(int(order[i]))
        suppressed |= overlaps[i] > iou_threshold
    return torch.tensor(keep, dtype=torch.long)
    # END EXERCISE


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou_threshold: float):
    """NMS within each class only: boxes of different classes are moved apart so that they never overlap."""
    if len(boxes) == 0:
        return torch.zeros(0, dtype=torch.long)
    offsets = labels.to(boxes.dtype)[:, None] * (boxes.max() + 1)  # (N, 1): classes never overlap
    return nms(boxes + offsets, scores, iou_threshold)


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """AP of one precision-recall curve, as COCO computes it: `recall` and `precision` after each
    detection in falling score order (recall never decreasing). Precision is made non-increasing from the
    right (the best precision at this recall or any higher one), then read at RECALL_LEVELS: at each level,
    the first point whose recall reaches it, or 0 past the highest recall. AP is the mean of the readings."""
    # BEGIN EXERCISE v5.3: AP from a PR curve: precision's envelope from the right, read at 101 recall levels
    envelope = np.maximum.accumulate(np.asarray(precision, dtype=np.float64)[::-1])[::-1]
    first = np.searchsorted(recall, RECALL_LEVELS, side="left")  # first point with recall >= level
    readings = np.zeros(len(RECALL_LEVELS))
    reached = first < len(envelope)
    readings[reached] = envelope[first[reached]]
    return float(readings.mean())
    # END EXERCISE


@dataclass
class Detections:
    """One image's boxes: (N, 4) pixels, (N,) class ids and, for predictions, (N,) scores."""

    boxes: np.ndarray
    labels: np.ndarray
    scores: np.ndarray | None = None

    @classmethod
    def from_targets(cls, rows: np.ndarray) -> Detections:
        """An image's true boxes from its (M, 5) target rows (class, x0, y0, x1, y1), class -1 = padding."""
        rows = np.asarray(rows)
        real = rows[rows[:, 0] >= 0]
        return cls(real[:, 1:5].astype(np.float64), real[:, 0].astype(np.int64))

    def without_degenerate(self) -> Detections:
        """The same image without boxes of zero or negative width or height: scored by no one."""
        proper = (self.boxes[:, 2] > self.boxes[:, 0]) & (self.boxes[:, 3] > self.boxes[:, 1])
        scores = None if self.scores is None else self.scores[proper]
        return Detections(self.boxes[proper], self.labels[proper], scores)


def match_image(
    pred: Detections, truth: Detections, label: int, threshold: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """One image and class: scores of its detections (falling, at most MAX_DETECTIONS), whether each
    matched a true box at IoU >= threshold, and how many true boxes there were."""
    mine = pred.labels == label
    order = np.argsort(-pred.scores[mine], kind="mergesort")[:MAX_DETECTIONS]
    boxes, scores = pred.boxes[mine][order], pred.scores[mine][order]
    true_boxes = truth.boxes[truth.labels == label]
    matched = np.zeros(len(boxes), dtype=bool)
    if len(boxes) and len(true_boxes):
        iou = box_iou(
            torch.as_tensor(boxes, dtype=torch.float64), torch.as_tensor(true_boxes, dtype=torch.float64)
        )
        taken = np.zeros(len(true_boxes), dtype=bool)
        for d, row in enumerate(iou.numpy()):
            # the highest IoU at or above the threshold among untaken true boxes; a later box wins a tie
            best, best_iou = -1, min(threshold, 1 - 1e-10)
            for g in np.flatnonzero(~taken):
                if row[g] >= best_iou:
                    best, best_iou = g, row[g]
            if best >= 0:
                taken[best] = matched[d] = True
    return scores, matched, len(true_boxes)


def class_curve(
    preds: list[Detections], truths: list[Detections], label: int, threshold: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """Recall and precision after each detection of `label` over all images, in falling score order
    (None when the class has no true box: it has no AP)."""
    per_image = [match_image(p, t, label, threshold) for p, t in zip(preds, truths)]
    n_true = sum(n for _, _, n in per_image)
    if n_true == 0:
        return None
    scores = np.concatenate([s for s, _, _ in per_image])
    matched = np.concatenate([m for _, m, _ in per_image])[np.argsort(-scores, kind="mergesort")]
    tp, fp = np.cumsum(matched), np.cumsum(~matched)
    return tp / n_true, tp / (tp + fp + np.spacing(1))


def mean_average_precision(
    preds: list[Detections], truths: list[Detections], n_classes: int, thresholds=IOU_THRESHOLDS
) -> float:
    """Mean over IoU thresholds and over classes with a true box of AP (NaN if no class has one)."""
    aps = [
        [
            average_precision(*curve)
            for label in range(n_classes)
            if (curve := class_curve(preds, truths, label, t))
        ]
        for t in np.atleast_1d(thresholds)
    ]
    return float(np.mean(aps)) if aps and aps[0] else float("nan")


def class_ap(preds: list[Detections], truths: list[Detections], label: int, threshold: float = 0.5) -> float:
    """AP of one class over all images at one IoU threshold (NaN when the class has no true box)."""
    curve = class_curve(preds, truths, label, threshold)
    return float("nan") if curve is None else average_precision(*curve)


def per_image_ap50(preds: list[Detections], truths: list[Detections], n_classes: int) -> np.ndarray:
    """(N,) mAP@0.5 of each image on its own: how well each was detected (NaN if it has no true box)."""
    return np.array([mean_average_precision([p], [t], n_classes, 0.5) for p, t in zip(preds, truths)])


def pycocotools_map(preds: list[Detections], truths: list[Detections], n_classes: int) -> tuple[float, float]:
    """The reference: pycocotools' (mAP@[.5:.95], mAP@0.5) on the same boxes, given in COCO's own form
    (x, y, width, height); image ids are list positions, category ids the class ids."""
    import contextlib
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    def records(images: list[Detections], with_scores: bool) -> list[dict]:
        found = []
        for i, image in enumerate(images):
            for k, (box, label) in enumerate(zip(image.boxes, image.labels)):
                x0, y0, x1, y1 = (float(v) for v in box)
                record = {"image_id": i, "category_id": int(label), "bbox": [x0, y0, x1 - x0, y1 - y0]}
                if with_scores:
                    record["score"] = float(image.scores[k])
                else:
                    record |= {"id": len(found) + 1, "area": (x1 - x0) * (y1 - y0), "iscrowd": 0}
                found.append(record)
        return found

    def dataset(annotations: list[dict]) -> COCO:
        coco = COCO()
        coco.dataset = {
            "images": [{"id": i} for i in range(len(truths))],
            "categories": [{"id": c} for c in range(n_classes)],
            "annotations": annotations,
        }
        coco.createIndex()
        return coco

    found = records(preds, with_scores=True)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        truth = dataset(records(truths, with_scores=False))
        detections = truth.loadRes(found) if found else dataset([])  # loadRes fails on an empty list
        evaluation = COCOeval(truth, detections, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return float(evaluation.stats[0]), float(evaluation.stats[1])
