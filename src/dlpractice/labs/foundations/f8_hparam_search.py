"""F8 · Hyper-parameter search: grid, random and Bayesian (Optuna TPE) search with the same budget.

f6's MLP on the digits (trained on a `train_subset` of the training split, so regularisation matters) is
tuned over learning rate and weight decay (log scale), width (log scale, integer), depth and dropout. Each
method gets `trials` trials, scored by validation accuracy; the test split only reports the winners. Grid
search (the smallest centred grid with >= `trials` points, seeded order, cut at the budget) and random
search (each axis on its own scale) decide every configuration up front: it is queued in the study at
once. TPE (Optuna's Tree-structured Parzen Estimator) starts with `tpe_startup` random trials, then
proposes where good trials cluster, counting running trials as bad (constant liar).

Each method is an Optuna study in the run's SQLite file (optuna.db). `dlp run --resume RUN` keeps the
finished trials, queues a trial cut off by a crash again, and runs only the missing ones. `--set workers=N`
runs trials in N processes against that file (one torch thread each); only this process writes to the
tracker. Figures: best val accuracy so far by trial; parallel coordinates per method. Simplified: one seed
per trial (close configurations rank partly by noise); several workers make TPE depend on timing.
"""

from __future__ import annotations

import itertools
import math
import multiprocessing
import signal
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed, wait
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import matplotlib.pyplot as plt
import numpy as np
import optuna
import torch
from optuna.samplers import BaseSampler, RandomSampler, TPESampler
from optuna.trial import FrozenTrial, TrialState

from dlpractice.checkpoint import TrainState, capture_rng, save_checkpoint
from dlpractice.config import NonNegativeInt, PositiveInt
from dlpractice.data.digits import load_digits
from dlpractice.errors import RunInterrupted
from dlpractice.models.mlp import MLP, error_rate, to_torch, train_classifier
from dlpractice.registry import lab
from dlpractice.studies import open_storage
from dlpractice.train import StopFlag

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f8", requires=("f6",), data=("digits",), metric="best_test_accuracy", goal="max")

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
STUDY_FILE = "optuna.db"  # in the run directory: every method's study, what a resumed run continues
Splits = dict[str, tuple[torch.Tensor, torch.Tensor]]


@dataclass
class Config:
    trials: PositiveInt = 24  # the budget of each method
    train_subset: PositiveInt = 300  # training images used (of 1,078), as in f6
    steps: PositiveInt = 600
    batch_size: PositiveInt = 32
    tpe_startup: NonNegativeInt = 8  # random trials before TPE starts modelling
    workers: PositiveInt = 1  # processes running trials in parallel against the study's SQLite file


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


def train_and_score(config: dict, splits: Splits, cfg: Config, seed: int) -> dict[str, float]:
    """Train f6's MLP with this configuration; the same init and batches for every trial."""
    torch.manual_seed(seed)
    model = MLP(64, 10, width=config["width"], depth=config["depth"], dropout=config["dropout"])
    lr, weight_decay = config["lr"], config["weight_decay"]
    train_classifier(model, splits, cfg.steps, cfg.batch_size, lr, weight_decay=weight_decay, seed=seed)
    return {s: 1 - error_rate(model, *splits[s]) for s in ("val", "test")}


def open_study(path: Path, method: str, sampler: BaseSampler | None = None) -> optuna.Study:
    """The method's study in the SQLite file, created on first use (open_storage: why workers share it)."""
    storage = open_storage(f"sqlite:///{path}")
    return optuna.create_study(
        storage=storage, study_name=method, sampler=sampler, direction="maximize", load_if_exists=True
    )


