"""What a sweep runs: its plan (lab, preset, searched fields, metric, budget) from the command line.

Every searched value is checked against the lab's config before anything runs: an unknown key, a range
that is not LOW < HIGH, or a value out of the field's declared range is one line.
"""

from __future__ import annotations

import hashlib
import json
import math
import typing
from dataclasses import asdict, dataclass
from typing import Any

from dlpractice.config import build_config, check_keys, coerce, field_types
from dlpractice.errors import DlpError
from dlpractice.formatting import number
from dlpractice.registry import load_lab


@dataclass(frozen=True)
class Axis:
    """One searched config field: a list of choices (--grid) or a numeric range (--space)."""

    name: str
    choices: tuple[Any, ...] = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    integer: bool = False

    def suggest(self, trial: Any) -> Any:
        if self.choices:
            return trial.suggest_categorical(self.name, list(self.choices))
        if self.integer:
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log)
        return trial.suggest_float(self.name, self.low, self.high, log=self.log)

    def extremes(self) -> list[Any]:
        """The values that prove the whole axis is valid for the config (its choices or both ends)."""
        return list(self.choices) or [self.low, self.high]

    def describe(self) -> str:
        if self.choices:
            return f"{self.name} in {{{', '.join(map(str, self.choices))}}}"
        return f"{self.name} in [{number(self.low)}, {number(self.high)}]{' (log)' if self.log else ''}"


@dataclass(frozen=True)
class Plan:
    """What a sweep runs: kept in the study, so every worker and every resumption runs the same one."""

    lab: str
    preset: str
    method: str  # grid, random or tpe
    axes: tuple[Axis, ...]
    metric: str
    goal: str  # min or max
    trials: int  # the budget: finished (complete or pruned) trials
    overrides: tuple[str, ...] = ()  # --set pairs every trial shares
    seed: int = 1337
    data: str = "auto"
    data_dir: str | None = None
    device: str = "auto"
    prune: bool = False
    prune_startup: int = 5  # MedianPruner prunes nothing until this many trials finished
    heartbeat: int = 10  # seconds between a running trial's heartbeats

    def identity(self) -> dict[str, Any]:
        """What makes two sweeps the same study: not the budget, pruning or heartbeat (a resumption may
        change those)."""
        keys = ("lab", "preset", "method", "axes", "metric", "goal", "overrides", "seed", "data")
        values = asdict(self)
        return json.loads(json.dumps({k: values[k] for k in keys}))

    def default_name(self) -> str:
        digest = hashlib.sha1(json.dumps(self.identity(), sort_keys=True).encode()).hexdigest()[:6]
        return f"{self.lab}-{self.preset}-{self.method}-{digest}"

    def to_json(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> Plan:
        axes = tuple(Axis(**{**a, "choices": tuple(a["choices"])}) for a in values["axes"])
        return cls(**{**values, "axes": axes, "overrides": tuple(values["overrides"])})

    @property
    def direction(self) -> str:
        return "minimize" if self.goal == "min" else "maximize"

    def overrides_for(self, params: dict[str, Any]) -> tuple[str, ...]:
        return (*self.overrides, *(f"{k}={_as_text(v)}" for k, v in params.items()))

    def rerun_command(self, params: dict[str, Any]) -> str:
        """The `dlp run` command that runs this trial again on its own."""
        parts = ["dlp run", self.lab, "--preset", self.preset]
        parts += [f"--set {pair}" for pair in self.overrides_for(params)]
        if self.data != "auto":
            parts.append(f"--data {self.data}")
        if self.seed != 1337:
            parts.append(f"--seed {self.seed}")
        return " ".join(parts)


def _as_text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


# ---- parsing the command line into a plan ---------------------------------------------------------


def _pair(text: str, option: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        example = "lr=1e-4:1e-2:log" if option == "--space" else "n_hidden=64,128,256"
        raise DlpError(f"{option} expects key=..., got {text!r} (e.g. {option} {example})")
    return key.strip(), value.strip()


def _number_kind(kind: Any) -> type | None:
    """int or float for a numeric field (Optional[int] too), else None."""
    options = [a for a in typing.get_args(kind) if a is not type(None)] if typing.get_args(kind) else [kind]
    return options[0] if len(options) == 1 and options[0] in (int, float) else None


def parse_grid(text: str, config: type) -> Axis:
    """`n_hidden=64,128,256`: the values a field of `config` takes, each coerced to the field's type."""
    key, values = _pair(text, "--grid")
    check_keys(config, [key], "--grid")
    kinds = field_types(config)
    parts = [p.strip() for p in values.split(",") if p.strip()]
    if not parts:
        raise DlpError(f"--grid {text!r} gives no values")
    choices = []
    for part in parts:
        value = coerce(key, part, kinds[key])
        # Optuna stores numbers, strings and booleans; a tuple-valued field keeps its text
        choices.append(value if value is None or isinstance(value, (bool, int, float, str)) else part)
    if len(set(map(str, choices))) != len(choices):
        raise DlpError(f"--grid {key} repeats a value: {values}")
    return Axis(key, choices=tuple(choices))


def parse_space(text: str, config: type) -> Axis:
    """`lr=1e-4:1e-2:log` or `n_hidden=32:256`: a numeric range of a field of `config`, uniform or log."""
    key, spec = _pair(text, "--space")
    check_keys(config, [key], "--space")
    kind = _number_kind(field_types(config)[key])
    if kind is None:
        raise DlpError(f"--space {key}: {key} is not a number; give its values with --grid {key}=a,b,c")
    parts = spec.split(":")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] != "log"):
        raise DlpError(f"--space {text!r}: expected {key}=LOW:HIGH or {key}=LOW:HIGH:log")
    try:
        low, high = (kind(float(p)) if kind is int and float(p).is_integer() else kind(p) for p in parts[:2])
    except ValueError:
        raise DlpError(f"--space {text!r}: LOW and HIGH must be {kind.__name__}s") from None
    log = len(parts) == 3
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise DlpError(f"--space {text!r}: LOW must be below HIGH (and both finite)")
    if log and low <= 0:
        raise DlpError(f"--space {text!r}: a log scale needs LOW > 0")
    return Axis(key, low=low, high=high, log=log, integer=kind is int)


