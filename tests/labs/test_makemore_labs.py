"""The smoke preset of l1 and l2 runs end to end: metrics, report, figures, weights, tracking."""

import json

import pytest

from dlpractice.runner import RunSpec, start_run
from dlpractice.tracking import tracked_runs


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lab", "figures"), [("l1", {"loss", "counts"}), ("l2", {"loss", "embedding", "activations"})]
)
def test_smoke_run(lab, figures):
    outcome = start_run(RunSpec(lab, "smoke", data="embedded"))
    assert outcome.metrics["numpy_torch_max_diff"] < 1e-5  # the NumPy twin agrees with PyTorch
    assert outcome.value == outcome.metrics[outcome.lab.metric] < 3.0  # learned something (ln 27 = 3.30)
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} == figures
    report = outcome.report.read_text()
    assert "## Samples" in report and "figures/loss.png" in report and '"steps"' in report
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["data_info"]["n_train"] == 4130
    assert (outcome.run_dir / "model.safetensors").exists()

    tracked = tracked_runs(lab)[0]
    tags = tracked.data.tags
    assert (
        tags["dlp_run_id"] == outcome.run_id
        and tags["preset"] == "smoke"
        and tags["data_source"] == "embedded"
    )
    assert {"git_commit", "seed", "bar_met"} <= set(tags)
    assert tracked.data.params["steps"] in ("200", "300") and tracked.data.params["split_seed"] == "42"
    assert "val_loss" in tracked.data.metrics and "train_loss" in tracked.data.metrics


@pytest.mark.slow
def test_same_seed_same_numbers(quality):
    first = start_run(RunSpec("l2", "smoke", ("steps=60", "eval_every=30"), data="embedded", seed=3))
    second = start_run(RunSpec("l2", "smoke", ("steps=60", "eval_every=30"), data="embedded", seed=3))
    assert quality(first.metrics) == quality(second.metrics)
