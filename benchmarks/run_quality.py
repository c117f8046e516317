"""Run labs' full presets on real data and write benchmarks/results/<lab>.json.

    python benchmarks/run_quality.py l1 l2 [--data-dir DIR] [--threads N] [--preset full]
    python benchmarks/run_quality.py l8 --set steps=1500 --set lr=6e-3 --name l8-fast   # a variant
    python benchmarks/run_quality.py n8 --data embedded   # a lab whose real dataset is not on disk

The data directory defaults to $DLP_DATA_DIR, else ../shared/data beside the repository when it exists.
Runs are tracked like any other (under $DLP_HOME). Each lab runs in its own process so peak memory is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> str | None:
    if os.environ.get("DLP_DATA_DIR"):
        return os.environ["DLP_DATA_DIR"]
    shared = REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def measure(args: argparse.Namespace) -> Path:
    """Run args' one lab here, in this process, and write its result file (`--name`, else the lab id)."""
    from dlpractice.runner import RunSpec, start_run

    lab, preset, overrides = args.labs[0], args.preset, args.set
    started = time.perf_counter()
    where = {"data": args.data, "data_dir": args.data_dir, "threads": args.threads, "device": "cpu"}
    outcome = start_run(RunSpec(lab, preset, tuple(overrides), **where))
    seconds = time.perf_counter() - started
    figures = {k: v for k, v in outcome.metrics.items() if k != outcome.lab.metric}
    figures["run_seconds"] = outcome.seconds
    path = write_result(
        args.name or outcome.lab.id,
        metric=outcome.lab.metric,
        value=outcome.value,
        bar=outcome.lab.bar,
        goal=outcome.lab.goal,
        seconds=seconds,
        data=outcome.record.data_source,
        figures=figures,
        threads=outcome.record.spec.threads,
    )
    result = json.loads(path.read_text())
    result.update(run_id=outcome.run_id, preset=preset, overrides=overrides)
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def run_one(args: argparse.Namespace, lab: str) -> Path:
    """Run one lab in a child process (`--child`), so the peak memory recorded is that lab's alone."""
    command = [
        sys.executable,
        __file__,
        lab,
        "--child",
        "--preset",
        args.preset,
        "--threads",
        str(args.threads),
        "--data",
        args.data,
    ]
    if args.data_dir:
        command += ["--data-dir", args.data_dir]
    if args.name:
        command += ["--name", args.name]
    for override in args.set:
        command += ["--set", override]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{lab} failed: {(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    print(f"{lab}: {time.perf_counter() - started:.1f} s -> {path}")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labs", nargs="+")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--data", default="real", choices=("real", "embedded"), help="embedded: no real copy")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override the preset")
    parser.add_argument("--name", help="result file name (default: the lab id); for a variant of a preset")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:  # one lab, measured in this process; the parent reads the path printed last
        print(measure(args))
        return
    if args.name and len(args.labs) > 1:
        parser.error("--name names one lab's result; give one lab")
    for lab in args.labs:
        path = run_one(args, lab)
        result = json.loads(path.read_text())
        # a variant may lack the headline (r4 on the instruction records has no answer accuracy)
        value = "none" if result["value"] is None else f"{result['value']:.4f}"
        print(f"  {result['metric']} = {value} (bar {result['bar']}, met={result['met']})")


if __name__ == "__main__":
    main()
