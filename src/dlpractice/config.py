"""Lab configs: one dataclass per lab is the schema; presets and `--set key=value` fill it in.

Each field declares its valid range beside it with a small alias built on `typing.Annotated`:

    lr: PositiveFloat = 1e-3           # a finite number > 0
    dropout: Probability = 0.1         # in [0, 1)
    widths: tuple[PositiveInt, ...]    # every item an integer >= 1

Every float must be finite (NaN and inf are rejected) even without an alias, and a tuple must hold at
least one item. A config may also define `check(self)` for constraints between fields (n_embd a multiple
of n_head), with `require` and `check_multiple`; it runs once every field is in range. An unknown key, or
a value of the wrong type or out of range, is a one-line `DlpError` raised before a run directory exists.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from typing import Annotated, Any

from dlpractice.errors import DlpError, did_you_mean

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _num(x: float) -> str:
    return str(x) if isinstance(x, int) else f"{x:g}"


@dataclasses.dataclass(frozen=True)
class Range:
    """The interval a number field may take: ge/gt bound it below (inclusive/exclusive), le/lt above."""

    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    lt: float | None = None

    def __contains__(self, x: float) -> bool:
        return not (
            (self.ge is not None and x < self.ge)
            or (self.gt is not None and x <= self.gt)
            or (self.le is not None and x > self.le)
            or (self.lt is not None and x >= self.lt)
        )

    def __str__(self) -> str:
        """'≥ 1', '> 0', 'in [0, 1)', or '' when unbounded."""
        low = [(s, x) for s, x in (("[", self.ge), ("(", self.gt)) if x is not None]
        high = [(s, x) for s, x in (("]", self.le), (")", self.lt)) if x is not None]
        if low and high:  # an interval: [0, 1), (0, 1]
            return f"in {low[0][0]}{_num(low[0][1])}, {_num(high[0][1])}{high[0][0]}"
        signs = {"[": "≥", "(": ">", "]": "≤", ")": "<"}
        return " ".join(f"{signs[s]} {_num(x)}" for s, x in low + high)


# The ranges fields use; `Annotated[int, Range(ge=256)]` where none of them fits.
PositiveInt = Annotated[int, Range(ge=1)]  # sizes, step counts, intervals
NonNegativeInt = Annotated[int, Range(ge=0)]  # counts where 0 means "none", "all" or "off"
PositiveFloat = Annotated[float, Range(gt=0)]  # learning rates, temperatures
NonNegativeFloat = Annotated[float, Range(ge=0)]  # weight decay, clipping (0 disables), loss weights
FiniteFloat = Annotated[float, Range()]  # any number but NaN and ±inf (a shift, an offset)
Fraction = Annotated[float, Range(gt=0, le=1)]  # a share of something that must not be empty: (0, 1]
UnitInterval = Annotated[float, Range(ge=0, le=1)]  # [0, 1]: a ratio or a probability
Probability = Annotated[float, Range(ge=0, lt=1)]  # [0, 1): dropout 1 zeroes every unit; beta 1 never forgets


def field_hints(cls: type) -> dict[str, Any]:
    """Field name -> declared type with its Range (`Annotated[int, Range(ge=1)]`)."""
    hints = typing.get_type_hints(cls, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> bare resolved type, for coercion (dataclasses may store annotations as strings)."""
    hints = typing.get_type_hints(cls)  # include_extras=False strips every Annotated, nested ones too
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _split(hint: Any) -> tuple[Any, Range | None]:
    """Annotated[int, Range(ge=1)] -> (int, Range(ge=1)); a plain type -> (type, None)."""
    if typing.get_origin(hint) is Annotated:
        ranges = [m for m in hint.__metadata__ if isinstance(m, Range)]
        return hint.__origin__, (ranges[0] if ranges else None)
    return hint, None


def _options(kind: Any) -> list[Any]:
    """The non-None members of Optional[X] / X | None."""
    return [a for a in typing.get_args(kind) if a is not type(None)]


def describe(hint: Any) -> str:
    """A field's type for people: 'int ≥ 1', 'float in [0, 1)', 'adamw | sgd', 'tuple of int ≥ 1'."""
    kind, limits = _split(hint)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(describe(a) for a in _options(kind)) + " or none"
    if origin is typing.Literal:
        return " | ".join(map(str, typing.get_args(kind)))
    if origin in (tuple, list):
        return f"{origin.__name__} of {describe(typing.get_args(kind)[0])}"
    name = getattr(kind, "__name__", str(kind))
    return f"{name} {limits}" if limits and str(limits) else name


def _check_number(key: str, value: Any, kind: type, limits: Range | None, shown: str, each: bool) -> None:
    allowed = (int, float) if kind is float else (int,)
    if isinstance(value, bool) or not isinstance(value, allowed):
        raise DlpError(f"{key}={shown} is not a valid {kind.__name__}")
    if (kind is int or math.isfinite(value)) and (limits is None or value in limits):
        return
    noun = "an integer" if kind is int else "a finite number"
    bound = f" {limits}" if limits and str(limits) else ""
    subject = f"each item of {key}" if each else key
    raise DlpError(f"{key}={shown} is out of range: {subject} must be {noun}{bound}")


def _shown(value: Any) -> str:
    if isinstance(value, float):
        return _num(value)
    if isinstance(value, (tuple, list)):
        return ",".join(_shown(v) for v in value)
    return str(value)


