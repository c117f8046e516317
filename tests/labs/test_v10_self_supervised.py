"""Lab v10: the smoke preset end to end (the table, figures and metric, the served probe), and a bad
shot count refused in one line before any training."""

from __future__ import annotations

import json

import pytest

from dlpractice.errors import DlpError
from dlpractice.runner import RunSpec, start_run


@pytest.mark.slow
def test_smoke_run_writes_the_table_figures_metric_and_serves_the_probe() -> None:
    outcome = start_run(RunSpec("v10", "smoke", data="embedded"))
    m = outcome.metrics
    for encoder in ("random", "simclr", "supervised"):
        for how in ("probe", "knn"):
            assert 0 <= m[f"{encoder}_{how}_10_test_accuracy"] <= 1
    assert outcome.value == m["few_label_probe_accuracy"] == m["simclr_probe_3_test_accuracy"]
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= {
        "views",
        "accuracy",
        "tsne",
        "loss",
    }
    assert "CNN trained on these labels alone" in outcome.report.read_text()
    assert (outcome.run_dir / "simclr").is_dir()  # SimCLR's pre-training is a child run
    from dlpractice.serve.app import served_from
    from dlpractice.serve.media import picture

    served = served_from(outcome.run_dir)
    failures = json.loads((outcome.run_dir / "failures.json").read_text())
    assert failures and served.info["input"] == "image"
    for case in failures[:5]:  # the served model answers its recorded failure cases as the lab did
        answer = served.predictor.predict([{"image": picture(case["input"]).astype("uint8")}])[0]
        assert answer["label"] == case["prediction"] != case["label"]
        assert answer["probabilities"][case["prediction"]] == pytest.approx(case["confidence"], abs=0.02)


def test_more_shots_than_a_digit_has_is_one_line() -> None:
    with pytest.raises(DlpError, match="more than the .* training images of some digit"):
        start_run(RunSpec("v10", "smoke", data="embedded", overrides=("shots=5000",)))
