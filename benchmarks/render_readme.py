"""Regenerate the README's results table from benchmarks/results/*.json.

    python benchmarks/render_readme.py [--check]

The table of every result sits between the markers `<!-- results:start -->` and `<!-- results:end -->`;
the language-model track's table (l1-l8 beside the published figures) between `<!-- lm:start -->` and
`<!-- lm:end -->`; ours beside the peers (benchmarks/results/peers.json, written by benchmarks/peers.py,
one row a pair and not repeated in the table of every result) between `<!-- peers:start -->` and
`<!-- peers:end -->`. `--check` exits 1 when the README is out of date (CI-friendly) instead of writing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- results:start -->", "<!-- results:end -->"
LM_START, LM_END = "<!-- lm:start -->", "<!-- lm:end -->"
PEERS_START, PEERS_END = "<!-- peers:start -->", "<!-- peers:end -->"
LM_LABS = [f"l{i}" for i in range(1, 9)]
# lab -> (split, loss, where it is published): the figures the language-model labs are measured against
PUBLISHED = {
    "l2": ("val", 2.17, "makemore lecture 3, MLP"),
    "l3": ("val", 1.993, "makemore lecture 5, WaveNet"),
    "l7": ("test", 1.92, "makemore README, transformer; l7 on makemore's own split"),
    "l8": ("val", 1.88, "nanoGPT README, CPU recipe"),
}


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


def split_loss(result: dict, split: str) -> float | None:
    """A split's loss whatever the lab calls it (val_loss, val_nll); None when it was not measured."""
    values = {result["metric"]: result["value"], **result.get("figures", {})}
    return values.get(f"{split}_loss", values.get(f"{split}_nll"))


def _count(value: float | None) -> str:
    """Parameters and tokens/s as whole numbers with thousands separators."""
    return "—" if value is None else f"{value:,.0f}"


def lm_table(results: list[dict]) -> str:
    lines = [
        "| lab | params | train | val | test | CPU min | tokens/s | published | met |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted((r for r in results if r["lab"] in LM_LABS), key=lambda r: LM_LABS.index(r["lab"])):
        figures = r.get("figures", {})
        losses = [_number(split_loss(r, s)) for s in ("train", "val", "test")]
        published = "—"
        if r["lab"] in PUBLISHED:
            split, loss, source = PUBLISHED[r["lab"]]
            published = f"{loss} {split} ({source})"
        cpu_minutes = r["seconds"] * r.get("threads", 1) / 60
        met = {True: "yes", False: "**no**", None: "—"}[r["met"]]
        lines.append(
            f"| {r['lab']} | {_count(figures.get('params'))} | {' | '.join(losses)} | {cpu_minutes:.1f} | "
            f"{_count(figures.get('tokens_per_second'))} | {published} | {met} |"
        )
    return "\n".join(lines)


def peers_table(results: list[dict]) -> str:
    """Ours beside the peers, one row a pair, with the run's threads, machine and commit above."""
    run = next((r for r in results if r.get("pairs")), None)
    if run is None:
        return "No peer comparison recorded yet: run `python benchmarks/peers.py`."
    threads = f"{run['threads']} thread{'s' if run['threads'] != 1 else ''}"
    loads = [v for k, v in run["figures"].items() if "_load_" in k]
    lines = [
        f"{threads}, {run['machine']} (load {min(loads):.2f} to {max(loads):.2f} during the run), commit "
        f"{run['commit']}; tokenizers and engines: median of {run['repeats']} timings taken in turn. "
        "Peer / ours above 1: ours is faster.",
        "",
        "| ours | peer | unit | ours | peer | peer / ours | note |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in run["pairs"]:
        lines.append(
            f"| {p['ours']} | {p['peer']} | {p['measure']} | {_number(p['ours_value'])} | "
            f"{_number(p['peer_value'])} | {_number(p['ratio'])} | {p['note']} |"
        )
    return "\n".join(lines)


def replace_between(text: str, start: str, end: str, body: str) -> str:
    if start not in text or end not in text:
        raise SystemExit(f"README.md lacks the markers {start} and {end}")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    return f"{head}{start}\n{body}\n{end}{tail}"


def render(readme: str, results: list[dict]) -> str:
    readme = replace_between(readme, START, END, table([r for r in results if not r.get("pairs")]))
    readme = replace_between(readme, PEERS_START, PEERS_END, peers_table(results))
    return replace_between(readme, LM_START, LM_END, lm_table(results))


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
