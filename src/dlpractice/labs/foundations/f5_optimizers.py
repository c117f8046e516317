"""F5 · Optimisers and learning-rate schedules from scratch, checked against torch.optim.

Seven optimisers of `dlpractice.scratch.optim` (SGD, momentum, Nesterov, RMSprop, Adagrad, Adam,
AdamW) race twice: on a 2-D loss surface (Rosenbrock's banana valley, trajectories drawn on its
contours) and on the digits with a small MLP (loss curves, validation accuracy). Each also runs in
torch.optim on the surface from the same start, and the largest coordinate difference over the run is
the lab's metric: the scratch versions are the torch ones, written out. Then the schedules (step,
cosine, warm-up + cosine, one-cycle) are drawn and each trains the digits MLP with SGD + momentum,
and Smith's LR range test suggests a learning rate. Simplified: one learning rate per optimiser,
picked by hand for each problem, no tuning; one seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import PositiveFloat, PositiveInt
from dlpractice.data.digits import Splits, load_digits
from dlpractice.registry import lab
from dlpractice.scratch import Tensor, nn, no_grad, optim
from dlpractice.scratch import functional as F

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f5", requires=("f1",), data=("digits",), metric="torch_parity_max_diff", bar=1e-6)


@dataclass
class Config:
    surface_steps: PositiveInt = 300  # optimiser steps on the 2-D surface
    digits_steps: PositiveInt = 1000  # minibatch steps per optimiser on the digits
    hidden: PositiveInt = 64
    batch_size: PositiveInt = 64
    schedule_lr: PositiveFloat = 0.1  # peak lr of SGD + momentum under each schedule
    finder_steps: PositiveInt = 100


PRESETS = {
    "smoke": {"surface_steps": 50, "digits_steps": 80, "hidden": 32, "finder_steps": 40},
    "quick": {},
    "full": {"surface_steps": 500, "digits_steps": 3000, "hidden": 128, "finder_steps": 200},
}

START = (-1.5, 2.0)  # where every optimiser starts on the surface; the minimum is at (1, 1)

# name: (scratch class, torch class, keyword arguments shared by both)
OPTIMIZERS = {
    "SGD": (optim.SGD, torch.optim.SGD, {}),
    "momentum": (optim.SGD, torch.optim.SGD, {"momentum": 0.9}),
    "Nesterov": (optim.SGD, torch.optim.SGD, {"momentum": 0.9, "nesterov": True}),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop, {}),
    "Adagrad": (optim.Adagrad, torch.optim.Adagrad, {}),
    "Adam": (optim.Adam, torch.optim.Adam, {}),
    "AdamW": (optim.AdamW, torch.optim.AdamW, {"weight_decay": 0.01}),
}
SURFACE_LR = {
    "SGD": 2e-3,
    "momentum": 5e-4,
    "Nesterov": 5e-4,
    "RMSprop": 1e-2,
    "Adagrad": 0.3,
    "Adam": 5e-2,
    "AdamW": 5e-2,
}
DIGITS_LR = {
    "SGD": 0.2,
    "momentum": 0.05,
    "Nesterov": 0.05,
    "RMSprop": 1e-3,
    "Adagrad": 0.05,
    "Adam": 2e-3,
    "AdamW": 2e-3,
}


def rosenbrock(p):  # works on a scratch Tensor and on a torch tensor alike
    """f(x, y) = (1 - x)^2 + 10 (y - x^2)^2: a curved valley, minimum 0 at (1, 1)."""
    x, y = p[0], p[1]
    return (1 - x) ** 2 + 10 * (y - x**2) ** 2


def warmup_cosine(step: int, base_lr: float, warmup: int, total: int) -> float:
    """Linear warm-up from 0 to base_lr over `warmup` steps, then a cosine down to 0 at `total`."""
    # BEGIN EXERCISE f5.2: warm up linearly, then follow half a cosine to zero
    if step < warmup:
        return base_lr * (step + 1) / warmup
    return optim.cosine_lr(step - warmup, base_lr, total - warmup)
    # END EXERCISE


def schedules(cfg: Config) -> dict[str, Callable[[int], float]]:
    lr, total = cfg.schedule_lr, cfg.digits_steps
    return {
        "constant": lambda t: lr,
        "step (x0.1 at 1/2, 3/4)": lambda t: lr * 0.1 ** ((t >= total // 2) + (t >= 3 * total // 4)),
        "cosine": lambda t: optim.cosine_lr(t, lr, total),
        "warm-up + cosine": lambda t: warmup_cosine(t, lr, max(1, total // 10), total),
        "one-cycle": lambda t: optim.one_cycle_lr(min(t, total - 1), lr, total),
    }


def surface_path(name: str, steps: int, use_torch: bool = False) -> np.ndarray:
    """The (steps + 1, 2) positions one optimiser visits on the surface, in scratch or torch."""
    ours, theirs, kwargs = OPTIMIZERS[name]
    if use_torch:
        p = torch.tensor(START, dtype=torch.float64, requires_grad=True)
        opt = theirs([p], lr=SURFACE_LR[name], **kwargs)
    else:
        p = Tensor(np.array(START), requires_grad=True)
        opt = ours([p], lr=SURFACE_LR[name], **kwargs)
    path = [np.array(START)]
    for _ in range(steps):
        opt.zero_grad()
        rosenbrock(p).backward()
        opt.step()
        path.append(np.array(p.detach().numpy(), dtype=np.float64))
    return np.stack(path)


def train_digits(
    digits: Splits, cfg: Config, seed: int, make_opt: Callable, schedule: Callable[[int], float] | None = None
) -> tuple[list[float], float]:
    """MLP(64, [hidden], 10) with a given optimiser (and schedule); train-loss curve, val accuracy."""
    rng = np.random.default_rng(seed)  # same init and batches for every optimiser
    model = nn.MLP(64, [cfg.hidden], 10, rng=rng)
    opt = make_opt(model.parameters())
    scheduler = optim.LRScheduler(opt, schedule) if schedule else None
    losses = []
    for _ in range(cfg.digits_steps):
        index = rng.integers(0, len(digits.x_train), cfg.batch_size)
        loss = F.cross_entropy(model(Tensor(digits.x_train[index])), digits.y_train[index])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if scheduler:
            scheduler.step()
        losses.append(loss.item())
    with no_grad():
        val_acc = float((model(Tensor(digits.x_val)).data.argmax(1) == digits.y_val).mean())
    return losses, val_acc


def smooth(values: list[float], k: int = 20) -> np.ndarray:
    k = max(1, min(k, len(values) // 5))
    return np.convolve(values, np.ones(k) / k, mode="valid")


def surface_figure(paths: dict[str, np.ndarray]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 5.5))
    xx, yy = np.meshgrid(np.linspace(-2, 2, 300), np.linspace(-1, 3, 300))
    ax.contour(xx, yy, np.log1p(rosenbrock(np.stack([xx, yy]))), levels=25, cmap="Greys", linewidths=0.6)
    for name, path in paths.items():
        ax.plot(path[:, 0], path[:, 1], ".-", markersize=2, linewidth=1, label=name)
    ax.plot(1, 1, "r*", markersize=14)
    ax.set(
        xlim=(-2, 2), ylim=(-1, 3), title="Rosenbrock surface: optimiser trajectories", xlabel="x", ylabel="y"
    )
    ax.legend(fontsize=8)
    return fig


def curves_figure(curves: dict[str, list[float]], title: str, ylabel: str = "train loss (smoothed)"):
    fig, ax = plt.subplots(figsize=(7, 4))
    for name, values in curves.items():
        ax.plot(smooth(values), label=name)
    ax.set(title=title, xlabel="step", ylabel=ylabel, yscale="log")
    ax.legend(fontsize=8)
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    digits = load_digits(ctx.data)
    ctx.record_data(digits.describe())
    metrics: dict[str, float] = {}

    paths = {name: surface_path(name, cfg.surface_steps) for name in OPTIMIZERS}
    parity = {
        name: float(np.abs(paths[name] - surface_path(name, cfg.surface_steps, True)).max())
        for name in OPTIMIZERS
    }
    metrics["torch_parity_max_diff"] = max(parity.values())
    ctx.figure("surface", surface_figure(paths), "Trajectories on the Rosenbrock surface")

    curves, rows = {}, []
    with ctx.progress(total=len(OPTIMIZERS)) as bar:
        for i, (name, (ours, _, kwargs)) in enumerate(OPTIMIZERS.items()):
            make = lambda params, ours=ours, kwargs=kwargs, lr=DIGITS_LR[name]: ours(params, lr=lr, **kwargs)  # noqa: E731
            curves[name], val_acc = train_digits(digits, cfg, ctx.seed, make)
            final = float(np.mean(curves[name][-20:]))
            distance = float(np.linalg.norm(paths[name][-1] - 1))
            metrics[f"{name}_val_accuracy"] = val_acc
            ctx.tracker.log_metrics(i, {f"{name}_final_train_loss": final})
            rows.append(
                f"| {name} | {DIGITS_LR[name]:g} | {final:.4f} | {val_acc:.3f} | "
                f"{distance:.3g} | {parity[name]:.1e} |"
            )
            bar.update(i + 1, loss=final, val=val_acc)
    ctx.figure("digits_optimizers", curves_figure(curves, "Digits MLP: optimisers"), "Optimisers on digits")
    ctx.section(
        "Optimisers",
        "| optimiser | lr (digits) | final train loss | val accuracy | distance to (1, 1) on the surface "
        "| max difference from torch.optim |\n|---|---|---|---|---|---|\n" + "\n".join(rows),
    )

    lr_curves = {name: [fn(t) for t in range(cfg.digits_steps)] for name, fn in schedules(cfg).items()}
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for name, values in lr_curves.items():
        ax.plot(values, label=name)
    ax.set(title="Learning-rate schedules", xlabel="step", ylabel="lr")
    ax.legend(fontsize=8)
    ctx.figure("schedules", fig, "Learning-rate schedules")
    sched_curves, sched_rows = {}, []
    for name, fn in schedules(cfg).items():
        make = lambda params: optim.SGD(params, lr=cfg.schedule_lr, momentum=0.9)  # noqa: E731
        sched_curves[name], val_acc = train_digits(digits, cfg, ctx.seed, make, fn)
        sched_rows.append(f"| {name} | {np.mean(sched_curves[name][-20:]):.4f} | {val_acc:.3f} |")
    title = "Digits MLP: SGD + momentum under each schedule"
    ctx.figure("digits_schedules", curves_figure(sched_curves, title), "Schedules on digits")
    ctx.section(
        "Schedules (SGD + momentum 0.9)",
        "| schedule | final train loss | val accuracy |\n|---|---|---|\n" + "\n".join(sched_rows),
    )

    rng = np.random.default_rng(ctx.seed)
    model = nn.MLP(64, [cfg.hidden], 10, rng=rng)
    finder_opt = optim.SGD(model.parameters(), lr=1e-5, momentum=0.9)

    def train_step() -> float:
        index = rng.integers(0, len(digits.x_train), cfg.batch_size)
        loss = F.cross_entropy(model(Tensor(digits.x_train[index])), digits.y_train[index])
        finder_opt.zero_grad()
        loss.backward()
        finder_opt.step()
        return loss.item()

    found = optim.lr_finder(finder_opt, train_step, start_lr=1e-5, end_lr=10.0, num_steps=cfg.finder_steps)
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(found["lrs"], found["losses"])
    ax.axvline(
        found["suggested_lr"], color="r", linestyle="--", label=f"suggested {found['suggested_lr']:.2g}"
    )
    ax.set(xscale="log", title="LR range test (SGD + momentum)", xlabel="lr", ylabel="smoothed loss")
    ax.legend()
    ctx.figure("lr_finder", fig, "LR finder")
    metrics["suggested_lr"] = float(found["suggested_lr"])
    metrics["best_val_accuracy"] = max(v for k, v in metrics.items() if k.endswith("_val_accuracy"))
    return metrics
