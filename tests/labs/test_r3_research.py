"""Lab r3: the smoke preset end to end (the three tables, the figures, the metric, the child runs and their
weights), and bad settings refused in one line before any training."""

from __future__ import annotations

import pytest

from dlpractice.errors import DlpError
from dlpractice.labs.beyond.r3_research import Config, validate
from dlpractice.runner import RunSpec, start_run


@pytest.mark.slow
def test_smoke_run_writes_the_three_parts_tables_figures_and_metric() -> None:
    outcome = start_run(RunSpec("r3", "smoke", data="embedded"))
    m = outcome.metrics
    for method in ("pixels", "pretrained", "protonet"):
        for shots in (1, 2):
            assert 0 <= m[f"{method}_5way_{shots}shot_accuracy"] <= 1
            assert m[f"{method}_5way_{shots}shot_ci95"] > 0
    assert outcome.value == m["protonet_5way_1shot_accuracy"]
    for setting in ("fedavg_iid", "fedavg_noniid", "fedsgd_iid", "fedsgd_noniid", "centralised"):
        assert 0 <= m[f"{setting}_test_accuracy"] <= 1
    assert m["nerf_pe_held_out_psnr"] > 0 and m["nerf_no_pe_held_out_psnr"] > 0
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures >= {"few_shot", "federated", "nerf_views", "nerf_psnr"}
    report = outcome.report.read_text()
    assert "prototypical network" in report and "centralised SGD" in report and "Tiny NeRF" in report
    for child in ("protonet_1shot", "protonet_2shot", "nerf_pe", "nerf_no_pe"):
        assert (outcome.run_dir / child / "model.safetensors").is_file()


def test_a_run_without_one_shot_is_refused_in_one_line() -> None:
    with pytest.raises(DlpError, match="lacks 1"):
        start_run(RunSpec("r3", "smoke", data="embedded", overrides=("shots=(5,)",)))


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"train_letters": 24}, "train_letters"),
        ({"train_ways": 20}, "train_ways"),
        ({"held_out": 48}, "leaves none"),
        ({"queries": 200}, "letters_per_class"),
    ],
)
def test_impossible_settings_are_one_line(override: dict, message: str) -> None:
    with pytest.raises(DlpError, match=message):
        validate(Config(**override))
