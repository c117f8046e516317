"""mIoU and Dice from a confusion matrix (metrics/segmentation.py) against torchmetrics on the same masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.classification import MulticlassF1Score, MulticlassJaccardIndex
from torchmetrics.segmentation import DiceScore

from dlpractice.metrics import segmentation as seg

C = 5


def noisy_masks(seed: int, absent: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(8, 16, 16) true masks and predictions that are right about 70 % of the time."""
    rng = np.random.default_rng(seed)
    target = rng.integers(0, C, (8, 16, 16))
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, C, target.shape))
    if absent is not None:  # a class neither true nor predicted anywhere
        target[target == absent] = 0
        pred[pred == absent] = 0
    return pred, target


def test_confusion_matrix_counts_every_pixel_by_true_row_and_predicted_column() -> None:
    pred, target = noisy_masks(0)
    confusion = seg.confusion_matrix(pred, target, C)
    assert confusion.sum() == target.size
    assert confusion[2, 3] == np.sum((target == 2) & (pred == 3))
    assert np.array_equal(confusion.sum(1), np.bincount(target.reshape(-1), minlength=C))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_iou_matches_torchmetrics_jaccard(seed: int) -> None:
    pred, target = noisy_masks(seed)
    confusion = seg.confusion_matrix(pred, target, C)
    reference = MulticlassJaccardIndex(C, average="none")(torch.as_tensor(pred), torch.as_tensor(target))
    np.testing.assert_allclose(seg.iou_per_class(confusion), reference.double().numpy(), atol=1e-6)
    macro = MulticlassJaccardIndex(C, average="macro")(torch.as_tensor(pred), torch.as_tensor(target))
    assert seg.mean_iou(confusion) == pytest.approx(float(macro), abs=1e-6)


@pytest.mark.parametrize("seed", [0, 1])
def test_dice_matches_torchmetrics_dice_and_f1(seed: int) -> None:
    pred, target = noisy_masks(seed)
    confusion = seg.confusion_matrix(pred, target, C)
    ours = seg.dice_per_class(confusion)
    dice = DiceScore(C, average="none", input_format="index", aggregation_level="global")
    np.testing.assert_allclose(ours, dice(torch.as_tensor(pred), torch.as_tensor(target)).numpy(), atol=1e-6)
    f1 = MulticlassF1Score(C, average="none")(torch.as_tensor(pred), torch.as_tensor(target))
    np.testing.assert_allclose(ours, f1.numpy(), atol=1e-6)  # Dice is the F1 score of each class's pixels
    iou = seg.iou_per_class(confusion)
    np.testing.assert_allclose(ours, 2 * iou / (1 + iou), atol=1e-12)


def test_an_absent_class_has_no_score_and_is_left_out_of_the_means() -> None:
    pred, target = noisy_masks(3, absent=4)
    confusion = seg.confusion_matrix(pred, target, C)
    assert np.isnan(seg.iou_per_class(confusion)[4]) and np.isnan(seg.dice_per_class(confusion)[4])
    reference = MulticlassJaccardIndex(C, average="none", zero_division=float("nan"))(
        torch.as_tensor(pred), torch.as_tensor(target)
    )
    assert seg.mean_iou(confusion) == pytest.approx(float(torch.nanmean(reference)), abs=1e-6)
    assert seg.mean_dice(confusion) == pytest.approx(float(np.mean(seg.dice_per_class(confusion)[:4])))


def test_image_mean_iou_is_one_for_a_perfect_mask_and_lower_for_a_wrong_one() -> None:
    pred, target = noisy_masks(4)
    perfect = seg.image_mean_iou(target, target, C)
    assert np.array_equal(perfect, np.ones(len(target)))
    scores = seg.image_mean_iou(pred, target, C)
    assert scores.shape == (8,) and np.all(scores < 1)
    assert scores[0] == pytest.approx(seg.mean_iou(seg.confusion_matrix(pred[0], target[0], C)))
