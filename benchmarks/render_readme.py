"""Regenerate the README's results table from benchmarks/results/*.json.

    python benchmarks/render_readme.py [--check]

The table sits between the markers `<!-- results:start -->` and `<!-- results:end -->`. `--check` exits 1
when the README is out of date (CI-friendly) instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"


def _number(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def table(results: list[dict]) -> str:
    lines = [
        "| lab | metric | value | bar | met | data | seconds | peak MB | figures | machine | commit |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        bar = "—" if r["bar"] is None else f"{'≤' if r['goal'] == 'min' else '≥'} {r['bar']}"
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        figures = ", ".join(f"{k} {_number(v)}" for k, v in r.get("figures", {}).items())
        lines.append(
            f"| {r['lab']} | {r['metric']} | {_number(r['value'])} | {bar} | {met} | {r['data']} | "
            f"{r['seconds']:.0f} | {r['peak_rss_mb']:.0f} | {figures} | {r['machine']} | {r['commit']} |"
        )
    return "\n".join(lines)


def render(readme: str, results: list[dict]) -> str:
    if START not in readme or END not in readme:
        raise SystemExit(f"README.md lacks the markers {START} and {END}")
    head, rest = readme.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table(results)}\n{END}{tail}"


def load_results() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(RESULTS.glob("*.json"))]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if the README table is out of date")
    args = parser.parse_args()
    path = ROOT / "README.md"
    current = path.read_text()
    updated = render(current, load_results())
    if args.check:
        sys.exit(0 if updated == current else 1)
    path.write_text(updated)
    print(f"wrote the results table of {path}")


if __name__ == "__main__":
    main()
