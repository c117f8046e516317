"""P1 · Experiment management: grid, random and TPE search of l2 at the same budget, and the seed noise.

l2's MLP on the names (embedded by default) is tuned over the learning rate (log scale), the hidden width
(log scale, integer) and the embedding size. Each method gets `trials` trials, all with the run's seed,
scored by validation loss: grid search (the smallest centred grid with >= `trials` points, in Optuna's
seeded order, cut at the budget), random search, and TPE (Optuna's Tree-structured Parzen Estimator,
`tpe_startup` random trials first). Then the default configuration (l2's quick preset, which this
config's defaults copy) is trained with `seeds` different seeds: their spread is the noise floor. The
best trial only counts as an improvement if it beats the default by more than 2 × that seed std.

Every trial and every seed is a child run (`ctx.child`): its own directory and a nested MLflow run with
its params and loss curves, so MLflow's comparison view, or `dlp runs compare`, shows them side by side.
The same search from the command line, as separate tracked runs in a shared study, is `dlp sweep l2`.
Simplified: one seed per trial (close configurations rank partly by noise); l2 only, not f6; trials run
one after another in this process; an interrupted p1 run starts again rather than resuming.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated

import matplotlib.pyplot as plt
import numpy as np
import optuna
import torch

from dlpractice.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt, Range
from dlpractice.data.batching import TensorData
from dlpractice.models.makemore import MLP
from dlpractice.recipes.makemore import load_splits, window_data
from dlpractice.registry import lab
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("p1", requires=("l2", "f8"), data=("names",), metric="tpe_best_val_loss", goal="min")

# name -> (low, high, scale): "log" (float, log-uniform), "log_int" or "int" (uniform)
SPACE: dict[str, tuple[float, float, str]] = {
    "lr": (3e-4, 3e-2, "log"),
    "n_hidden": (32, 512, "log_int"),
    "n_embd": (2, 24, "int"),
}
METHODS = ("grid", "random", "tpe")


@dataclass
class Config(FitConfig):
    # l2's model and its quick preset: the "default" every search is measured against
    steps: PositiveInt = 6000
    batch_size: PositiveInt = 128
    lr: PositiveFloat = 3e-3
    weight_decay: NonNegativeFloat = 0.1
    eval_every: PositiveInt = 500
    block_size: PositiveInt = 3
    n_embd: PositiveInt = 10
    n_hidden: PositiveInt = 200
    # the study
    trials: PositiveInt = 24  # the budget of each method
    tpe_startup: NonNegativeInt = 8  # random trials before TPE starts modelling
    seeds: Annotated[int, Range(ge=2)] = 5  # runs of the default config, for the seed std
    sigmas: PositiveFloat = 2.0  # a gain counts when it exceeds sigmas × the seed std


PRESETS = {
    "smoke": {
        "trials": 3,
        "tpe_startup": 1,
        "seeds": 2,
        "steps": 40,
        "batch_size": 32,
        "eval_every": 40,
        "log_every": 20,
        "ckpt_every": 1000,
    },
    "quick": {"trials": 8, "tpe_startup": 3, "seeds": 3, "steps": 1500, "eval_every": 500},
    "full": {},  # 24 trials per method of l2's quick preset, 5 seeds of the default
}


def significant_gain(
    best: float, default: float, seed_losses: list[float], sigmas: float
) -> tuple[float, bool]:
    """How much lower the best loss is than the default's, and whether that gain exceeds `sigmas` times
    the sample standard deviation (n - 1) of the default config's losses over several seeds."""
    # BEGIN EXERCISE p1.1: decide whether the search beat the default by more than the seed noise
    spread = float(np.std(seed_losses, ddof=1))
    gain = default - best
    return gain, gain > sigmas * spread
    # END EXERCISE


def levels(name: str, count: int) -> list[float | int]:
    """`count` centred points along the axis's own scale (a grid axis), without repeats."""
    low, high, scale = SPACE[name]
    points = []
    for i in range(count):
        u = (i + 0.5) / count
        if scale == "log_int":
            value: float | int = int(round(math.exp(math.log(low) + u * (math.log(high) - math.log(low)))))
        elif scale == "int":
            value = int(min(high, low + math.floor(u * (high - low + 1))))
        else:
            value = math.exp(math.log(low) + u * (math.log(high) - math.log(low)))
        if value not in points:
            points.append(value)
    return points


