"""F4 · Loss functions: what each one is robust to, and what it pays attention to.

Regression: a line y = 2x + 1 with Gaussian noise, then a fraction of the points pushed far up
(outliers). A linear model is fitted by gradient descent with MSE, MAE and Huber loss: MSE's square
lets the outliers drag the line, MAE and Huber (quadratic near zero, linear beyond delta) barely move.
Classification: two Gaussian classes at 19:1 imbalance; a small MLP is trained with cross-entropy
(two logits), binary cross-entropy (one logit), hinge and focal loss (Lin et al., 2017; gamma down-weights
the easy majority examples). Decision boundaries are drawn; the table gives balanced accuracy and the
minority class's recall on a test set with the same imbalance. Simplified: generated 2-D data only,
full-batch Adam, no class weights or resampling (the other cure for imbalance).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.config import FiniteFloat, NonNegativeFloat, PositiveFloat, PositiveInt, UnitInterval
from dlpractice.registry import lab

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f4", requires=("f1",), data=("generated",), metric="huber_slope_error")


@dataclass
class Config:
    n_points: PositiveInt = 100  # regression points
    outlier_fraction: UnitInterval = 0.15
    outlier_shift: FiniteFloat = 15.0  # added to y of the outliers
    huber_delta: PositiveFloat = 1.0
    regression_steps: PositiveInt = 800
    n_majority: PositiveInt = 1900  # classification, train set; the test set is generated the same way
    n_minority: PositiveInt = 100
    focal_gamma: NonNegativeFloat = 2.0
    classification_steps: PositiveInt = 600
    hidden: PositiveInt = 32
    lr: PositiveFloat = 0.05


PRESETS = {
    "smoke": {"regression_steps": 200, "classification_steps": 100, "n_majority": 380, "n_minority": 20},
    "quick": {},
    "full": {"regression_steps": 2000, "classification_steps": 2000},
}

TRUE_SLOPE, TRUE_INTERCEPT = 2.0, 1.0


def huber(pred: torch.Tensor, target: torch.Tensor, delta: float = 1.0) -> torch.Tensor:
    """Mean Huber loss: r^2 / 2 for |r| <= delta, delta * (|r| - delta / 2) beyond (F.huber_loss)."""
    # BEGIN EXERCISE f4.1: quadratic near zero, linear in the tails, continuous slope at |r| = delta
    r = (pred - target).abs()
    return torch.where(r <= delta, 0.5 * r**2, delta * (r - 0.5 * delta)).mean()
    # END EXERCISE


def focal(logit: torch.Tensor, target: torch.Tensor, gamma: float = 2.0) -> torch.Tensor:
    """Binary focal loss, mean over the batch: -(1 - p_t)^gamma * log(p_t), p_t = P(true class)."""
    # BEGIN EXERCISE f4.2: scale the per-example BCE by (1 - p_t)^gamma (gamma = 0 gives plain BCE)
    bce = F.binary_cross_entropy_with_logits(logit, target, reduction="none")  # = -log(p_t)
    p_t = torch.exp(-bce)
    return ((1 - p_t) ** gamma * bce).mean()
    # END EXERCISE


def hinge(score: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean max(0, 1 - y * score) with y in {-1, +1} (targets come as 0/1)."""
    return torch.clamp(1 - (2 * target - 1) * score, min=0).mean()


