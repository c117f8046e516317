"""F1 · The scratch engine: regression and classification with a NumPy autograd engine, no PyTorch.

The lab starts where micrograd does: one neuron built from scalar `Value`s, its computational graph
drawn (Graphviz DOT; a PNG too when `dot` is installed) with every gradient filled in by backward().
Then the vectorised `Tensor` engine of `dlpractice.scratch` trains four models with one explicit loop:
an MLP fitting a noisy 1-D curve, an MLP on scikit-learn's diabetes regression (against the
closed-form linear fit), an MLP drawing a decision boundary through moons, and a small CNN (conv,
ReLU, max-pool, two linear layers, im2col underneath) on the 8x8 digits, which reaches 97 % test
accuracy in seconds. Simplified: full-batch evaluation, no early stopping; the digits are the
1,797-image scikit-learn set, not MNIST.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np

from dlpractice.config import NonNegativeFloat, PositiveFloat, PositiveInt
from dlpractice.data.digits import Splits, load_diabetes, load_digits, make_moons, noisy_curve, true_curve
from dlpractice.registry import lab
from dlpractice.scratch import Tensor, Value, draw_graph, nn, no_grad, optim, to_dot
from dlpractice.scratch import functional as F

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f1", data=("digits", "diabetes", "moons"), metric="test_accuracy", goal="max", bar=0.97)


@dataclass
class Config:
    curve_steps: PositiveInt = 2000  # full-batch Adam steps on the 1-D curve
    diabetes_steps: PositiveInt = 1000
    moons_steps: PositiveInt = 1000
    digits_steps: PositiveInt = 2000  # minibatch steps of the digits CNN
    digits_channels: PositiveInt = 16  # conv filters
    batch_size: PositiveInt = 64
    lr: PositiveFloat = 2e-3
    weight_decay: NonNegativeFloat = 1e-2
    eval_every: PositiveInt = 200


PRESETS = {
    "smoke": {
        "curve_steps": 150,
        "diabetes_steps": 100,
        "moons_steps": 150,
        "digits_steps": 150,
        "digits_channels": 4,
        "lr": 1e-2,
        "eval_every": 50,
    },
    "quick": {"digits_steps": 1500},
    "full": {"curve_steps": 3000, "digits_steps": 3000, "digits_channels": 32, "eval_every": 250},
}

Loss = Callable[[Tensor, np.ndarray], Tensor]


def neuron_graph() -> tuple[Value, Value]:
    """micrograd's neuron: o = tanh(x1*w1 + x2*w2 + b), with every gradient filled in; returns (o, w1)."""
    x1, x2 = Value(2.0, label="x1"), Value(0.0, label="x2")
    w1, w2 = Value(-3.0, label="w1"), Value(1.0, label="w2")
    b = Value(6.8813735870195432, label="b")
    x1w1, x2w2 = x1 * w1, x2 * w2
    x1w1.label, x2w2.label = "x1*w1", "x2*w2"
    n = x1w1 + x2w2 + b
    n.label = "n"
    o = n.tanh()
    o.label = "o"
    o.backward()
    return o, w1


def mse_loss(prediction: Tensor, target: np.ndarray) -> Tensor:
    """Mean squared error of (N, 1) predictions against (N,) targets, built from engine operations."""
    # BEGIN EXERCISE f1.4: mean squared error with Tensor operations (so backward() differentiates it)
    diff = prediction.reshape(-1) - target  # (N,)
    return (diff * diff).mean()
    # END EXERCISE


