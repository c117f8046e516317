"""Run labs' full presets on real data and write benchmarks/results/<lab>.json.

    python benchmarks/run_quality.py l1 l2 [--data-dir DIR] [--threads N] [--preset full]

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

REPO = Path(__file__).resolve().parents[1]


def default_data_dir() -> str | None:
    if os.environ.get("DLP_DATA_DIR"):
        return os.environ["DLP_DATA_DIR"]
    shared = REPO.parent / "shared" / "data"
    return str(shared) if shared.is_dir() else None


def run_one(lab: str, preset: str, data_dir: str | None, threads: int) -> Path:
    """Run one lab in a child process; the child writes the result file when it finishes."""
    code = (
        "import sys, time, json; sys.path.insert(0, 'benchmarks');"
        "from dlpractice.runner import start_run; from results_io import write_result;"
        f"t = time.perf_counter(); o = start_run({lab!r}, {preset!r}, data='real', data_dir={data_dir!r},"
        f" threads={threads}, device='cpu');"
        "s = time.perf_counter() - t;"
        "figures = {k: v for k, v in o.metrics.items() if k != o.lab.metric};"
        "figures['run_seconds'] = o.seconds;"
        "p = write_result(o.lab.id, metric=o.lab.metric, value=o.value, bar=o.lab.bar, goal=o.lab.goal,"
        " seconds=s, data=o.record['data_source'], figures=figures, threads=o.record['threads']);"
        "r = json.loads(p.read_text()); r['run_id'] = o.run_id; r['preset'] = " + repr(preset) + ";"
        "p.write_text(json.dumps(r, indent=2) + chr(10)); print(p)"
    )
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, capture_output=True, text=True)
    print(f"{lab}: {time.perf_counter() - started:.1f} s -> {done.stdout.strip().splitlines()[-1]}")
    return Path(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("labs", nargs="+")
    parser.add_argument("--preset", default="full")
    parser.add_argument("--data-dir", default=default_data_dir())
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    for lab in args.labs:
        path = run_one(lab, args.preset, args.data_dir, args.threads)
        result = json.loads(path.read_text())
        print(f"  {result['metric']} = {result['value']:.4f} (bar {result['bar']}, met={result['met']})")


if __name__ == "__main__":
    main()
