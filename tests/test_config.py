import json
import math
import re
import typing
from dataclasses import dataclass
from typing import Literal

import pytest

from dlpractice.config import (
    FiniteFloat,
    Fraction,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    Range,
    UnitInterval,
    build_config,
    check_multiple,
    check_value,
    coerce,
    config_from_dict,
    config_json,
    config_to_dict,
    describe,
    field_hints,
    field_types,
    parse_overrides,
)
from dlpractice.errors import DlpError
from dlpractice.registry import implemented_modules, load_lab


@dataclass
class Cfg:
    steps: int = 10
    lr: float = 0.1
    name: str = "a"
    flag: bool = False
    kind: Literal["x", "y"] = "x"
    sizes: tuple[int, ...] = (1, 2)
    limit: int | None = None


PRESETS = {"smoke": {"steps": 2}, "quick": {"steps": 5, "lr": 0.5}}


def test_defaults_then_preset_then_overrides():
    cfg = build_config(Cfg, PRESETS, "quick", ["lr=0.01", "flag=yes", "sizes=3,4,5", "kind=y", "limit=7"])
    assert (cfg.steps, cfg.lr, cfg.flag, cfg.sizes, cfg.kind, cfg.limit) == (5, 0.01, True, (3, 4, 5), "y", 7)


def test_tuples_with_brackets_and_literal_items():
    assert coerce("sizes", "[3, 4]", tuple[int, ...]) == coerce("sizes", "(3,4)", tuple[int, ...]) == (3, 4)
    with pytest.raises(DlpError, match="'z' is not one of x, y"):
        coerce("kinds", "x,z", tuple[Literal["x", "y"], ...])


def test_scientific_integers_and_none():
    assert coerce("steps", "2e4", int) == 20000
    assert coerce("limit", "none", int | None) is None


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("steps=abc", "steps='abc' is not a valid int"),
        ("lr=fast", "lr='fast' is not a valid float"),
        ("flag=maybe", "not a valid bool"),
        ("kind=z", "is not one of x, y"),
        ("stpes=3", "unknown config key 'stpes' in --set (did you mean 'steps'?)"),
        ("steps", "--set expects key=value"),
    ],
)
def test_bad_overrides_are_one_line_errors(override, message):
    with pytest.raises(DlpError) as err:
        build_config(Cfg, PRESETS, "smoke", [override])
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_unknown_key_lists_valid_keys():
    with pytest.raises(DlpError, match="valid keys: steps, lr, name, flag, kind, sizes, limit"):
        build_config(Cfg, PRESETS, "smoke", ["nope=1"])


def test_unknown_preset():
    with pytest.raises(DlpError, match="unknown preset 'quik'.*did you mean 'quick'"):
        build_config(Cfg, PRESETS, "quik")


def test_round_trip_through_dict():
    cfg = build_config(Cfg, PRESETS, "quick", ["sizes=9,8"])
    values = config_to_dict(cfg)
    values["sizes"] = list(values["sizes"])  # as JSON gives it back
    assert config_from_dict(Cfg, values) == cfg


def test_parse_overrides_keeps_equals_in_values():
    assert parse_overrides(["name=a=b"]) == {"name": "a=b"}


# Ranges: every field declares the values it accepts; anything else is one line before a run starts.


@dataclass
class Ranged:
    steps: PositiveInt = 10
    lr: PositiveFloat = 0.1
    shift: float = 0.0  # no alias: still finite
    dropout: Probability = 0.0
    sizes: tuple[PositiveInt, ...] = (1, 2)
    limit: NonNegativeInt | None = None
    optimizer: Literal["adamw", "sgd"] = "adamw"
    n_embd: PositiveInt = 8
    n_head: PositiveInt = 2

    def check(self) -> None:
        check_multiple(self, "n_embd", of="n_head")


