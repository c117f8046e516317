"""Checks of lab v5: box IoU, non-maximum suppression and AP from a precision-recall curve."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def boxes(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64)


@pytest.mark.exercise("v5.1")
def test_box_iou_of_every_pair(impl) -> None:
    """IoU = intersection area / union area for every pair of (x0, y0, x1, y1) boxes."""
    a = boxes([[0, 0, 10, 10], [5, 5, 15, 25]])
    b = boxes([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30], [2, 2, 4, 4]])
    iou = torch.as_tensor(impl.box_iou(a, b))
    assert iou.shape == (2, 4), f"one IoU per pair: expected shape (2, 4), got {tuple(iou.shape)}"
    # a0 with b1: overlap 5 x 10 = 50, union 100 + 100 - 50; a1 (10 x 20) with b1: overlap 10 x 5 = 50
    expected = [[1.0, 50 / 150, 0.0, 4 / 100], [25 / 275, 50 / 250, 0.0, 0.0]]
    assert torch.allclose(iou, boxes(expected)), (
        f"expected {np.round(expected, 4).tolist()}, got {np.round(iou.numpy(), 4).tolist()}: the "
        "intersection is the rectangle between the larger top-left and the smaller bottom-right corners, "
        "empty (0, not negative) when they do not overlap, and the union is both areas minus it"
    )
    from torchvision.ops import box_iou

    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 50, (20, 2))
    random = boxes(np.concatenate([corner, corner + rng.uniform(1, 30, (20, 2))], axis=1))
    assert torch.allclose(torch.as_tensor(impl.box_iou(random, random[:7])), box_iou(random, random[:7])), (
        "on 20 x 7 random boxes the IoU should equal torchvision.ops.box_iou"
    )


@pytest.mark.exercise("v5.2")
def test_nms_keeps_the_best_box_of_each_overlapping_group(impl) -> None:
    """Greedy NMS: indices of the boxes kept, highest score first; a box overlapping a kept one by IoU
    above the threshold is dropped."""
    b = boxes([[0, 0, 10, 10], [1, 0, 11, 10], [20, 20, 30, 30], [0, 1, 10, 11], [21, 21, 31, 31]])
    scores = torch.tensor([0.9, 0.95, 0.5, 0.3, 0.6], dtype=torch.float64)
    kept = torch.as_tensor(impl.nms(b, scores, 0.5)).tolist()
    assert kept == [1, 4], (
        f"expected [1, 4] (box 1 beats 0 and 3, box 4 beats 2, best first), got {kept}: sort by score, "
        "keep the best remaining box, drop every box whose IoU with it is above the threshold, repeat"
    )
    # at 0.7, box 3 overlaps box 1 by IoU 81/119 = 0.68 only; it overlaps box 0 by 0.82, but box 0 is gone
    kept = torch.as_tensor(impl.nms(b, scores, 0.7)).tolist()
    assert kept == [1, 4, 2, 3], (
        f"at threshold 0.7 expected [1, 4, 2, 3], got {kept}: boxes 2 and 3 overlap the kept boxes 4 and 1 "
        "by 0.68 only, and a box already suppressed (box 0) suppresses nothing"
    )
    from torchvision.ops import nms

    rng = np.random.default_rng(1)
    corner = rng.uniform(0, 30, (40, 2))
    random = boxes(np.concatenate([corner, corner + rng.uniform(2, 15, (40, 2))], axis=1))
    random_scores = torch.as_tensor(rng.uniform(0, 1, 40))
    assert torch.equal(
        torch.as_tensor(impl.nms(random, random_scores, 0.4)), nms(random, random_scores, 0.4)
    ), "on 40 crowded random boxes the kept indices should equal torchvision.ops.nms, in the same order"


@pytest.mark.exercise("v5.3")
def test_average_precision_from_a_precision_recall_curve(impl) -> None:
    """COCO's AP: precision made non-increasing from the right, read at recall 0, 0.01, ..., 1 (0 past the
    highest recall), averaged."""
    # four true boxes; detections by falling score: hit, miss, hit, hit, miss
    recall = np.array([0.25, 0.25, 0.5, 0.75, 0.75])
    precision = np.array([1.0, 0.5, 2 / 3, 3 / 4, 3 / 5])
    # envelope: 1 up to recall 0.25 (26 levels), then 0.75 up to 0.75 (50 levels), then 0 (25 levels)
    expected = (26 * 1.0 + 50 * 0.75) / 101
    ap = float(impl.average_precision(recall, precision))
    assert ap == pytest.approx(expected), (
        f"expected {expected:.4f}, got {ap:.4f}: take the best precision at this recall or any higher one, "
        "read it at 101 recall levels 0, 0.01, ..., 1 (at each level the first point whose recall reaches "
        "it; 0 past the highest recall) and average the 101 readings"
    )
    perfect = float(impl.average_precision(np.array([0.5, 1.0]), np.array([1.0, 1.0])))
    assert perfect == pytest.approx(1.0), f"every detection right and every box found: AP 1, got {perfect}"