def sampler(method: str, cfg: Config, seed: int) -> optuna.samplers.BaseSampler:
    if method == "grid":
        per_axis = max(2, math.ceil(cfg.trials ** (1 / len(SPACE)) - 1e-9))
        return optuna.samplers.GridSampler({k: levels(k, per_axis) for k in SPACE}, seed=seed)
    if method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=cfg.tpe_startup)


def suggest(trial: optuna.Trial) -> dict[str, float | int]:
    """The trial's configuration; each axis on the scale SPACE declares (the grid sampler ignores it)."""
    values: dict[str, float | int] = {}
    for name, (low, high, scale) in SPACE.items():
        if scale == "log":
            values[name] = trial.suggest_float(name, low, high, log=True)
        else:
            values[name] = trial.suggest_int(name, int(low), int(high), log=scale == "log_int")
    return values


class Quiet:
    """A child run's progress bar: the parent's bar counts runs, one live bar at a time."""

    def __call__(self, total: int, completed: int = 0) -> Quiet:
        return self

    def __enter__(self) -> Quiet:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def update(self, step: int, **fields: float) -> None:
        pass


def train_one(cfg: Config, data: TensorData, vocab_size: int, ctx: RunContext) -> dict[str, float]:
    """Train l2's MLP with this config in its own (child) run; its val and test loss."""
    torch.manual_seed(ctx.seed)
    model = MLP(vocab_size, cfg.block_size, cfg.n_embd, cfg.n_hidden)
    ctx.tracker.log_params({"lr": cfg.lr, "n_hidden": cfg.n_hidden, "n_embd": cfg.n_embd, "seed": ctx.seed})
    fit(model, data, cfg, ctx)
    scores = {"val_loss": evaluate(model, data, "val"), "test_loss": evaluate(model, data, "test")}
    ctx.tracker.log_metrics(cfg.steps, scores)
    return scores


def best_so_far(values: list[float]) -> list[float]:
    return list(np.minimum.accumulate(values)) if values else []


def search_figure(
    history: dict[str, list[float]], default: float, spread: float, sigmas: float
) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for method, values in history.items():
        ax.plot(range(1, len(values) + 1), best_so_far(values), marker="o", label=method)
    ax.axhline(default, color="k", linestyle=":", label="default (l2 quick)")
    ax.axhspan(
        default - sigmas * spread,
        default + sigmas * spread,
        color="grey",
        alpha=0.2,
        label=f"default ± {sigmas:g} seed std",
    )
    ax.xaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set(xlabel="trial", ylabel="best val loss so far", title="Best so far, same budget per method")
    ax.legend()
    ax.grid(alpha=0.3)
    return fig


