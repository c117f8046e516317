"""How numbers, counts and config overrides read, in the terminal and in report.md alike.

Plain strings only (no rich markup, no matplotlib), so the CLI can import it without the
half-second cost of `report`'s plotting imports.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping
from typing import Any

DIGITS = 4  # significant digits: enough to compare runs, few enough to read at a glance


def number(value: Any) -> str:
    """A metric or config value as a person reads it: 4 significant digits, counts as integers.

    Labs return every metric as a float, so a float holding a whole number (params 12097.0, steps
    6000.0) prints as an integer. Whole numbers from 1e15 up lose digits as floats: they keep the
    exponent form. None (a metric the run did not produce) prints as a dash.
    """
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    if 1e3 <= abs(value) < 1e15:
        return f"{value:.0f}"  # 217862 tokens/s: the fraction is below the fourth digit anyway
    text = _exponent(f"{value:.{DIGITS}g}")
    if text.lstrip("-").isdigit():  # 0.99996 rounds to "1": keep the zeros so it cannot pass for exact
        text = f"{value:#.{DIGITS}g}"
    return text


def _exponent(text: str) -> str:
    """'4.441e-16' stays, '1e-05' becomes '1e-5': Python pads the exponent to two digits."""
    mantissa, sep, exponent = text.partition("e")
    return f"{mantissa}e{int(exponent)}" if sep else text


def plural(count: int, noun: str, plural_form: str | None = None) -> str:
    """'1 thread', '2 threads', '0 exercises'."""
    return f"{count} {noun if count == 1 else plural_form or noun + 's'}"


def format_overrides(cfg: Any, preset: str, preset_values: Mapping[str, Any]) -> str:
    """The config fields a run changed from the Config defaults, by source, on one line.

    `preset smoke: steps=200, batch_size=64 · --set lr=0.01` — the preset's values that differ from
    the defaults, then the fields whose final value differs from what the preset (or, for a field the
    preset leaves alone, the default) gives: what `--set` changed. The full config is in run.json.
    """
    from_preset, from_set = [], []
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        default = _default(field)
        expected = preset_values.get(field.name, default)
        pair = f"{field.name}={_config_value(value)}"
        if value != expected:
            from_set.append(pair)
        elif field.name in preset_values and value != default:
            from_preset.append(pair)
    line = f"preset {preset}: " + (", ".join(from_preset) or "the defaults")
    if from_set:
        line += " · --set " + ", ".join(from_set)
    return line


def _default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return dataclasses.MISSING  # a required field: whatever the preset gives is an override


def _config_value(value: Any) -> str:
    """A config value as `--set` would take it back: 0.003, not 0.0030; a tuple as a,b."""
    if isinstance(value, tuple | list):
        return ",".join(_config_value(v) for v in value)
    return repr(value) if isinstance(value, float) else str(value)
