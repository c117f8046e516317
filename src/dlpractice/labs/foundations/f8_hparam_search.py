"""F8 · Hyper-parameter search: grid, random and Bayesian (Optuna TPE) search with the same budget.

f6's MLP on the digits (trained on a `train_subset` of the training split, so regularisation matters) is
tuned over five hyper-parameters: learning rate and weight decay (log scale), width (log scale, integer),
depth and dropout. Each method gets the same number of trials and each trial is scored by validation
accuracy; the test split is only read to report the chosen configurations. Grid search takes the smallest
centred grid with at least `trials` points and visits it in a seeded random order, cut at the budget;
random search samples each axis on its own scale; TPE (Optuna's Tree-structured Parzen Estimator) starts
with `tpe_startup` random trials, then proposes where good trials cluster. Every trial is logged to the
tracker. Figures: best validation accuracy so far against the trial number, and a parallel-coordinates
plot per method (normalised axes, lines coloured by score). The table compares each method's best
configuration with the default (f6's baseline). Simplified: one seed per trial (the ranking of close
configurations is partly noise), a sequential in-memory study (no SQLite storage, resume or workers).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import optuna
import torch

from dlpractice.data.digits import load_digits
from dlpractice.models.mlp import MLP, error_rate, to_torch, train_classifier
from dlpractice.registry import Lab

LAB = Lab(
    id="f8",
    slug="hparam-search",
    track="foundations",
    title="Hyper-parameter search: grid, random and Bayesian",
    requires=("f6",),
    data=("digits",),
    metric="best_test_accuracy",
    goal="max",
    bar=None,
)

# name -> (low, high, scale): "log" (float, log-uniform), "log_int", "int" (uniform) or "linear"
SPACE: dict[str, tuple[float, float, str]] = {
    "lr": (1e-4, 3e-2, "log"),
    "width": (16, 512, "log_int"),
    "depth": (1, 4, "int"),
    "dropout": (0.0, 0.5, "linear"),
    "weight_decay": (1e-5, 1.0, "log"),
}
DEFAULT = {"lr": 1e-3, "width": 256, "depth": 2, "dropout": 0.0, "weight_decay": 0.0}  # f6's baseline
METHODS = ("grid", "random", "tpe")


@dataclass
class Config:
    trials: int = 24  # the budget of each method
    train_subset: int = 300  # training images used (of 1,078), as in f6
    steps: int = 600
    batch_size: int = 32
    tpe_startup: int = 8  # random trials before TPE starts modelling


PRESETS = {
    "smoke": {"trials": 3, "steps": 30, "tpe_startup": 2},
    "quick": {},
    "full": {"trials": 60, "steps": 1500, "tpe_startup": 15},
}


def sample_config(rng: np.random.Generator) -> dict[str, float | int]:
    """One random configuration: each hyper-parameter drawn uniformly on its own scale (see SPACE)."""
    # BEGIN EXERCISE f8.1: sample one random configuration from the search space
    config: dict[str, float | int] = {}
    for name, (low, high, scale) in SPACE.items():
        if scale == "log":
            config[name] = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        elif scale == "log_int":
            config[name] = int(round(np.exp(rng.uniform(np.log(low), np.log(high)))))
        elif scale == "int":
            config[name] = int(rng.integers(low, high + 1))
        else:
            config[name] = float(rng.uniform(low, high))
    return config
    # END EXERCISE


def from_unit(name: str, u: float) -> float | int:
    """The value at position u in [0, 1] along the hyper-parameter's own scale."""
    low, high, scale = SPACE[name]
    if scale in ("log", "log_int"):
        value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        return int(round(value)) if scale == "log_int" else value
    if scale == "int":
        return int(min(high, low + math.floor(u * (high - low + 1))))
    return low + u * (high - low)


def to_unit(name: str, value: float) -> float:
    """Inverse of from_unit: where the value sits on its axis, in [0, 1] (for the parallel coordinates)."""
    low, high, scale = SPACE[name]
    if scale in ("log", "log_int"):
        return (math.log(value) - math.log(low)) / (math.log(high) - math.log(low))
    if scale == "int":
        return (value - low + 0.5) / (high - low + 1)
    return (value - low) / (high - low)


def grid_configs(trials: int, seed: int) -> list[dict[str, float | int]]:
    """The smallest grid with >= trials points (centred levels on each axis), seeded order, cut at trials."""
    levels = max(2, math.ceil(trials ** (1 / len(SPACE)) - 1e-9))
    axes = {name: [from_unit(name, (i + 0.5) / levels) for i in range(levels)] for name in SPACE}
    points = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    order = np.random.default_rng(seed).permutation(len(points))[:trials]
    return [points[i] for i in order]


def suggest(trial: optuna.Trial) -> dict[str, float | int]:
    """The same space for Optuna: TPE models each axis on the scale it is declared with."""
    config: dict[str, float | int] = {}
    for name, (low, high, scale) in SPACE.items():
        if scale in ("int", "log_int"):
            config[name] = trial.suggest_int(name, int(low), int(high), log=scale == "log_int")
        else:
            config[name] = trial.suggest_float(name, low, high, log=scale == "log")
    return config


