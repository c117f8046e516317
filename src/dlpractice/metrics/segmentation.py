"""Segmentation scores from a confusion matrix: per-class IoU (Jaccard), mean IoU and Dice (F1).

Everything counts pixels over the whole split (global aggregation, as torchmetrics' MulticlassJaccardIndex
does): confusion[t, p] is the number of pixels of true class t predicted as p. For class c,
TP = confusion[c, c], FP = column c minus TP, FN = row c minus TP;
IoU = TP / (TP + FP + FN) and Dice = 2 TP / (2 TP + FP + FN) = 2 IoU / (1 + IoU).
A class that appears in neither the truth nor the prediction has no score (NaN) and is left out of means.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """(C, C) int64 pixel counts, rows true class, columns predicted; any matching shapes of ids."""
    index = target.reshape(-1).astype(np.int64) * n_classes + pred.reshape(-1).astype(np.int64)
    return np.bincount(index, minlength=n_classes * n_classes).reshape(n_classes, n_classes)


def iou_per_class(confusion: np.ndarray) -> np.ndarray:
    """(C,) IoU of each class; NaN where the class is neither true nor predicted anywhere."""
    tp = np.diag(confusion).astype(np.float64)
    union = confusion.sum(0) + confusion.sum(1) - tp  # TP + FP + FN
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, tp / union, np.nan)


def dice_per_class(confusion: np.ndarray) -> np.ndarray:
    """(C,) Dice of each class; NaN where the class is neither true nor predicted anywhere."""
    # BEGIN EXERCISE v6.1: Dice per class from the confusion matrix: 2 TP / (2 TP + FP + FN), NaN if absent
    tp = np.diag(confusion).astype(np.float64)
    fp = confusion.sum(0) - tp  # predicted as c, truly something else
    fn = confusion.sum(1) - tp  # truly c, predicted as something else
    denominator = 2 * tp + fp + fn
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, 2 * tp / denominator, np.nan)
    # END EXERCISE


def mean_iou(confusion: np.ndarray) -> float:
    """Mean IoU over the classes that occur (in the truth or the prediction)."""
    return float(np.nanmean(iou_per_class(confusion)))


def mean_dice(confusion: np.ndarray) -> float:
    return float(np.nanmean(dice_per_class(confusion)))


def image_mean_iou(pred: np.ndarray, target: np.ndarray, n_classes: int) -> np.ndarray:
    """(N,) mean IoU of each image on its own: how well each scene was segmented."""
    return np.array([mean_iou(confusion_matrix(p, t, n_classes)) for p, t in zip(pred, target)])
