"""Write one benchmark result as `benchmarks/results/<name>.json`, the format the README table reads."""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from pathlib import Path

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def machine_description() -> str:
    """CPU model, usable cores, memory and the 1-minute load, so a figure can be read in context."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    load = os.getloadavg()[0]
    return f"{cpu}, {cores} cores, {mem_gib:.0f} GiB, load {load:.2f}, Python {sys.version.split()[0]}"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=RESULTS_DIR.parent, capture_output=True, text=True
        )
    except OSError:
        return "unknown"
    return out.stdout.strip() or "unknown"


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB (Linux reports KiB)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def write_result(
    name: str,
    *,
    metric: str,
    value: float,
    bar: float | None,
    goal: str,
    seconds: float,
    data: str,
    figures: dict[str, float] | None = None,
    threads: int | None = None,
) -> Path:
    """Write the result file; `met` is computed here from value, bar and goal, never passed in."""
    if goal not in ("min", "max"):
        raise ValueError(f"goal must be 'min' or 'max', not {goal!r}")
    met = None if bar is None else (value <= bar if goal == "min" else value >= bar)
    result = {
        "lab": name,
        "metric": metric,
        "value": value,
        "bar": bar,
        "goal": goal,
        "met": met,
        "seconds": round(seconds, 2),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "data": data,
        "threads": threads,
        "machine": machine_description(),
        "commit": git_commit(),
        "figures": figures or {},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    path = RESULTS_DIR / f"{name}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path
