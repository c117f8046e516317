"""R2 · Reinforcement learning on games: DQN, REINFORCE and PPO from scratch on gymnasium's CartPole.

Three ways to learn to act, trained on the same game (CartPole-v1, or Acrobot-v1 with `--set game=...`)
for several training seeds each (models/rl.py):
  - DQN: a Q-network fitted to TD targets from a target network, on minibatches from a replay buffer,
    acting epsilon-greedily; the Huber loss; double DQN by default.
  - REINFORCE: the policy gradient with reward-to-go returns and a learned value baseline.
  - PPO: rollouts scored with GAE(lambda), several epochs of minibatches on the clipped surrogate, a value
    loss and an entropy bonus.
Each trained agent is scored by its mean return over greedy episodes on environment seeds training never
used; the spread is across training seeds. A random policy is the floor. "Solved" is the first time the mean
of `solve_window` consecutive training episodes reaches the game's threshold (CartPole: 475 of 500): the
env steps and wall seconds it took. Everything is seeded, so the same command gives the same numbers.
Simplified: one environment at a time, small MLPs, no observation normalisation, no hyper-parameter search
beyond the few settings the article lists.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import gymnasium as gym
import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from dlpractice.checkpoint import save_weights
from dlpractice.config import (
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
)
from dlpractice.models import rl
from dlpractice.registry import lab
from dlpractice.report import markdown_table

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("r2", requires=("f7",), metric="ppo_eval_return", goal="max")
Algorithm = Literal["dqn", "reinforce", "ppo"]
TRAIN = {"dqn": rl.train_dqn, "reinforce": rl.train_reinforce, "ppo": rl.train_ppo}
COLOURS = {"dqn": "tab:blue", "reinforce": "tab:orange", "ppo": "tab:green", "random": "tab:grey"}
EVAL_SEED = 1_000_000  # evaluation episodes reset with EVAL_SEED + i; training seeds are the run's seed + k


@dataclass
class Config:
    game: Literal["CartPole-v1", "Acrobot-v1"] = "CartPole-v1"
    algorithms: tuple[Algorithm, ...] = ("dqn", "reinforce", "ppo")
    seeds: PositiveInt = 3  # training seeds per algorithm: the spread of every number
    eval_episodes: PositiveInt = 10  # greedy episodes per trained agent
    solve_window: PositiveInt = 10  # consecutive training episodes whose mean return must reach the threshold
    hidden: PositiveInt = 64  # units in each of the two hidden layers of every network
    gamma: Probability = 0.99
    dqn_steps: PositiveInt = 50_000  # env steps
    dqn_lr: PositiveFloat = 1e-3
    dqn_batch_size: PositiveInt = 64
    dqn_buffer: PositiveInt = 50_000  # transitions the replay buffer keeps
    dqn_learning_starts: NonNegativeInt = 1000  # env steps of pure exploration before the first update
    dqn_train_every: PositiveInt = 4  # env steps per gradient step
    dqn_target_every: PositiveInt = 500  # env steps between copies of the online net into the target net
    dqn_explore_fraction: Fraction = 0.2  # share of training over which epsilon falls from 1
    dqn_final_epsilon: Probability = 0.05
    dqn_double: bool = True
    pg_steps: PositiveInt = 100_000  # REINFORCE's env steps
    pg_batch_steps: PositiveInt = 2000  # env steps (whole episodes) per policy-gradient step
    pg_lr: PositiveFloat = 5e-3
    ppo_steps: PositiveInt = 50_000
    ppo_rollout: PositiveInt = 512  # env steps per PPO update
    ppo_epochs: PositiveInt = 10  # passes over each rollout
    ppo_batch_size: PositiveInt = 64
    ppo_lr: PositiveFloat = 1e-3  # decays linearly to 0
    ppo_lambda: Fraction = 0.95  # GAE's lambda
    ppo_clip: Fraction = 0.2
    ppo_value_coef: NonNegativeFloat = 0.5
    ppo_entropy_coef: NonNegativeFloat = 0.0
    n_frames: PositiveInt = 8  # frames in the strip of the trained agent playing


PRESETS = {
    "smoke": {
        "seeds": 2,
        "eval_episodes": 2,
        "hidden": 16,
        "dqn_steps": 300,
        "dqn_learning_starts": 100,
        "dqn_target_every": 50,
        "pg_steps": 300,
        "pg_batch_steps": 100,
        "ppo_steps": 256,
        "ppo_rollout": 128,
        "ppo_epochs": 2,
        "n_frames": 4,
    },
    "quick": {"seeds": 2, "dqn_steps": 30_000, "pg_steps": 60_000, "ppo_steps": 30_000},
    "full": {"seeds": 3},
}


@dataclass
class SeedResult:
    """One algorithm trained with one seed, then evaluated greedily."""

    seed: int
    curve: rl.Curve
    eval_returns: np.ndarray  # (N,) one greedy episode per evaluation seed
    seconds: float  # training wall time
    solved: tuple[int, float] | None  # (env steps, seconds) when training first reached the threshold


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    _, _, threshold = rl.game_shape(cfg.game)
    origin = f"gymnasium {gym.__version__} simulator"
    ctx.record_data(
        {"data_source": "embedded", "data_origin": origin, "game": cfg.game, "threshold": threshold}
    )
    eval_seeds = [EVAL_SEED + i for i in range(cfg.eval_episodes)]
    torch.optim.Adam(
        [torch.zeros(1, requires_grad=True)]
    )  # the first Adam imports torch._dynamo: not training
    results: dict[str, list[SeedResult]] = {}
    agents: dict[str, nn.Module] = {}  # each algorithm's first-seed agent: saved, and drawn playing
    with ctx.progress(total=len(cfg.algorithms) * cfg.seeds) as bar:
        for a, algorithm in enumerate(cfg.algorithms):
            child = ctx.child(algorithm)
            results[algorithm] = []
            for k in range(cfg.seeds):
                result, model = train_and_evaluate(algorithm, ctx.seed + k, cfg, eval_seeds, threshold)
                results[algorithm].append(result)
                child.tracker.log_metrics(k, {"eval_return": float(result.eval_returns.mean())})
                if k == 0:
                    save_weights(child.run_dir / "model.safetensors", model)
                    agents[algorithm] = model
                bar.update(a * cfg.seeds + k + 1, loss=float(result.eval_returns.mean()), val=float("nan"))
    random_returns = rl.evaluate(cfg.game, eval_seeds, lambda seed: rl.random_policy(cfg.game, seed))
    report(results, random_returns, threshold, cfg, ctx)
    shown = "ppo" if "ppo" in agents else cfg.algorithms[0]
    ctx.figure(
        "frames", frames_figure(cfg.game, agents[shown], eval_seeds[0], cfg.n_frames), f"{shown} playing"
    )
    return summarise(results, random_returns, threshold)


def train_and_evaluate(
    algorithm: str, seed: int, cfg: Config, eval_seeds: list[int], threshold: float
) -> tuple[SeedResult, nn.Module]:
    start = time.perf_counter()
    model, curve = TRAIN[algorithm](cfg.game, seed, cfg)
    seconds = time.perf_counter() - start
    returns = rl.evaluate(cfg.game, eval_seeds, lambda _: rl.greedy(model))
    return SeedResult(seed, curve, returns, seconds, curve.first_solved(threshold, cfg.solve_window)), model


def summarise(results: dict[str, list[SeedResult]], random_returns: np.ndarray, threshold: float) -> dict:
    """Per algorithm: greedy return (mean over training seeds of each agent's mean, and its spread across
    seeds), how many seeds solved the game in training, and the env steps and seconds that took."""
    metrics = {"random_eval_return": float(random_returns.mean()), "solve_threshold": threshold}
    for algorithm, seeds in results.items():
        per_seed = np.array([r.eval_returns.mean() for r in seeds])  # (S,)
        solved = [r.solved for r in seeds if r.solved is not None]
        metrics |= {
            f"{algorithm}_eval_return": float(per_seed.mean()),
            f"{algorithm}_eval_return_std": float(per_seed.std()),
            f"{algorithm}_eval_return_min": float(min(r.eval_returns.min() for r in seeds)),
            f"{algorithm}_solved_seeds": float(len(solved)),
            f"{algorithm}_train_seconds": float(np.mean([r.seconds for r in seeds])),
        }
        if solved:  # averaged over the seeds that solved it; the count above says how many
            metrics[f"{algorithm}_steps_to_solve"] = float(np.mean([steps for steps, _ in solved]))
            metrics[f"{algorithm}_seconds_to_solve"] = float(np.mean([seconds for _, seconds in solved]))
    return metrics


def report(
    results: dict[str, list[SeedResult]], random_returns: np.ndarray, threshold: float, cfg: Config, ctx
) -> None:
    rows = [
        [
            algorithm,
            r.seed,
            f"{r.eval_returns.mean():.1f}",
            f"{r.eval_returns.min():.0f}",
            len(r.curve.returns),
            f"{r.seconds:.1f}",
            f"{r.solved[0]:,} steps, {r.solved[1]:.1f} s" if r.solved else "not solved",
        ]
        for algorithm, seeds in results.items()
        for r in seeds
    ]
    rows.append(["random", "-", f"{random_returns.mean():.1f}", f"{random_returns.min():.0f}", "-", "-", "-"])
    header = ["algorithm", "seed", "eval return (mean)", "eval return (min)", "episodes", "train s", "solved"]
    ctx.section(
        f"Each training seed on {cfg.game} (solved: threshold {threshold:g})", markdown_table(header, rows)
    )
    window = cfg.solve_window
    ctx.figure("curves", curves_figure(results, threshold, window, random_returns), "Learning curves")
    ctx.figure("eval", eval_figure(results, random_returns, threshold), "Greedy evaluation returns")


def curves_figure(
    results: dict[str, list[SeedResult]], threshold: float, window: int, random_returns: np.ndarray
) -> plt.Figure:
    """Mean return of the last `window` training episodes vs env steps: mean and min-max across seeds."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for algorithm, seeds in results.items():
        last = max((r.curve.steps[-1] for r in seeds if r.curve.steps), default=1)
        grid = np.linspace(0, last, 200)
        runs = np.stack(
            [on_grid(r.curve, window, grid) for r in seeds]
        )  # (S, 200), NaN before an episode ends
        seen = ~np.isnan(runs).all(0)  # (200,) grid steps after some seed's first episode
        kept = runs[:, seen]
        mean, low, high = np.nanmean(kept, 0), np.nanmin(kept, 0), np.nanmax(kept, 0)
        ax.plot(grid[seen], mean, color=COLOURS[algorithm], label=f"{algorithm} ({len(seeds)} seeds)")
        ax.fill_between(grid[seen], low, high, color=COLOURS[algorithm], alpha=0.2)
    ax.axhline(threshold, color="black", ls="--", lw=1, label=f"solved ({threshold:g})")
    ax.axhline(random_returns.mean(), color=COLOURS["random"], ls=":", lw=1, label="random policy")
    ax.set(xlabel="environment steps", ylabel=f"return (mean of last {window} episodes)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def on_grid(curve: rl.Curve, window: int, grid: np.ndarray) -> np.ndarray:
    """(G,) the moving-average return after the last episode finished by each grid step (NaN before any)."""
    finished = np.searchsorted(curve.steps, grid, side="right") - 1  # (G,) index of the last finished episode
    average = np.concatenate([[np.nan], curve.moving_average(window)])
    return average[finished + 1]


def eval_figure(
    results: dict[str, list[SeedResult]], random_returns: np.ndarray, threshold: float
) -> plt.Figure:
    """Greedy return per algorithm: a bar at the mean over seeds, a dot per seed, the random policy's bar."""
    names = [*results, "random"]
    per_seed = [[r.eval_returns.mean() for r in seeds] for seeds in results.values()] + [
        [random_returns.mean()]
    ]
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for i, (name, values) in enumerate(zip(names, per_seed)):
        ax.bar(i, np.mean(values), color=COLOURS[name], alpha=0.7, edgecolor="black")
        ax.scatter(np.full(len(values), i), values, color="black", s=12, zorder=3)
        ax.text(i, np.mean(values), f"{np.mean(values):.0f}", ha="center", va="bottom", fontsize=8)
    ax.axhline(threshold, color="black", ls="--", lw=1)
    ax.set_xticks(range(len(names)), names)
    ax.set(ylabel="greedy return (unseen seeds)")
    ax.grid(axis="y", alpha=0.3)
    return fig


def frames_figure(game: str, agent: nn.Module, seed: int, n_frames: int) -> plt.Figure:
    """One greedy episode of the agent at even intervals, drawn from its observations (no pygame needed)."""
    total, observations = rl.play(game, seed, rl.greedy(agent))
    picked = np.linspace(0, len(observations) - 1, n_frames).round().astype(int)
    fig, axes = plt.subplots(1, n_frames, figsize=(1.6 * n_frames, 2.0), squeeze=False)
    draw = draw_cartpole if game.startswith("CartPole") else draw_acrobot
    for ax, t in zip(axes[0], picked):
        draw(ax, observations[t])
        ax.set_title(f"t = {t}", fontsize=8)
        ax.set_aspect("equal")
        ax.axis("off")
    fig.suptitle(f"{game}: one greedy episode, return {total:g}", fontsize=9)
    return fig


def draw_cartpole(ax: plt.Axes, obs: np.ndarray) -> None:
    """obs = (cart position, cart velocity, pole angle, pole angular velocity); the track ends at +-2.4."""
    x, theta = obs[0], obs[2]
    ax.plot([-2.4, 2.4], [0, 0], color="grey", lw=1)
    ax.add_patch(plt.Rectangle((x - 0.25, 0), 0.5, 0.3, color="tab:blue"))
    ax.plot([x, x + np.sin(theta)], [0.3, 0.3 + np.cos(theta)], color="tab:brown", lw=3)
    ax.set(xlim=(-2.5, 2.5), ylim=(-0.2, 1.5))


def draw_acrobot(ax: plt.Axes, obs: np.ndarray) -> None:
    """obs = (cos, sin of the first joint's angle, cos, sin of the second's, two angular velocities); the
    free end must rise one link's length above the pivot (the dashed line)."""
    first, second = np.arctan2(obs[1], obs[0]), np.arctan2(obs[3], obs[2])
    elbow = np.array([np.sin(first), -np.cos(first)])
    tip = elbow + [np.sin(first + second), -np.cos(first + second)]
    ax.plot([0, elbow[0], tip[0]], [0, elbow[1], tip[1]], color="tab:blue", lw=3, marker="o", ms=3)
    ax.plot([-2.1, 2.1], [1, 1], color="black", ls="--", lw=1)
    ax.set(xlim=(-2.1, 2.1), ylim=(-2.1, 2.1))