def check_value(key: str, value: Any, hint: Any, shown: str | None = None, each: bool = False) -> None:
    """Raise a one-line DlpError unless `value` has the field's type and lies in its declared range."""
    shown = _shown(value) if shown is None else shown
    kind, limits = _split(hint)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        if value is not None:
            check_value(key, value, _options(kind)[0], shown, each)
    elif origin is typing.Literal:
        allowed = typing.get_args(kind)
        if value not in allowed:
            raise DlpError(f"{key}={shown} is not one of {', '.join(map(str, allowed))}")
    elif origin in (tuple, list):
        if not isinstance(value, (tuple, list)):
            raise DlpError(f"{key}={shown} is not a valid {origin.__name__}")
        if not value:  # a tuple of sizes, models or seeds with nothing in it leaves nothing to run
            raise DlpError(f"{key} is empty: give it at least one value")
        for item in value:
            check_value(key, item, typing.get_args(kind)[0], shown, each=True)
    elif kind in (int, float):
        _check_number(key, value, kind, limits, shown, each)
    elif isinstance(kind, type) and not isinstance(value, kind):
        raise DlpError(f"{key}={shown} is not a valid {kind.__name__}")


def require(ok: bool, message: str) -> None:
    """For a config's `check()`: a constraint between fields, as a one-line DlpError when it fails."""
    if not ok:
        raise DlpError(message)


def check_multiple(cfg: Any, key: str, of: str) -> None:
    """cfg.<key> must be a multiple of cfg.<of> (attention splits its channels evenly over the heads)."""
    value, divisor = getattr(cfg, key), getattr(cfg, of)
    require(value % divisor == 0, f"{key}={value} must be a multiple of {of}={divisor}")


def validate(cfg: Any) -> Any:
    """Check every field against its declared range, then the config's own `check()`; return cfg."""
    for key, hint in field_hints(type(cfg)).items():
        check_value(key, getattr(cfg, key), hint)
    check = getattr(cfg, "check", None)
    if callable(check):
        check()
    return cfg


def coerce(key: str, text: str, kind: Any) -> Any:
    """Turn the string of `--set key=text` into a value of the field's type, or raise DlpError."""
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):  # Optional[X]: "none" means None, else parse as X
        options = [a for a in typing.get_args(kind) if a is not type(None)]
        if text.lower() in ("none", "null"):
            return None
        return coerce(key, text, options[0])
    if origin is typing.Literal:
        allowed = typing.get_args(kind)
        if text not in allowed:
            raise DlpError(
                f"{key}={text!r} is not one of {', '.join(map(str, allowed))}{did_you_mean(text, allowed)}"
            )
        return text
    if origin in (tuple, list):
        item = typing.get_args(kind)[0]
        parts = text.strip().strip("[]()").split(",")  # "a,b", "[a,b]" and "(a,b)" alike
        values = [coerce(key, part.strip(), item) for part in parts if part.strip()]
        return tuple(values) if origin is tuple else values
    try:
        if kind is bool:
            if text.lower() in _TRUE | _FALSE:
                return text.lower() in _TRUE
            raise ValueError
        if kind is int:
            return int(float(text)) if "e" in text.lower() and float(text).is_integer() else int(text)
        if kind is float:
            return float(text)
    except ValueError:
        raise DlpError(f"{key}={text!r} is not a valid {kind.__name__}") from None
    return text


def check_keys(cls: type, keys: typing.Iterable[str], where: str) -> None:
    valid = list(field_types(cls))
    for key in keys:
        if key not in valid:
            hint = did_you_mean(key, valid)
            raise DlpError(f"unknown config key {key!r} in {where}{hint}; valid keys: {', '.join(valid)}")


def parse_overrides(pairs: typing.Sequence[str]) -> dict[str, str]:
    """['lr=0.1', 'steps=500'] -> {'lr': '0.1', 'steps': '500'}."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DlpError(f"--set expects key=value, got {pair!r}")
        out[key.strip()] = value.strip()
    return out


def check_preset(presets: dict[str, dict[str, Any]], preset: str) -> None:
    """A lab has smoke, quick and full, and may add its own (l8: fast)."""
    if preset not in presets:
        raise DlpError(
            f"unknown preset {preset!r}{did_you_mean(preset, presets)}; presets: {', '.join(presets)}"
        )


def build_config(
    cls: type, presets: dict[str, dict[str, Any]], preset: str, overrides: typing.Sequence[str] = ()
):
    """Defaults, then the preset, then `--set` overrides (strings coerced to each field's type), validated."""
    check_preset(presets, preset)
    values = dict(presets[preset])
    check_keys(cls, values, f"preset {preset!r}")
    given = parse_overrides(overrides)
    check_keys(cls, given, "--set")
    kinds = field_types(cls)
    values.update({key: coerce(key, text, kinds[key]) for key, text in given.items()})
    return validate(cls(**values))


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, values: dict[str, Any]):
    """Rebuild a saved config (JSON turns tuples into lists; put them back)."""
    check_keys(cls, values, "the saved config")
    kinds = field_types(cls)
    fixed = {k: tuple(v) if typing.get_origin(kinds[k]) is tuple else v for k, v in values.items()}
    return validate(cls(**fixed))


def config_json(cfg: Any) -> str:
    return json.dumps(config_to_dict(cfg), indent=2)