@pytest.mark.parametrize(
    ("alias", "inside", "outside"),
    [
        (PositiveInt, [1, 10**9], [0, -1]),
        (NonNegativeInt, [0, 1], [-1]),
        (PositiveFloat, [1e-12, 1, 1e30], [0.0, -1e-12, math.nan, math.inf]),
        (NonNegativeFloat, [0.0, 2.5], [-1e-12, math.inf]),
        (FiniteFloat, [-1e30, 0.0, 1e30], [math.nan, -math.inf, math.inf]),
        (float, [-3.0], [math.nan, math.inf]),  # every float is finite, alias or not
        (Fraction, [1e-9, 1.0], [0.0, 1.0 + 1e-9, math.nan]),
        (UnitInterval, [0.0, 0.5, 1.0], [-1e-9, 1.0 + 1e-9]),
        (Probability, [0.0, 0.999], [1.0, -0.1]),
    ],
)
def test_aliases_at_their_edges(alias, inside, outside):
    for value in inside:
        check_value("x", value, alias)
    for value in outside:
        with pytest.raises(DlpError, match=r"^x=\S+ is out of range: x must be "):
            check_value("x", value, alias)


def test_ranges_read_as_intervals():
    ranges = (Range(ge=1), Range(gt=0), Range(gt=0, le=1), Range(ge=0, lt=1), Range())
    assert list(map(str, ranges)) == ["≥ 1", "> 0", "in (0, 1]", "in [0, 1)", ""]
    assert describe(PositiveInt) == "int ≥ 1" and describe(Probability) == "float in [0, 1)"
    assert describe(Literal["adamw", "sgd"]) == "adamw | sgd"
    assert describe(tuple[PositiveInt, ...]) == "tuple of int ≥ 1"
    assert describe(NonNegativeInt | None) == "int ≥ 0 or none"


def test_field_types_stay_bare_for_coercion():
    kinds = field_types(Ranged)
    assert [kinds[k] for k in ("steps", "lr", "sizes", "limit")] == [int, float, tuple[int, ...], int | None]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("lr=-1", "lr=-1 is out of range: lr must be a finite number > 0"),
        ("lr=nan", "lr=nan is out of range: lr must be a finite number > 0"),
        ("lr=inf", "lr=inf is out of range: lr must be a finite number > 0"),
        ("steps=0", "steps=0 is out of range: steps must be an integer ≥ 1"),
        ("shift=-inf", "shift=-inf is out of range: shift must be a finite number"),
        ("dropout=1", "dropout=1 is out of range: dropout must be a finite number in [0, 1)"),
        ("sizes=3,0", "sizes=3,0 is out of range: each item of sizes must be an integer ≥ 1"),
        ("sizes=", "sizes is empty: give it at least one value"),
        ("limit=-2", "limit=-2 is out of range: limit must be an integer ≥ 0"),
        ("n_embd=9", "n_embd=9 must be a multiple of n_head=2"),
        ("n_head=0", "n_head=0 is out of range"),  # fields first: check() never divides by zero
    ],
)
def test_out_of_range_is_one_line_naming_the_field_and_its_range(override, message):
    with pytest.raises(DlpError) as err:
        build_config(Ranged, {"smoke": {}}, "smoke", [override])
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


def test_in_range_values_pass_and_none_is_allowed():
    cfg = build_config(Ranged, {"smoke": {}}, "smoke", ["limit=none", "dropout=0", "lr=1e-5", "n_embd=16"])
    assert (cfg.limit, cfg.dropout, cfg.lr, cfg.n_embd) == (None, 0.0, 1e-5, 16)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"steps": -5}, "steps=-5 is out of range"),
        ({"steps": 1.5}, "steps=1.5 is not a valid int"),
        ({"steps": True}, "steps=True is not a valid int"),
        ({"lr": "fast"}, "lr=fast is not a valid float"),
        ({"optimizer": "adam"}, "optimizer=adam is not one of adamw, sgd"),
        ({"sizes": (2, -1)}, "each item of sizes must be an integer ≥ 1"),
    ],
)
def test_presets_and_saved_configs_are_checked_too(values, message):
    with pytest.raises(DlpError, match=re.escape(message)):
        build_config(Ranged, {"smoke": values}, "smoke")
    with pytest.raises(DlpError, match=re.escape(message)):
        config_from_dict(Ranged, {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})