def regression_data(cfg: Config, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """x (N, 1) in [-3, 3], y (N, 1) on the line plus noise, and the boolean outlier mask (N,)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(cfg.n_points, 1, generator=g) * 6 - 3
    y = TRUE_SLOPE * x + TRUE_INTERCEPT + 0.5 * torch.randn(cfg.n_points, 1, generator=g)
    outliers = torch.rand(cfg.n_points, generator=g) < cfg.outlier_fraction
    y[outliers] += cfg.outlier_shift
    return x, y, outliers


def imbalanced_data(cfg: Config, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Majority N((0, 0), 1) and minority N((2, 2), 0.5^2) clouds in 2-D; labels 0 and 1 (float)."""
    g = torch.Generator().manual_seed(seed)
    majority = torch.randn(cfg.n_majority, 2, generator=g)
    minority = torch.randn(cfg.n_minority, 2, generator=g) * 0.5 + 1.6
    x = torch.cat([majority, minority])
    y = torch.cat([torch.zeros(cfg.n_majority), torch.ones(cfg.n_minority)])
    return x, y


def fit(model: nn.Module, loss_fn: Callable[[torch.Tensor], torch.Tensor], steps: int, lr: float) -> None:
    """Full-batch Adam on loss_fn(model)."""
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        loss = loss_fn(model)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


def classifier_losses(cfg: Config) -> dict[str, tuple[int, Callable]]:
    """name -> (outputs, loss(out, y)); the positive-class score is out[:, 1] - out[:, 0] or out[:, 0]."""
    return {
        "cross-entropy": (2, lambda out, y: F.cross_entropy(out, y.long())),
        "BCE": (1, lambda out, y: F.binary_cross_entropy_with_logits(out[:, 0], y)),
        "hinge": (1, lambda out, y: hinge(out[:, 0], y)),
        f"focal (gamma {cfg.focal_gamma:g})": (1, lambda out, y: focal(out[:, 0], y, cfg.focal_gamma)),
    }


def score(out: torch.Tensor) -> torch.Tensor:
    """Positive-class score, > 0 means predicted minority."""
    return out[:, 1] - out[:, 0] if out.shape[1] == 2 else out[:, 0]


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    origin = f"generated: a noisy line with outliers; two Gaussian classes {cfg.n_majority}:{cfg.n_minority}"
    ctx.record_data({"data_source": "embedded", "data_origin": origin, "seed": ctx.seed})
    metrics: dict[str, float] = {}

    x, y, outliers = regression_data(cfg, ctx.seed)
    regression = {
        "MSE": lambda p, t: F.mse_loss(p, t),
        "MAE": lambda p, t: F.l1_loss(p, t),
        f"Huber (delta {cfg.huber_delta:g})": lambda p, t: huber(p, t, cfg.huber_delta),
    }
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    left.scatter(x[~outliers, 0], y[~outliers, 0], s=10, label="inliers")
    left.scatter(x[outliers, 0], y[outliers, 0], s=14, color="red", marker="x", label="outliers")
    grid = torch.linspace(-3, 3, 2)[:, None]
    left.plot(grid, TRUE_SLOPE * grid + TRUE_INTERCEPT, "k--", label="true line")
    rows = []
    for name, loss in regression.items():
        torch.manual_seed(ctx.seed)
        line = nn.Linear(1, 1)
        fit(line, lambda m, loss=loss: loss(m(x), y), cfg.regression_steps, cfg.lr)
        slope, intercept = line.weight.item(), line.bias.item()
        key = name.split()[0].lower()
        metrics[f"{key}_slope_error"] = abs(slope - TRUE_SLOPE)
        metrics[f"{key}_intercept_error"] = abs(intercept - TRUE_INTERCEPT)
        rows.append(f"| {name} | {slope:.3f} | {intercept:.3f} |")
        with torch.no_grad():
            left.plot(grid, line(grid), label=f"{name}: y = {slope:.2f}x + {intercept:.2f}")
    left.set(title=f"regression with {outliers.float().mean():.0%} outliers", xlabel="x", ylabel="y")
    left.legend(fontsize=7)
    ctx.section(
        "Regression under outliers",
        f"True line y = {TRUE_SLOPE:g}x + {TRUE_INTERCEPT:g}.\n\n"
        + "| loss | slope | intercept |\n|---|---|---|\n"
        + "\n".join(rows),
    )

    x_train, y_train = imbalanced_data(cfg, ctx.seed)
    x_test, y_test = imbalanced_data(cfg, ctx.seed + 1)
    xx, yy = torch.meshgrid(torch.linspace(-3.5, 3.5, 200), torch.linspace(-3.5, 3.5, 200), indexing="xy")
    mesh = torch.stack([xx.ravel(), yy.ravel()], 1)  # (40000, 2)
    right.scatter(*x_test[y_test == 0].T, s=3, alpha=0.3, color="tab:blue", label="majority (test)")
    right.scatter(*x_test[y_test == 1].T, s=6, color="tab:red", label="minority (test)")
    rows = []
    for i, (name, (outputs, loss)) in enumerate(classifier_losses(cfg).items()):
        torch.manual_seed(ctx.seed)
        model = nn.Sequential(nn.Linear(2, cfg.hidden), nn.ReLU(), nn.Linear(cfg.hidden, outputs))
        fit(model, lambda m, loss=loss: loss(m(x_train), y_train), cfg.classification_steps, cfg.lr / 5)
        with torch.no_grad():
            predicted = score(model(x_test)) > 0
            boundary = score(model(mesh)).reshape(xx.shape)
        recall = predicted[y_test == 1].float().mean().item()
        specificity = (~predicted[y_test == 0]).float().mean().item()
        key = name.split()[0].lower().replace("-", "_")
        metrics[f"{key}_minority_recall"] = recall
        metrics[f"{key}_balanced_accuracy"] = (recall + specificity) / 2
        rows.append(f"| {name} | {(recall + specificity) / 2:.3f} | {recall:.3f} | {specificity:.3f} |")
        right.contour(xx, yy, boundary, levels=[0], colors=[f"C{i + 2}"])
        right.plot([], [], color=f"C{i + 2}", label=name)
    right.set(
        title=f"decision boundaries, imbalance {cfg.n_majority}:{cfg.n_minority}", xlabel="x1", ylabel="x2"
    )
    right.legend(fontsize=7, loc="lower right")
    ctx.figure("losses", fig, "Regression fits under outliers; decision boundaries under imbalance")
    ctx.section(
        "Classification under imbalance (test set)",
        "| loss | balanced accuracy | minority recall | majority recall |\n|---|---|---|---|\n"
        + "\n".join(rows),
    )
    return metrics