def train(
    model: nn.Module,
    loss_fn: Loss,
    x: np.ndarray,
    y: np.ndarray,
    steps: int,
    cfg: Config,
    rng: np.random.Generator,
    batch_size: int | None = None,
    on_step: Callable[[int, float], None] | None = None,
) -> list[float]:
    """AdamW with a cosine schedule; minibatches of `batch_size` (full batch when None). Losses per step."""
    optimizer = optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    schedule = optim.LRScheduler(optimizer, lambda t: optim.cosine_lr(t, cfg.lr, steps))
    losses = []
    for step in range(steps):
        index = rng.integers(0, len(x), batch_size) if batch_size else slice(None)
        # BEGIN EXERCISE f1.5: one training step: forward, loss, zero the gradients, backward, update
        loss = loss_fn(model(Tensor(x[index])), y[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        # END EXERCISE
        schedule.step()
        losses.append(loss.item())
        if on_step:
            on_step(step, losses[-1])
    return losses


def predict(model: nn.Module, x: np.ndarray) -> np.ndarray:
    model.eval()
    with no_grad():
        out = model(Tensor(x)).data
    model.train()
    return out


def accuracy(model: nn.Module, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict(model, x).argmax(1) == y).mean())


def digits_cnn(channels: int, rng: np.random.Generator) -> nn.Sequential:
    """(N, 1, 8, 8) -> conv 3x3 -> ReLU -> max-pool 2 -> (N, C*4*4) -> 128 -> 10 logits."""
    return nn.Sequential(
        nn.Conv2d(1, channels, 3, padding=1, rng=rng),  # (N, C, 8, 8)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (N, C, 4, 4)
        nn.Flatten(),  # (N, C*16)
        nn.Linear(channels * 16, 128, rng=rng),
        nn.ReLU(),
        nn.Linear(128, 10, rng=rng),
    )


def r2(prediction: np.ndarray, y: np.ndarray) -> float:
    return float(1 - ((prediction - y) ** 2).sum() / ((y - y.mean()) ** 2).sum())


def regression_figure(
    curve: Splits, model: nn.Module, diabetes_pred: np.ndarray, diabetes_y: np.ndarray
) -> plt.Figure:
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    grid = np.linspace(-3, 3, 300)[:, None]
    left.scatter(curve.x_train[:, 0], curve.y_train, s=6, alpha=0.5, label="train")
    left.plot(grid[:, 0], true_curve(grid[:, 0]), "k--", label="true function")
    left.plot(grid[:, 0], predict(model, grid)[:, 0], "r", label="MLP (scratch engine)")
    left.set(title="noisy 1-D curve", xlabel="x", ylabel="y")
    left.legend(fontsize=8)
    right.scatter(diabetes_y, diabetes_pred, s=8)
    lims = [diabetes_y.min(), diabetes_y.max()]
    right.plot(lims, lims, "k--")
    right.set(title="diabetes (test): predicted vs true", xlabel="true (z-score)", ylabel="predicted")
    return fig


def boundary_figure(moons: Splits, model: nn.Module) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4))
    xx, yy = np.meshgrid(np.linspace(-1.6, 2.6, 200), np.linspace(-1.2, 1.7, 200))
    grid = np.stack([xx.ravel(), yy.ravel()], 1)  # (40000, 2)
    logits = predict(model, grid)
    ax.contourf(xx, yy, (logits[:, 1] - logits[:, 0]).reshape(xx.shape) > 0, alpha=0.25, cmap="coolwarm")
    ax.scatter(*moons.x_test.T, c=moons.y_test, s=10, cmap="coolwarm", edgecolors="k", linewidths=0.3)
    ax.set(title="moons: decision boundary and test points")
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    rng = np.random.default_rng(ctx.seed)
    digits = load_digits(ctx.data)
    curve, diabetes, moons = noisy_curve(), load_diabetes(ctx.data), make_moons()
    ctx.record_data(
        {**digits.describe(), "regression_data": f"{curve.origin}; {diabetes.origin}", "moons": moons.origin}
    )

    neuron, w1 = neuron_graph()
    dot = to_dot(neuron)
    drawn = draw_graph(neuron, ctx.run_dir / "figures" / "graph")
    if drawn.suffix == ".png":
        ctx.figures.append(("Computational graph of one neuron", drawn))
    ctx.section(
        "The graph of one neuron, o = tanh(x1*w1 + x2*w2 + b)",
        f"After `o.backward()`: d o/d w1 = {w1.grad:.4f} (x1 * (1 - o^2) = 2 * 0.5 = 1).\n\n```dot\n{dot}```",
    )

    curve_model = nn.MLP(1, [32, 32], 1, activation=nn.Tanh, rng=rng)
    train(curve_model, mse_loss, curve.x_train, curve.y_train, cfg.curve_steps, cfg, rng)
    curve_rmse = float(np.sqrt(((predict(curve_model, curve.x_test)[:, 0] - curve.y_test) ** 2).mean()))

    diabetes_model = nn.MLP(10, [32], 1, rng=rng)
    train(diabetes_model, mse_loss, diabetes.x_train, diabetes.y_train, cfg.diabetes_steps, cfg, rng)
    diabetes_pred = predict(diabetes_model, diabetes.x_test)[:, 0]
    design = np.c_[diabetes.x_train, np.ones(len(diabetes.x_train))]  # least squares, for reference
    coef = np.linalg.lstsq(design, diabetes.y_train, rcond=None)[0]
    linear_r2 = r2(np.c_[diabetes.x_test, np.ones(len(diabetes.x_test))] @ coef, diabetes.y_test)
    ctx.figure(
        "regression",
        regression_figure(curve, curve_model, diabetes_pred, diabetes.y_test),
        "Regression: the curve fit and diabetes predictions",
    )

    moons_model = nn.MLP(2, [16, 16], 2, rng=rng)
    train(moons_model, F.cross_entropy, moons.x_train, moons.y_train, cfg.moons_steps, cfg, rng)
    ctx.figure("moons", boundary_figure(moons, moons_model), "Moons: decision boundary")

    cnn = digits_cnn(cfg.digits_channels, rng)
    images = {s: getattr(digits, f"x_{s}").reshape(-1, 1, 8, 8) for s in ("train", "val", "test")}
    history: list[dict[str, float]] = []
    with ctx.progress(total=cfg.digits_steps) as bar:

        def on_step(step: int, loss: float) -> None:
            history.append({"step": step, "train_loss": loss})
            if (step + 1) % cfg.eval_every == 0 or step + 1 == cfg.digits_steps:
                val_loss = F.cross_entropy(Tensor(predict(cnn, images["val"])), digits.y_val).item()
                history.append({"step": step, "val_loss": val_loss})
                ctx.tracker.log_metrics(step, {"train_loss": loss, "val_loss": val_loss})
                bar.update(step + 1, loss=loss, val=val_loss)

        x, y = images["train"], digits.y_train
        train(cnn, F.cross_entropy, x, y, cfg.digits_steps, cfg, rng, cfg.batch_size, on_step)
    ctx.loss_figure(history, title="Digits CNN (scratch engine): cross-entropy", ylabel="nats/image")

    metrics = {
        "test_accuracy": accuracy(cnn, images["test"], digits.y_test),
        "val_accuracy": accuracy(cnn, images["val"], digits.y_val),
        "train_accuracy": accuracy(cnn, images["train"], digits.y_train),
        "moons_test_accuracy": accuracy(moons_model, moons.x_test, moons.y_test),
        "curve_test_rmse": curve_rmse,
        "diabetes_test_r2": r2(diabetes_pred, diabetes.y_test),
        "diabetes_linear_r2": linear_r2,
        "digits_params": float(sum(p.size for p in cnn.parameters())),
    }
    ctx.section(
        "Results (scratch engine only)",
        "| task | test metric |\n|---|---|\n"
        f"| noisy curve (noise sd 0.3) | RMSE {curve_rmse:.3f} |\n"
        f"| diabetes | R² {metrics['diabetes_test_r2']:.3f} (least squares: {linear_r2:.3f}) |\n"
        f"| moons | accuracy {metrics['moons_test_accuracy']:.3f} |\n"
        f"| digits CNN | accuracy {metrics['test_accuracy']:.3f} |",
    )
    return metrics
