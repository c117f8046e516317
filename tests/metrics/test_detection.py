"""Detection metrics by hand against the reference libraries on the same inputs: IoU, GIoU and NMS against
torchvision.ops; mAP@0.5 and mAP@[.5:.95] against pycocotools (to 1e-6), degenerate boxes dropped first."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchvision.ops as ops

from dlpractice.metrics import detection as det


def random_boxes(n: int, rng: np.random.Generator, side: float = 64.0) -> torch.Tensor:
    """(n, 4) float64 boxes with positive sides inside a side x side image."""
    corner = rng.uniform(0, side * 0.8, (n, 2))
    size = rng.uniform(1, side * 0.4, (n, 2))
    return torch.as_tensor(np.concatenate([corner, corner + size], axis=1))


def test_iou_and_giou_equal_torchvision() -> None:
    rng = np.random.default_rng(0)
    a, b = random_boxes(30, rng), random_boxes(20, rng)
    b[0] = torch.tensor([200.0, 200, 210, 210])  # far from every box: IoU 0, GIoU below 0
    assert torch.allclose(det.box_iou(a, b), ops.box_iou(a, b), atol=1e-12)
    assert torch.allclose(det.generalized_box_iou(a, b), ops.generalized_box_iou(a, b), atol=1e-12)
    assert (det.generalized_box_iou(a, b)[:, 0] < 0).all()


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.7])
def test_nms_keeps_what_torchvision_keeps(threshold: float) -> None:
    rng = np.random.default_rng(1)
    boxes = random_boxes(60, rng, side=40.0)  # crowded: many overlaps
    scores = torch.as_tensor(rng.uniform(0, 1, 60))
    assert torch.equal(det.nms(boxes, scores, threshold), ops.nms(boxes, scores, threshold))
    labels = torch.as_tensor(rng.integers(0, 3, 60))
    assert torch.equal(
        det.batched_nms(boxes, scores, labels, threshold), ops.batched_nms(boxes, scores, labels, threshold)
    )


def random_detections(rng: np.random.Generator, n_images: int, n_classes: int):
    """Truths and noisy predictions (shifted true boxes, duplicates, false alarms, some degenerate boxes)."""
    truths, preds = [], []
    for _ in range(n_images):
        k = int(rng.integers(0, 6))
        boxes = random_boxes(k, rng).numpy()
        labels = rng.integers(0, n_classes, k)
        if k and rng.uniform() < 0.3:
            boxes[0, 2] = boxes[0, 0]  # a degenerate true box: no width
        found = boxes + rng.normal(0, 2.5, boxes.shape)
        extra = random_boxes(int(rng.integers(0, 4)), rng).numpy()
        pred_boxes = np.concatenate([found, found[:1] + 1, extra])
        pred_labels = np.concatenate([labels, labels[:1], rng.integers(0, n_classes, len(extra))])
        if len(pred_boxes) and rng.uniform() < 0.3:
            pred_boxes[-1, 3] = pred_boxes[-1, 1] - 1  # a degenerate prediction: negative height
        truths.append(det.Detections(boxes, labels).without_degenerate())
        scores = rng.uniform(0, 1, len(pred_boxes))
        preds.append(det.Detections(pred_boxes, pred_labels, scores).without_degenerate())
    return preds, truths


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_map_equals_pycocotools(seed: int) -> None:
    rng = np.random.default_rng(seed)
    preds, truths = random_detections(rng, n_images=25, n_classes=4)
    coco_map, coco_map50 = det.pycocotools_map(preds, truths, 4)
    assert det.mean_average_precision(preds, truths, 4, 0.5) == pytest.approx(coco_map50, abs=1e-6)
    assert det.mean_average_precision(preds, truths, 4) == pytest.approx(coco_map, abs=1e-6)
    assert 0 < coco_map < coco_map50 < 1  # the noisy boxes are neither all right nor all wrong


def test_map_without_any_detection_is_zero_like_pycocotools() -> None:
    truths = [det.Detections(np.array([[1.0, 1, 9, 9]]), np.array([2]))]
    preds = [det.Detections(np.zeros((0, 4)), np.zeros(0, np.int64), np.zeros(0))]
    assert det.mean_average_precision(preds, truths, 3) == 0 == det.pycocotools_map(preds, truths, 3)[0]


def test_perfect_detections_score_one_and_classes_without_truth_are_left_out() -> None:
    truths = [det.Detections(np.array([[1.0, 1, 9, 9], [20, 20, 30, 28]]), np.array([0, 1]))]
    preds = [det.Detections(truths[0].boxes.copy(), np.array([0, 1]), np.array([0.9, 0.8]))]
    assert det.mean_average_precision(preds, truths, 5) == pytest.approx(1.0)
    assert det.per_image_ap50(preds, truths, 5).tolist() == pytest.approx([1.0])
    assert np.isnan(det.class_ap(preds, truths, 4))


def test_average_precision_reads_the_envelope_at_101_recall_levels() -> None:
    # two true boxes; detections: hit, miss, hit -> recall 0.5, 0.5, 1; precision 1, 0.5, 2/3
    recall, precision = np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])
    expected = (51 * 1.0 + 50 * 2 / 3) / 101  # levels 0-0.5 read 1, levels 0.51-1 read 2/3
    assert det.average_precision(recall, precision) == pytest.approx(expected)
    assert det.average_precision(np.array([0.5]), np.array([1.0])) == pytest.approx(51 / 101)


def test_targets_rows_become_detections_without_padding() -> None:
    rows = np.array([[3, 1, 2, 5, 6], [-1, -1, -1, -1, -1]], np.float32)
    truth = det.Detections.from_targets(rows)
    assert truth.labels.tolist() == [3] and truth.boxes.tolist() == [[1, 2, 5, 6]]