# The real labs


def lab_presets() -> list[tuple[str, str]]:
    return [(lab, preset) for lab in sorted(implemented_modules()) for preset in load_lab(lab).PRESETS]


@pytest.mark.parametrize(("lab", "preset"), lab_presets())
def test_every_preset_of_every_lab_validates(lab, preset):
    module = load_lab(lab)
    cfg = build_config(module.Config, module.PRESETS, preset)
    assert config_from_dict(module.Config, json.loads(config_json(cfg))) == cfg


def numbers_without_a_range(hint) -> bool:
    """True when an int or float (alone, in a tuple or in an Optional) has no Range beside it."""
    if typing.get_origin(hint) is typing.Annotated:
        return False
    if hint in (int, float):
        return True
    return any(numbers_without_a_range(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)


@pytest.mark.parametrize("lab", sorted(implemented_modules()))
def test_every_numeric_field_declares_its_range(lab):
    hints = field_hints(load_lab(lab).Config)
    assert [name for name, hint in hints.items() if numbers_without_a_range(hint)] == []


@pytest.mark.parametrize(
    "override",
    [
        "lr=nan",
        "lr=-1",
        "lr=inf",
        "batch_size=0",
        "eval_every=0",
        "ckpt_every=0",
        "grad_accum=0",
        "block_size=0",
        "n_hidden=0",
        "n_samples=-1",
        "steps=-5",
    ],
)
def test_the_reported_l2_values_are_one_line_errors(override):
    module = load_lab("l2")
    key = override.partition("=")[0]
    with pytest.raises(DlpError, match=rf"^{override} is out of range: {key} must be ") as err:
        build_config(module.Config, module.PRESETS, "smoke", [override])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("lab", "overrides", "message"),
    [
        ("l3", ["block_size=6"], "block_size=6 must be a power of fuse=2"),
        ("l3", ["block_size=1"], "block_size=1 must be a power of fuse=2"),  # at least one fusing level
        ("l8", ["n_embd=30", "n_head=4"], "n_embd=30 must be a multiple of n_head=4"),
        ("n4", ["d_model=64", "n_heads=3"], "d_model=64 must be a multiple of n_heads=3"),
        ("n3", ["pos_dim=63"], "pos_dim=63 must be even"),
        ("n8", ["max_length=128", "stride=128"], "stride=128 must be < max_length=128"),
        ("n5", ["variants=gru-bahdanau,gru-lstm"], "'gru-lstm' is not one of gru-bahdanau, gru-luong"),
    ],
)
def test_bad_combinations_and_choices_are_one_line_errors(lab, overrides, message):
    module = load_lab(lab)
    with pytest.raises(DlpError, match=re.escape(message)):
        build_config(module.Config, module.PRESETS, "full", overrides)


@pytest.mark.slow
@pytest.mark.parametrize("override", ["lr=nan", "steps=-5"])
def test_dlp_run_rejects_out_of_range_before_creating_a_run(dlp, dlp_home, override):
    result = dlp("run", "l2", "--preset", "smoke", "--data", "embedded", "--set", override)
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"{override} is out of range" in lines[0], result.stderr
    assert not (dlp_home / "runs").exists() or not any((dlp_home / "runs").iterdir())


@pytest.mark.slow
def test_dlp_show_prints_each_fields_range_and_choices(dlp):
    rows = {line.split("│")[1].strip(): line for line in dlp("show", "l2").stdout.splitlines() if "│" in line}
    assert "int ≥ 1" in rows["steps"] and "float > 0" in rows["lr"] and "int ≥ 0" in rows["n_samples"]
    assert "float in [0, 1]" in rows["min_lr_ratio"] and "adamw | sgd" in rows["optimizer"]