def seed_figure(seed_losses: dict[int, float], bests: dict[str, float]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    values = list(seed_losses.values())
    ax.scatter(values, [0] * len(values), s=60, color="k", zorder=3, label="default config, one run per seed")
    for seed, value in seed_losses.items():
        ax.annotate(str(seed), (value, 0), textcoords="offset points", xytext=(0, 8), ha="center", fontsize=8)
    for (method, value), color in zip(bests.items(), ("C0", "C1", "C2")):
        ax.axvline(value, color=color, label=f"{method} best")
    ax.set(xlabel="val loss", yticks=[], title="One config, several seeds: the noise under every comparison")
    ax.legend(fontsize=8, loc="upper right")
    return fig


def search(method: str, cfg: Config, data: TensorData, vocab_size: int, ctx: RunContext, bar, done: int):
    """One method's `trials` trials, each a child run; the study (its trials in order, its best)."""
    study = optuna.create_study(direction="minimize", sampler=sampler(method, cfg, ctx.seed))

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial)
        child = replace(ctx.child(f"{method}{trial.number:02d}"), progress=Quiet())
        scores = train_one(replace(cfg, **params), data, vocab_size, child)
        trial.set_user_attr("test_loss", scores["test_loss"])
        return scores["val_loss"]

    def tracked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        best = min(t.value for t in study.trials if t.value is not None)
        ctx.tracker.log_metrics(
            trial.number, {f"{method}_val_loss": trial.value, f"{method}_best_val_loss": best}
        )
        bar.update(done + trial.number + 1, loss=trial.value, val=best)

    study.optimize(objective, n_trials=cfg.trials, callbacks=[tracked])
    return study


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names, vocab = load_splits(ctx)
    data = window_data(names, vocab, cfg.block_size)  # block_size is not searched: one set of windows
    history: dict[str, list[float]] = {}
    winners: dict[str, tuple[dict, dict[str, float]]] = {}
    with ctx.progress(total=len(METHODS) * cfg.trials + cfg.seeds) as bar:
        for i, method in enumerate(METHODS):
            study = search(method, cfg, data, len(vocab), ctx, bar, i * cfg.trials)
            history[method] = [t.value for t in study.trials]
            winners[method] = (
                study.best_params,
                {"val_loss": study.best_value, **study.best_trial.user_attrs},
            )
        seed_scores = {}
        for i, seed in enumerate(range(ctx.seed, ctx.seed + cfg.seeds)):
            child = replace(ctx.child(f"seed{seed}"), seed=seed, progress=Quiet())
            seed_scores[seed] = train_one(cfg, data, len(vocab), child)
            bar.update(len(METHODS) * cfg.trials + i + 1, val=seed_scores[seed]["val_loss"])

    seed_losses = {seed: s["val_loss"] for seed, s in seed_scores.items()}
    default = seed_losses[ctx.seed]  # the same seed as every trial: the search's own baseline
    spread = float(np.std(list(seed_losses.values()), ddof=1))
    bests = {method: winners[method][1]["val_loss"] for method in METHODS}
    gain, beats = significant_gain(bests["tpe"], default, list(seed_losses.values()), cfg.sigmas)
    ctx.figure("best_so_far", search_figure(history, default, spread, cfg.sigmas), "Best val loss so far")
    ctx.figure("seed_spread", seed_figure(seed_losses, bests), "The default config across seeds")
    report_sections(ctx, cfg, winners, seed_losses, default, spread, gain, beats)
    metrics = {f"{method}_best_val_loss": bests[method] for method in METHODS}
    metrics |= {f"{method}_test_loss": winners[method][1]["test_loss"] for method in METHODS}
    metrics |= {
        "default_val_loss": default,
        "default_test_loss": seed_scores[ctx.seed]["test_loss"],
        "seed_mean": float(np.mean(list(seed_losses.values()))),
        "seed_std": spread,
        "gain_over_default": gain,
        "beats_default": float(beats),
        "trials": float(cfg.trials),
    }
    return metrics


def report_sections(
    ctx: RunContext,
    cfg: Config,
    winners: dict,
    seed_losses: dict[int, float],
    default: float,
    spread: float,
    gain: float,
    beats: bool,
) -> None:
    rows = [f"| default (l2 quick) | {default:.4f} | — | {cfg.lr:.3g} | {cfg.n_hidden} | {cfg.n_embd} |"]
    for method, (params, scores) in winners.items():
        rows.append(
            f"| {method} | {scores['val_loss']:.4f} | {scores['test_loss']:.4f} | "
            + " | ".join(f"{params[k]:.3g}" for k in SPACE)
            + " |"
        )
    ctx.section(
        "Best configuration per method vs the default",
        f"{cfg.trials} trials per method, {cfg.steps} steps each, seed {ctx.seed} for every trial; each "
        "trial is a child run of this one.\n\n"
        "| method | val loss | test loss | "
        + " | ".join(SPACE)
        + " |\n|---|---|---|"
        + "---|" * len(SPACE)
        + "\n"
        + "\n".join(rows),
    )
    verdict = "beats" if beats else "does not beat"
    ctx.section(
        "One config, several seeds",
        "| seed | val loss |\n|---|---|\n"
        + "\n".join(f"| {s} | {v:.4f} |" for s, v in seed_losses.items())
        + f"\n\nSeed std {spread:.4f} (n - 1), range {np.ptp(list(seed_losses.values())):.4f}."
        f" TPE's best val loss is {gain:.4f} lower than the default's (negative: higher); it {verdict} the "
        f"default by more than {cfg.sigmas:g} × the seed std ({cfg.sigmas * spread:.4f}).",
    )
