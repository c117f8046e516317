"""The experiment manager measured (issue 18, lab p1): what `dlp sweep` finds for l2's quick preset.

    python benchmarks/p1_sweep.py [--trials 24] [--seeds 5] [--workers 2]

1. The quick preset as shipped, trained with `--seeds` seeds: its val loss at the default seed, and the
   spread (standard deviation) of that one config over seeds: what a single run's number is worth.
2. A TPE sweep of `--trials` trials over SPACE with `--workers` processes, timed (trials per minute).
3. A random sweep of the same budget over the same space.
The sweep must beat the default by more than two seed standard deviations to count as a finding.
Embedded names, one torch thread per process, every trial an ordinary tracked run under a fresh DLP_HOME
(a temporary directory unless DLP_HOME is set). Writes benchmarks/results/p1.json.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402

SPACE = ("lr=1e-3:3e-2:log", "n_hidden=64:512:log", "n_embd=4:24", "weight_decay=0.01:0.3:log")


def default_over_seeds(seeds: int) -> list[float]:
    """l2 quick as shipped, one run per seed (the first is the default seed, 1337)."""
    from dlpractice.runner import RunSpec, start_run

    losses = []
    for seed in range(1337, 1337 + seeds):
        outcome = start_run(
            RunSpec("l2", "quick", data="embedded", device="cpu", seed=seed, origin="benchmark")
        )
        print(f"default, seed {seed}: val_loss {outcome.value:.4f} ({outcome.seconds:.0f} s)", flush=True)
        losses.append(outcome.value)
    return losses


def sweep(method: str, trials: int, workers: int) -> tuple[float, float, int]:
    """(best val loss, minutes, complete trials) of one sweep of l2 quick over SPACE."""
    from dlpractice.sweep.engine import run_sweep
    from dlpractice.sweep.plan import plan_sweep

    budget = (
        {"random": trials, "optuna_trials": None}
        if method == "random"
        else {"random": None, "optuna_trials": trials}
    )
    plan = plan_sweep("l2", "quick", [], list(SPACE), data="embedded", device="cpu", **budget)
    started = time.perf_counter()
    result = run_sweep(plan, None, None, workers, lambda line: print(line, flush=True))
    minutes = (time.perf_counter() - started) / 60
    complete = sum(row["state"] == "complete" for row in result.rows)
    print(f"{method}: best {result.best['value']:.4f} in {minutes:.1f} min ({result.report})", flush=True)
    return result.best["value"], minutes, complete


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("DLP_HOME", tempfile.mkdtemp(prefix="dlp-p1-"))
    os.environ["DLP_THREADS"] = "1"  # every trial process, the workers' included
    started = time.perf_counter()

    seeds = default_over_seeds(args.seeds)
    tpe_best, tpe_minutes, tpe_complete = sweep("tpe", args.trials, args.workers)
    random_best, random_minutes, _ = sweep("random", args.trials, args.workers)
    seed_std = statistics.stdev(seeds)
    figures = {
        "default_val_loss": seeds[0],
        "seed_mean_val_loss": statistics.mean(seeds),
        "seed_std": seed_std,
        "random_best_val_loss": random_best,
        "gain_over_default": seeds[0] - tpe_best,
        "beats_default_by_2_std": float(seeds[0] - tpe_best > 2 * seed_std),
        "trials_per_minute": tpe_complete / tpe_minutes,
        "workers": args.workers,
        "tpe_minutes": tpe_minutes,
        "random_minutes": random_minutes,
    }
    path = write_result(
        "p1",
        metric="tpe_best_val_loss",
        value=tpe_best,
        bar=None,
        goal="min",
        seconds=time.perf_counter() - started,
        data=f"embedded names; l2 quick; {args.trials} trials over {', '.join(SPACE)}; {args.seeds} seeds",
        figures=figures,
        threads=1,
    )
    print(path)


if __name__ == "__main__":
    main()