def run(cfg: Config, ctx) -> dict[str, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    digits = load_digits(ctx.data)
    ctx.record_data({**digits.describe(), "train_subset": cfg.train_subset})
    splits = {
        s: to_torch(getattr(digits, f"x_{s}"), getattr(digits, f"y_{s}")) for s in ("train", "val", "test")
    }
    splits["train"] = tuple(t[: cfg.train_subset] for t in splits["train"])

    def evaluate(config: dict[str, float | int]) -> dict[str, float]:
        """Train f6's MLP with this configuration; the same init and batches for every trial."""
        torch.manual_seed(ctx.seed)
        model = MLP(64, 10, width=config["width"], depth=config["depth"], dropout=config["dropout"])
        train_classifier(
            model,
            splits,
            cfg.steps,
            cfg.batch_size,
            config["lr"],
            weight_decay=config["weight_decay"],
            seed=ctx.seed,
        )
        return {s: 1 - error_rate(model, *splits[s]) for s in ("val", "test")}

    history: dict[str, list[tuple[dict, dict[str, float]]]] = {m: [] for m in METHODS}
    with ctx.progress(total=3 * cfg.trials + 1) as bar:
        done = 0

        def record(method: str, config: dict, scores: dict[str, float]) -> float:
            nonlocal done
            history[method].append((config, scores))
            best = max(s["val"] for _, s in history[method])
            ctx.tracker.log_metrics(
                len(history[method]) - 1,
                {f"{method}_val_accuracy": scores["val"], f"{method}_best_val_accuracy": best},
            )
            done += 1
            bar.update(done, loss=1 - scores["val"], val=best)
            return scores["val"]

        for config in grid_configs(cfg.trials, ctx.seed):
            record("grid", config, evaluate(config))
        rng = np.random.default_rng(ctx.seed)
        for _ in range(cfg.trials):
            config = sample_config(rng)
            record("random", config, evaluate(config))
        sampler = optuna.samplers.TPESampler(seed=ctx.seed, n_startup_trials=cfg.tpe_startup)
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for _ in range(cfg.trials):
            trial = study.ask()  # ask/tell: the loop stays ours, Optuna only proposes
            config = suggest(trial)
            study.tell(trial, record("tpe", config, evaluate(config)))
        default = evaluate(DEFAULT)
        done += 1
        bar.update(done, loss=1 - default["val"], val=default["val"])

    metrics: dict[str, float] = {
        "default_val_accuracy": default["val"],
        "default_test_accuracy": default["test"],
    }
    rows = [
        f"| default (f6 baseline) | {default['val']:.3f} | {default['test']:.3f} | "
        + " | ".join(f"{DEFAULT[k]:.3g}" for k in SPACE)
        + " |"
    ]
    winners = {}
    for method in METHODS:
        config, scores = max(history[method], key=lambda item: item[1]["val"])  # first of ties
        winners[method] = scores
        metrics[f"{method}_trials"] = float(len(history[method]))
        metrics[f"{method}_best_val_accuracy"] = scores["val"]
        metrics[f"{method}_test_accuracy"] = scores["test"]
        rows.append(
            f"| {method} | {scores['val']:.3f} | {scores['test']:.3f} | "
            + " | ".join(f"{config[k]:.3g}" for k in SPACE)
            + " |"
        )
    chosen = max(METHODS, key=lambda m: winners[m]["val"])  # picked on validation, reported on test
    metrics["best_test_accuracy"] = winners[chosen]["test"]
    ctx.section(
        "Best configuration per method vs the default",
        f"{cfg.trials} trials per method, {cfg.steps} steps each, {cfg.train_subset} training images; "
        f"chosen on validation accuracy: **{chosen}**.\n\n"
        "| method | val accuracy | test accuracy | " + " | ".join(SPACE) + " |\n"
        "|---|---|---|" + "---|" * len(SPACE) + "\n" + "\n".join(rows),
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    for method in METHODS:
        scores = [s["val"] for _, s in history[method]]
        ax.plot(
            range(1, len(scores) + 1), np.maximum.accumulate(scores), drawstyle="steps-post", label=method
        )
    ax.axhline(default["val"], color="grey", linestyle=":", label="default config")
    ax.set(xlabel="trial", ylabel="best val accuracy so far", title="Same budget, three search methods")
    ax.legend()
    ctx.figure("best_so_far", fig, "Best validation accuracy so far against the trial number")

    all_scores = [s["val"] for m in METHODS for _, s in history[m]]
    norm = plt.Normalize(min(all_scores), max(all_scores))
    axis_names = [*SPACE, "val acc"]
    fig, axes = plt.subplots(1, 4, figsize=(15, 4), gridspec_kw={"width_ratios": [1, 1, 1, 0.05]})
    for ax, method in zip(axes[:3], METHODS):
        for config, scores in sorted(history[method], key=lambda item: item[1]["val"]):  # best drawn last
            ys = [to_unit(k, config[k]) for k in SPACE] + [norm(scores["val"])]
            ax.plot(range(len(axis_names)), ys, color=plt.cm.viridis(norm(scores["val"])), alpha=0.8)
        for x in range(len(axis_names)):
            ax.axvline(x, color="black", linewidth=0.5)
        ax.set_xticks(range(len(axis_names)), axis_names, rotation=30)
        ax.set(title=method, ylim=(-0.05, 1.05))
    axes[0].set_ylabel("position on the axis (low -> high)")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), cax=axes[3], label="val accuracy")
    ctx.figure(
        "parallel_coordinates", fig, "Parallel coordinates of every trial, coloured by validation accuracy"
    )
    return metrics
