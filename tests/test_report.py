"""How numbers, counts, overrides and the bar read, in report.md and in the terminal's helpers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from dlpractice.cli import _fit_fields, _reflow, _runs_table, bar_line
from dlpractice.formatting import format_overrides, number, plural
from dlpractice.registry import Lab
from dlpractice.report import result_line, write_report
from dlpractice.runner import RunRecord, RunSpec


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (12097.0, "12097"),  # counts arrive as floats from the labs
        (6000.0, "6000"),
        (0.0, "0"),
        (-3.0, "-3"),
        (7, "7"),
        (np.int64(12), "12"),
        (2.362907171249, "2.363"),
        (0.4417, "0.4417"),
        (0.008864123, "0.008864"),
        (4.440892098500626e-16, "4.441e-16"),  # a parity gap, not 0.0000
        (1e-5, "1e-5"),
        (217862.4337, "217862"),
        (np.float32(0.25), "0.25"),
        (0.99996, "1.000"),  # rounds to one, but is not exactly one
        (2.99996, "3.000"),
        (1e20, "1e20"),  # past 1e15 a float holds no exact count
        (math.nan, "nan"),
        (None, "—"),
        (True, "True"),
        ("adamw", "adamw"),
        ((64, 128), "(64, 128)"),
    ],
)
def test_number_uses_significant_digits_and_prints_counts_as_integers(value, text):
    assert number(value) == text


def test_plural():
    assert plural(1, "thread") == "1 thread"
    assert plural(2, "thread") == "2 threads"
    assert plural(0, "exercise") == "0 exercises"
    assert plural(3, "match", "matches") == "3 matches"


@dataclass
class Config:
    steps: int = 1000
    lr: float = 1e-3
    batch_size: int = 32
    widths: tuple[int, ...] = (8, 16)
    names: list[str] = field(default_factory=list)


PRESETS = {"smoke": {"steps": 200, "batch_size": 32, "widths": (4, 8)}}


def test_format_overrides_shows_only_what_differs():
    line = format_overrides(Config(steps=200, widths=(4, 8)), "smoke", PRESETS["smoke"])
    # batch_size=32 is in the preset but equals the default: not an override
    assert line == "preset smoke: steps=200, widths=4,8"


def test_format_overrides_separates_set_values():
    cfg = Config(steps=50, lr=0.003, widths=(4, 8))
    line = format_overrides(cfg, "smoke", PRESETS["smoke"])
    assert line == "preset smoke: widths=4,8 · --set steps=50, lr=0.003"
    back_to_default = Config(steps=1000, widths=(4, 8))  # --set steps=1000 undoes the preset
    assert "--set steps=1000" in format_overrides(back_to_default, "smoke", PRESETS["smoke"])
    assert format_overrides(Config(), "quick", {}) == "preset quick: the defaults"


def lab(bar: float | None) -> Lab:
    return Lab("x1", "example", "beyond", "An example", metric="accuracy", goal="max", bar=bar)


def record(preset: str = "smoke", data_source: str = "embedded") -> RunRecord:
    return RunRecord(spec=RunSpec("l1", preset, threads=1), run_id="x1-1", config={}, data_source=data_source)


def test_bar_line_without_a_bar_prints_just_the_value():
    assert bar_line(lab(None), 0.93, None, record()) == "accuracy: 0.93"
    line = bar_line(lab(0.9), 0.93, True, record())
    assert line.startswith("accuracy ≥ 0.9: 0.93 → [green]met[/]") and "full preset on real data" in line
    assert bar_line(lab(0.9), 0.93, True, record("full", "real")) == "accuracy ≥ 0.9: 0.93 → [green]met[/]"


def summary(bar: float | None, value: float = 12.0) -> dict:
    return {
        "lab": "x1",
        "title": "An example",
        "run_id": "x1-1",
        "preset": "smoke",
        "data_source": "embedded",
        "data_origin": "generated",
        "seed": 1,
        "device": "cpu",
        "threads": 1,
        "seconds": 1.25,
        "commit": "abc",
        "metric": "accuracy",
        "value": value,
        "bar": bar,
        "goal": "max",
        "met": None if bar is None else value >= bar,
    }


def test_report_formats_numbers_like_the_terminal(tmp_path: Path):
    metrics = {"numpy_torch_max_diff": 4.440892098500626e-16, "params": 12097.0, "val_loss": 2.362907171249}
    text = write_report(tmp_path, summary(0.9, 0.93), {"steps": 6000}, metrics, [], []).read_text()
    assert "| numpy_torch_max_diff | 4.441e-16 |" in text and "0.0000" not in text
    assert "| params | 12097 |" in text and "| val_loss | 2.363 |" in text
    assert "· 1 thread ·" in text and "1 threads" not in text
    assert "accuracy = 0.93 against the bar ≥ 0.9: **met**" in text


def test_report_of_a_lab_without_a_bar_shows_the_value_alone():
    assert result_line(summary(None, 0.93)) == "accuracy = 0.93"


def test_reflow_joins_hard_broken_lines_and_keeps_list_items():
    doc = (
        "Title line.\n\nA paragraph broken\nfor the source file.\n\nSteps:\n1. first item\n"
        "   continued here.\n2. second item\n\n    code = stays(as, is)"
    )
    assert _reflow(doc) == (
        "Title line.\n\nA paragraph broken for the source file.\n\n"
        "Steps:\n1. first item continued here.\n2. second item\n\n    code = stays(as, is)"
    )


def test_fit_fields_breaks_only_between_fields():
    fields = ["l2   makemore-mlp [green]implemented[/]", "needs l1", "bar val_loss ≤ 2.12"]
    assert _fit_fields(fields, 80, indent=5).count("\n") == 0
    assert _fit_fields(fields, 40, indent=5) == (
        "l2   makemore-mlp [green]implemented[/] · needs l1\n     bar val_loss ≤ 2.12"
    )


def test_runs_table_drops_columns_before_it_cuts_the_id():
    row = {
        "run": "l1-20261206-205117-2dce",
        "lab": "l1",
        "preset": "smoke",
        "data": "embedded",
        "metric": "test_nll",
        "value": "2.363",
        "bar": "met",
        "seconds": "3.78",
        "status": "finished",
    }
    wide, narrow = _runs_table([row], 200), _runs_table([row], 60)
    assert [c.header for c in wide.columns] == list(row)
    assert "run" in [c.header for c in narrow.columns] and len(narrow.columns) < len(row)
    assert _runs_table([row], 20) is None  # the caller prints the bare ids
