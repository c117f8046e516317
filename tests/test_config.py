from dataclasses import dataclass
from typing import Literal

import pytest

from dlpractice.config import build_config, coerce, config_from_dict, config_to_dict, parse_overrides
from dlpractice.errors import DlpError


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