def queue_trials(study: optuna.Study, method: str, cfg: Config, seed: int) -> None:
    """Queue again a trial a crash cut off. Grid and random search decide every configuration up front:
    queue those not yet in the study. (TPE decides one trial at a time.)"""
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):  # no worker runs yet
        study.tell(trial.number, state=TrialState.FAIL)
        study.enqueue_trial(trial.params)
    rng = np.random.default_rng(seed)
    planned = {
        "grid": grid_configs(cfg.trials, seed),
        "random": [sample_config(rng) for _ in range(cfg.trials)],
    }
    for config in planned.get(method, []):
        study.enqueue_trial(config, skip_if_exists=True)


class Job(NamedTuple):  # one trial, as a worker process receives it
    path: Path  # the SQLite file
    method: str
    cfg: Config
    splits: Splits
    run_seed: int  # every model's init and batches
    sampler_seed: int  # a fresh stream per trial: a resumed or parallel sampler must not repeat itself


def run_trial(job: Job) -> None:
    """Take a trial from the study (the next queued configuration, else the sampler's), train, report."""
    if job.method == "tpe":
        sampler = TPESampler(seed=job.sampler_seed, n_startup_trials=job.cfg.tpe_startup, constant_liar=True)
    else:  # never consulted: the queued trials fix every parameter
        sampler = RandomSampler(seed=job.sampler_seed)
    study = open_study(job.path, job.method, sampler)
    trial = study.ask()
    scores = train_and_score(suggest(trial), job.splits, job.cfg, job.run_seed)
    trial.set_user_attr("test_accuracy", scores["test"])
    study.tell(trial, scores["val"])


def start_worker() -> None:
    """A worker process: one torch thread; Ctrl-C is for the parent, which stops the search."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)


def run_in_processes(jobs: list[Job], pool: ProcessPoolExecutor, trial_done: Callable[[], None]) -> None:
    """The trials in the pool's processes. If one fails or trial_done raises, the running ones finish."""
    futures = [pool.submit(run_trial, job) for job in jobs]
    try:
        for future in as_completed(futures):
            future.result()  # a worker's error is raised here
            trial_done()
    finally:
        for future in futures:
            future.cancel()  # those not started yet
        wait(futures)


def search(
    method: str, cfg: Config, ctx, splits: Splits, stop: StopFlag, bar, offset: int, pool
) -> tuple[list[tuple[dict, dict[str, float]]], int]:
    """Run the method's missing trials (here, or in the pool's processes), tracking each as it finishes.
    Return every finished trial as (config, scores) and how many ran in this session."""
    path = ctx.run_dir / STUDY_FILE
    study = open_study(path, method)
    queue_trials(study, method, cfg, ctx.seed)

    def finished() -> list[FrozenTrial]:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def track_new_trials() -> None:
        tracked = set(study.user_attrs.get("tracked", []))  # kept in the study: a resumed run goes on
        best = max((t.value for t in finished() if t.number in tracked), default=0.0)
        for trial in finished():
            if trial.number not in tracked:
                tracked.add(trial.number)
                best = max(best, trial.value)
                metrics = {f"{method}_val_accuracy": trial.value, f"{method}_best_val_accuracy": best}
                ctx.tracker.log_metrics(len(tracked) - 1, metrics)
                bar.update(offset + len(tracked), loss=1 - trial.value, val=best)
        ctx.tracker.flush()
        study.set_user_attr("tracked", sorted(tracked))

    def trial_done() -> None:
        track_new_trials()
        if stop.requested:
            raise RunInterrupted(f"stopped in the {method} search at {len(finished())}/{cfg.trials} trials")

    done = len(finished())
    bar.update(offset + done)
    seeds = np.random.SeedSequence([ctx.seed, done]).generate_state(cfg.trials - done)
    jobs = [Job(path, method, cfg, splits, ctx.seed, int(seed)) for seed in seeds]
    try:
        if pool is None:
            for job in jobs:
                run_trial(job)
                trial_done()
        else:
            run_in_processes(jobs, pool, trial_done)
    finally:
        track_new_trials()  # also those that finished while a stop waited for them
    trials = sorted(finished(), key=lambda t: t.number)
    return [(t.params, {"val": t.value, "test": t.user_attrs["test_accuracy"]}) for t in trials], len(jobs)


