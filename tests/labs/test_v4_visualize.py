"""Lab v4 end to end on its smoke preset: every method agrees with captum on the trained net, the figures
and failure cases are written, the randomised net's Grad-CAM differs, and the served model answers."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpractice.labs.vision import v4_visualize as v4
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v4")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v4", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_matches_captum_and_writes_its_figures(smoke) -> None:
    m = smoke.metrics
    assert smoke.value == m["captum_max_diff"] <= 1e-5
    assert all(f"{name}_captum_diff" in m for name in v4.METHODS)
    assert m["best_val_loss"] < np.log(10) - 0.05  # 100 steps: learning (log 10 is a uniform guess)
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"filters", "feature_maps", "attributions", "failures", "sanity", "loss"}
    report = smoke.report.read_text()
    assert "captum" in report and "|---|" in report


@pytest.mark.slow
def test_randomised_weights_change_the_maps(smoke) -> None:
    assert smoke.metrics["sanity_grad_cam_spearman"] < 0.9
    assert -1 <= smoke.metrics["sanity_saliency_spearman"] <= 1


@pytest.mark.slow
def test_failure_cases_are_images_and_the_model_serves(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert failures and all(f["input"].startswith("data:image/png;base64,") for f in failures)
    assert all(f["label"] != f["prediction"] for f in failures)
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)
    predictor = v4.serve(smoke.run_dir, v4.Config(**v4.PRESETS["smoke"]))
    digit = np.zeros((56, 56, 3), dtype=np.uint8)  # a colour image of another size is resized and greyed
    digit[10:46, 26:30] = 255  # a "1"
    (answer,) = predictor.predict([{"image": digit}])
    assert answer["label"] in v4.CLASSES and sum(answer["probabilities"].values()) == pytest.approx(1.0)
