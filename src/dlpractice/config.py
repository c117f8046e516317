"""Lab configs: one dataclass per lab is the schema; presets and `--set key=value` fill it in.

An unknown key or a value of the wrong type is a one-line `DlpError` naming the valid keys.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from dlpractice.errors import DlpError, did_you_mean

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type (dataclasses may store annotations as strings)."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


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
    """Defaults, then the preset, then `--set` overrides (strings coerced to each field's type)."""
    check_preset(presets, preset)
    values = dict(presets[preset])
    check_keys(cls, values, f"preset {preset!r}")
    given = parse_overrides(overrides)
    check_keys(cls, given, "--set")
    kinds = field_types(cls)
    values.update({key: coerce(key, text, kinds[key]) for key, text in given.items()})
    return cls(**values)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def config_from_dict(cls: type, values: dict[str, Any]):
    """Rebuild a saved config (JSON turns tuples into lists; put them back)."""
    check_keys(cls, values, "the saved config")
    kinds = field_types(cls)
    fixed = {k: tuple(v) if typing.get_origin(kinds[k]) is tuple else v for k, v in values.items()}
    return cls(**fixed)


def config_json(cfg: Any) -> str:
    return json.dumps(config_to_dict(cfg), indent=2)