def mark_resumable(ctx) -> None:
    """`dlp run --resume` wants a checkpoint; this lab's state is optuna.db, so its checkpoint is empty."""
    if not ctx.checkpoint_path.exists():
        nothing = {"model": {}, "optimizer": {"state": {}, "param_groups": []}, "scheduler": {}}
        state = TrainState(0, **nothing, batch_rng=torch.Generator().get_state(), rng=capture_rng())
        save_checkpoint(ctx.checkpoint_path, state)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    digits = load_digits(ctx.data)
    ctx.record_data({**digits.describe(), "train_subset": cfg.train_subset})
    splits = {s: to_torch(*digits.arrays(s)) for s in ("train", "val", "test")}
    splits["train"] = tuple(t[: cfg.train_subset] for t in splits["train"])
    mark_resumable(ctx)

    history: dict[str, list[tuple[dict, dict[str, float]]]] = {}  # method -> [(config, scores)]
    ran: dict[str, int] = {}  # method -> trials run in this session
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no forked torch or SQLite state
    workers = ProcessPoolExecutor(cfg.workers, context, start_worker) if cfg.workers > 1 else nullcontext()
    with StopFlag() as stop, ctx.progress(total=3 * cfg.trials + 1) as bar, workers as pool:
        for i, method in enumerate(METHODS):
            history[method], ran[method] = search(method, cfg, ctx, splits, stop, bar, i * cfg.trials, pool)
        default = train_and_score(DEFAULT, splits, cfg, ctx.seed)
        bar.update(3 * cfg.trials + 1, loss=1 - default["val"], val=default["val"])

    metrics = {"default_val_accuracy": default["val"], "default_test_accuracy": default["test"]}
    winners = {"default (f6 baseline)": (DEFAULT, default)}
    for method in METHODS:
        winners[method] = max(history[method], key=lambda item: item[1]["val"])  # first of ties
        metrics[f"{method}_trials"] = float(len(history[method]))
        metrics[f"{method}_best_val_accuracy"] = winners[method][1]["val"]
        metrics[f"{method}_test_accuracy"] = winners[method][1]["test"]
    rows = [
        f"| {name} | {scores['val']:.3f} | {scores['test']:.3f} | "
        + " | ".join(f"{config[k]:.3g}" for k in SPACE)
        for name, (config, scores) in winners.items()
    ]
    chosen = max(METHODS, key=lambda m: winners[m][1]["val"])  # picked on validation, reported on test
    metrics["best_test_accuracy"] = winners[chosen][1]["test"]
    ctx.section(
        "Best configuration per method vs the default",
        f"{cfg.trials} trials per method, {cfg.steps} steps each, {cfg.train_subset} training images, "
        f"{cfg.workers} worker process(es); {sum(ran.values())} of the {3 * cfg.trials} trials ran in this "
        f"session (the others before an interruption; all are in {STUDY_FILE}). "
        f"Chosen on validation accuracy: **{chosen}**.\n\n"
        "| method | val accuracy | test accuracy | " + " | ".join(SPACE) + " |\n"
        "|---|---|---|" + "---|" * len(SPACE) + "\n" + " |\n".join(rows) + " |",
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    for method in METHODS:
        best = np.maximum.accumulate([s["val"] for _, s in history[method]])
        ax.plot(range(1, len(best) + 1), best, drawstyle="steps-post", label=method)
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
        ax.vlines(range(len(axis_names)), -0.05, 1.05, color="black", linewidth=0.5)
        ax.set_xticks(range(len(axis_names)), axis_names, rotation=30)
        ax.set(title=method, ylim=(-0.05, 1.05))
    axes[0].set_ylabel("position on the axis (low -> high)")
    fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), cax=axes[3], label="val accuracy")
    ctx.figure("parallel_coordinates", fig, "Parallel coordinates of every trial, coloured by val accuracy")
    return metrics
