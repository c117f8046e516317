"""What the seq2seq labs n4 and n5 share: train a model on the generated tasks, then score it by exact
match with greedy and beam decoding, on lengths seen in training and on longer ones; the results table.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from torch import nn

from dlpractice.data.seq2seq import Seq2SeqTasks
from dlpractice.models.seq2seq import exact_match
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext


def train_and_score(model: nn.Module, data: Seq2SeqTasks, cfg: FitConfig, ctx: RunContext) -> dict[str, Any]:
    """fit(), then exact match per task: greedy and beam, seen lengths and longer ones.

    `cfg` is the lab's Config: fit()'s fields plus `beam_size`."""
    started = time.perf_counter()
    result = fit(model, data, cfg, ctx)
    seconds = time.perf_counter() - started
    scores = {"test": exact_match(model, data, "test"), "long": exact_match(model, data, "test_long")}
    scores["test_beam"] = exact_match(model, data, "test", cfg.beam_size)
    scores["long_beam"] = exact_match(model, data, "test_long", cfg.beam_size)
    params = sum(p.numel() for p in model.parameters())
    return {"history": result.history, "seconds": seconds, "scores": scores, "params": params}


def flat_scores(scores: dict[str, dict[str, float]], prefix: str = "") -> dict[str, float]:
    """{"test": {"sort": 0.9}} -> {"<prefix>test_sort": 0.9}."""
    return {f"{prefix}{split}_{task}": v for split, by_task in scores.items() for task, v in by_task.items()}


def exact_match_table(rows: dict[str, dict], tasks: tuple[str, ...]) -> str:
    """Markdown: one row per model, exact match per task (greedy / beam), then the longer lengths."""
    head = (
        ["model", "params", "train s"] + [f"{t} greedy/beam" for t in tasks] + ["reverse +20 %", "sort +20 %"]
    )
    body = []
    for name, row in rows.items():
        s = row["scores"]
        cells = [name, f"{row['params']:,}", f"{row['seconds']:.0f}"]
        cells += [f"{s['test'][t]:.1%} / {s['test_beam'][t]:.1%}" for t in tasks]
        cells += [
            f"{s['long'][t]:.1%} / {s['long_beam'][t]:.1%}" for t in ("reverse", "sort") if t in s["long"]
        ]
        body.append(cells)
    return markdown_table(head, body)
