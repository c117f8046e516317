"""Lab v7 end to end on its smoke preset: depth and stereo metrics, figures, the worst scenes as failure
cases, and the served depth map of an uploaded picture."""

from __future__ import annotations

import base64
import io
import json
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from dlpractice.errors import DlpError
from dlpractice.labs.vision import v7_depth as v7
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v7")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v7", "smoke", data="embedded"))
    monkeypatch.undo()


def decode(uri: str) -> Image.Image:
    assert uri.startswith("data:image/png;base64,")
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.slow
def test_smoke_run_scores_both_depth_tasks_with_both_stereo_methods(smoke) -> None:
    m = smoke.metrics
    assert m["mono_abs_rel"] > 0 and m["mono_rmse"] > 0 and 0 <= m["mono_delta1"] <= 1
    assert m["mono_torchmetrics_diff"] < 1e-5
    for name in ("learned", "bm"):
        assert 0 <= m[f"{name}_bad2"] <= 1 and m[f"{name}_epe"] > 0
    assert m["bm_bad2"] < 0.5  # block matching already works on the real pair, trained or not
    assert (smoke.run_dir / "model.safetensors").is_file()
    assert (smoke.run_dir / "stereo" / "model.safetensors").is_file()
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "stereo_loss", "depth_examples", "depth_worst", "motorcycle"}
    assert "| block matching |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_worst_depth_maps_as_pictures(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == 8  # every test scene of the smoke preset, worst first
    scores = [f["confidence"] for f in failures]
    assert scores == sorted(scores, reverse=True)
    assert failures[0]["prediction"] == f"AbsRel {scores[0]:.2f}"
    assert decode(failures[0]["input"]).size == (64, 64)


@pytest.mark.slow
def test_served_model_returns_a_coloured_depth_map_of_the_picture_size(smoke) -> None:
    predictor = v7.serve(smoke.run_dir, v7.Config(**v7.PRESETS["smoke"]))
    rng = np.random.default_rng(0)
    pictures = [
        rng.integers(0, 256, (40, 70, 3), dtype=np.uint8),
        rng.integers(0, 256, (30, 30), dtype=np.uint8),
    ]
    answers = predictor.predict([{"image": p} for p in pictures])
    for picture, answer in zip(pictures, answers):
        image = decode(answer["image"])
        assert image.size == (picture.shape[1], picture.shape[0]) and image.mode == "RGB"
        values = answer["values"]
        assert set(values) == {"min_depth", "max_depth"} and 0 < values["min_depth"] <= values["max_depth"]


def test_colour_depth_puts_near_bright_and_far_dark() -> None:
    depth = np.array([[1.0, 5.0], [9.0, 9.0]])
    colours = v7.colour_depth(depth)
    brightness = colours.mean(-1)
    assert colours.shape == (2, 2, 3) and brightness[0, 0] > brightness[0, 1] > brightness[1, 0]


@pytest.mark.parametrize(
    ("override", "message"),
    [({"max_disparity": 40}, "multiple of 16"), ({"bm_window": 8}, "odd"), ({}, "embedded")],
)
def test_bad_settings_fail_in_one_line_before_training(override: dict, message: str) -> None:
    cfg = v7.Config(**(v7.PRESETS["smoke"] | override))
    data = "embedded" if override else "real"  # v7 has no real dataset to ask for
    with pytest.raises(DlpError, match=message):
        v7.check_config(cfg, SimpleNamespace(data=data))
