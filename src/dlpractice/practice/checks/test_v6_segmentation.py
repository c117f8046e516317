"""Checks of lab v6: Dice per class from a pixel confusion matrix."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.exercise("v6.1")
def test_dice_per_class_from_the_confusion_matrix(impl) -> None:
    """Dice = 2 TP / (2 TP + FP + FN) per class; rows are true classes, columns predicted; NaN if absent."""
    confusion = np.array([[50, 5, 0, 0], [10, 30, 0, 0], [0, 5, 0, 0], [0, 0, 0, 0]])
    dice = np.asarray(impl.dice_per_class(confusion), dtype=float)
    assert dice.shape == (4,), f"one Dice per class: expected shape (4,), got {dice.shape}"
    # class 0: TP 50, FP 10 (column), FN 5 (row); class 1: TP 30, FP 10, FN 10; class 2: TP 0, FN 5
    expected = [100 / 115, 60 / 80, 0.0]
    assert np.allclose(dice[:3], expected), (
        f"expected Dice {np.round(expected, 4).tolist()} for classes 0-2, "
        f"got {np.round(dice[:3], 4).tolist()}: "
        "FP is the column minus TP, FN the row minus TP, and TP counts twice in numerator and denominator"
    )
    assert np.isnan(dice[3]), (
        "class 3 is neither true nor predicted anywhere: its Dice should be NaN (no score), not 0 or 1"
    )
    rng = np.random.default_rng(0)
    random = rng.integers(0, 50, (5, 5))
    tp = np.diag(random)
    iou = tp / (random.sum(0) + random.sum(1) - tp)
    assert np.allclose(impl.dice_per_class(random), 2 * iou / (1 + iou)), (
        "on a 5x5 confusion matrix Dice should equal 2 IoU / (1 + IoU) for every class"
    )
