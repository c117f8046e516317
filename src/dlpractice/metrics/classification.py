"""How good, how sure and where wrong a classifier is: scores, calibration, error analysis, their figures.

Scores come from scikit-learn (accuracy, macro-F1, ROC-AUC, confusion matrix). Calibration is written
here: a model is calibrated when, of the predictions it makes with confidence 0.8, 80 % are right.
Predictions are put in equal-width bins by confidence (the top class's probability); the reliability
diagram plots each bin's accuracy against its mean confidence, and the expected calibration error (ECE;
Naeini et al., 2015; Guo et al., 2017) is the gap averaged over bins, weighted by how many predictions
each holds. Temperature scaling (Guo et al.) divides the logits by one number fitted on held-out data.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score


def reliability_bins(
    probs: np.ndarray, labels: np.ndarray, n_bins: int = 15
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per confidence bin: (count, mean confidence, accuracy), each (n_bins,); 0 in empty bins.

    probs: (N, K) class probabilities; labels: (N,) class ids. Bin b holds the confidences in
    (b / n_bins, (b + 1) / n_bins]; the confidence of a prediction is its largest probability.
    """
    # BEGIN EXERCISE n6.3: bin the predictions by confidence: count, mean confidence and accuracy per bin
    confidence = probs.max(1)  # (N,)
    correct = probs.argmax(1) == labels  # (N,)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)  # (N,): (lo, hi] bins
    counts = np.bincount(bins, minlength=n_bins)
    mean_confidence = np.bincount(bins, weights=confidence, minlength=n_bins) / np.maximum(counts, 1)
    accuracy = np.bincount(bins, weights=correct, minlength=n_bins) / np.maximum(counts, 1)
    # END EXERCISE
    return counts, mean_confidence, accuracy


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> float:
    """Σ_b (n_b / N) · |accuracy_b − confidence_b| over the confidence bins."""
    counts, confidence, accuracy = reliability_bins(probs, labels, n_bins)
    return float((counts * np.abs(accuracy - confidence)).sum() / counts.sum())


def scores(probs: np.ndarray, labels: np.ndarray, n_bins: int = 15) -> dict[str, float]:
    """Accuracy, macro-F1, ROC-AUC (one-vs-rest beyond two classes) and ECE of (N, K) probabilities."""
    predicted = probs.argmax(1)
    auc = roc_auc_score(labels, probs[:, 1] if probs.shape[1] == 2 else probs, multi_class="ovr")
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "macro_f1": float(f1_score(labels, predicted, average="macro")),
        "roc_auc": float(auc),
        "ece": expected_calibration_error(probs, labels, n_bins),
    }


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The T > 0 that minimises the NLL of softmax(logits / T) on held-out (N, K) logits."""

    def nll(log_t: float) -> float:
        logp = log_softmax(logits / np.exp(log_t), axis=1)
        return -float(logp[np.arange(len(labels)), labels].mean())

    return float(np.exp(minimize_scalar(nll, bounds=(-3, 3), method="bounded").x))


def calibrated(logits: np.ndarray, temperature: float) -> np.ndarray:
    return softmax(logits / temperature, axis=1)


def accuracy_by_group(correct: np.ndarray, groups: list[str]) -> dict[str, tuple[int, float]]:
    """Group name -> (examples, accuracy), the groups in sorted order."""
    names = np.array(groups)
    return {g: (int((names == g).sum()), float(correct[names == g].mean())) for g in sorted(set(groups))}


def most_confident_mistakes(
    texts: list[str], probs: np.ndarray, labels: np.ndarray, k: int
) -> list[tuple[str, int, float]]:
    """The k wrong predictions made with the highest confidence: (text, true label, confidence)."""
    wrong = np.flatnonzero(probs.argmax(1) != labels)
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:k]
    return [(texts[i], int(labels[i]), float(probs[i].max())) for i in order]


def reliability_figure(models: dict[str, tuple[np.ndarray, np.ndarray]], n_bins: int = 10) -> plt.Figure:
    """Accuracy against confidence per bin for each model {name: (probs, labels)}; the diagonal is perfect."""
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfectly calibrated")
    for name, (probs, labels) in models.items():
        counts, confidence, accuracy = reliability_bins(probs, labels, n_bins)
        filled = counts > 0
        ece = expected_calibration_error(probs, labels, n_bins)
        ax.plot(
            confidence[filled], accuracy[filled], marker="o", markersize=4, label=f"{name} (ECE {ece:.3f})"
        )
    low = 1 / max(probs.shape[1] for probs, _ in models.values())
    ax.set(xlim=(low, 1), ylim=(0, 1), xlabel="confidence (mean per bin)", ylabel="accuracy in the bin")
    ax.set_title(f"Reliability diagram, test set ({n_bins} bins)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    return fig


def confusion_figure(
    models: dict[str, tuple[np.ndarray, np.ndarray]], class_names: tuple[str, ...]
) -> plt.Figure:
    """One confusion matrix (rows: true class, columns: predicted) per model {name: (probs, labels)}."""
    many = len(class_names) > 5  # bigger panels, smaller numbers
    side = 4.6 if many else 2.7
    fig, axes = plt.subplots(1, len(models), figsize=(side * len(models), side + 0.2), squeeze=False)
    for ax, (name, (probs, labels)) in zip(axes[0], models.items()):
        matrix = confusion_matrix(labels, probs.argmax(1), labels=range(len(class_names)))
        ax.imshow(matrix, cmap="Blues")
        for (i, j), n in np.ndenumerate(matrix):
            color = "white" if n > matrix.max() / 2 else "black"
            ax.text(j, i, str(n), ha="center", va="center", color=color, fontsize=5 if many else 9)
        ax.set_xticks(range(len(class_names)), class_names, fontsize=7)
        ax.set_yticks(range(len(class_names)), class_names, fontsize=7)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("predicted", fontsize=8)
    axes[0][0].set_ylabel("true", fontsize=8)
    return fig


def group_accuracy_figure(table: dict[str, dict[str, tuple[int, float]]], title: str) -> plt.Figure:
    """Grouped bars: accuracy per group (x) for each model; table = {model: {group: (n, accuracy)}}."""
    groups = list(next(iter(table.values())))
    width = 0.8 / len(table)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for i, (model, by_group) in enumerate(table.items()):
        x = np.arange(len(groups)) + (i - (len(table) - 1) / 2) * width
        ax.bar(x, [by_group[g][1] for g in groups], width, label=model)
    counts = next(iter(table.values()))
    ax.set_xticks(range(len(groups)), [f"{g}\n(n={counts[g][0]})" for g in groups], fontsize=8)
    ax.set(ylabel="accuracy", ylim=(0.4, 1.0), title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, ncol=len(table), loc="upper center", bbox_to_anchor=(0.5, -0.22))  # off the bars
    return fig