def plan_sweep(
    lab: str,
    preset: str,
    grid: list[str],
    space: list[str],
    random: int | None,
    optuna_trials: int | None,
    metric: str | None = None,
    goal: str | None = None,
    **options: Any,
) -> Plan:
    """Check the request (every searched value is valid for the lab's config) and return its plan."""
    module = load_lab(lab)
    build_config(module.Config, module.PRESETS, preset, options.get("overrides", ()))  # preset, --set
    axes = [parse_grid(text, module.Config) for text in grid] + [
        parse_space(text, module.Config) for text in space
    ]
    method, trials = _method(axes, space, random, optuna_trials)
    names = [a.name for a in axes]
    fixed = {pair.partition("=")[0].strip() for pair in options.get("overrides", ())}
    for name in names:
        if names.count(name) > 1 or name in fixed:
            raise DlpError(f"{name} is given twice (in --grid, --space or --set): give it once")
    plan = Plan(
        lab=module.LAB.id,
        preset=preset,
        method=method,
        axes=tuple(axes),
        metric=metric or module.LAB.metric,
        goal=goal or (module.LAB.goal if metric in (None, module.LAB.metric) else "min"),
        trials=trials,
        **options,
    )
    if not plan.metric:
        raise DlpError(f"lab {plan.lab} has no headline metric: say which to optimise with --metric")
    for axis in axes:  # both ends of each range (every choice) must make a valid config
        for value in axis.extremes():
            build_config(module.Config, module.PRESETS, preset, plan.overrides_for({axis.name: value}))
    return plan


def _method(axes: list[Axis], space: list[str], random: int | None, tpe: int | None) -> tuple[str, int]:
    if random is not None and tpe is not None:
        raise DlpError("give one of --random N and --optuna N, not both")
    if not axes:
        raise DlpError(
            "nothing to search: give --grid key=a,b,c, or --space key=lo:hi with --random/--optuna"
        )
    if random is None and tpe is None:
        if space:
            raise DlpError("--space needs --random N or --optuna N (how many trials to draw)")
        return "grid", math.prod(len(a.choices) for a in axes)
    return ("random", random) if random is not None else ("tpe", tpe)
