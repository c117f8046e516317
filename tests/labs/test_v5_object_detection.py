"""Lab v5 end to end on its smoke preset: both detectors scored, mAP equal to pycocotools', figures, the worst
images as failure cases, and the served detector's boxes in the uploaded picture's pixels."""

from __future__ import annotations

import base64
import dataclasses
import io
import json

import numpy as np
import pytest
from PIL import Image

from dlpractice.data.detection import SHAPE_CLASSES, generate_shapes
from dlpractice.labs.vision import v5_object_detection as v5
from dlpractice.metrics.detection import Detections
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v5")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v5", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_both_detectors_as_pycocotools_does(smoke) -> None:
    m = smoke.metrics
    for name in v5.DETECTORS:
        assert m[f"{name}_pycocotools_diff"] < 1e-6
        assert 0 <= m[f"{name}_map"] <= m[f"{name}_map50"] <= 1
        assert m[f"{name}_images_per_s"] > 0 and m[f"{name}_train_cpu_seconds"] > 0
        assert (smoke.run_dir / name / "model.safetensors").is_file()
    assert m["test_map50"] == max(m["grid_map50"], m["detr_map50"])
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"loss-grid", "loss-detr", "pr", "detections", "worst"}
    assert "| circle |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_worst_detected_images_as_pictures(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == 10  # every test image of the smoke preset has objects; worst first
    scores = [f["confidence"] for f in failures]
    assert scores == sorted(scores) and scores[0] == pytest.approx(
        smoke.metrics["worst_image_ap50"], abs=1e-4
    )
    assert failures[0]["prediction"].startswith(f"AP@0.5 {scores[0]:.2f}")
    picture = Image.open(io.BytesIO(base64.b64decode(failures[0]["input"].split(",", 1)[1])))
    assert picture.size == (64, 64) and picture.mode == "RGB"


@pytest.mark.slow
def test_served_detector_answers_boxes_in_the_pictures_own_pixels(smoke) -> None:
    cfg = dataclasses.replace(v5.Config(**v5.PRESETS["smoke"]), score_threshold=0.0, serve_score=0.0)
    predictor = v5.serve(smoke.run_dir, cfg)
    x, _ = generate_shapes(2, seed=99)
    pictures = [(image.transpose(1, 2, 0) * 255).astype(np.uint8) for image in x]
    wide = np.asarray(Image.fromarray(pictures[1]).resize((128, 64)))
    answers = predictor.predict([{"image": pictures[0]}, {"image": wide}])
    for answer, (height, width) in zip(answers, [(64, 64), (64, 128)]):
        assert answer["boxes"], "with no score threshold every image gets candidates"
        for found in answer["boxes"]:
            assert found["label"] in SHAPE_CLASSES and 0 <= found["score"] <= 1
            x0, y0, x1, y1 = found["box"]
            assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height


def test_boxes_answer_scales_to_the_picture_and_drops_low_scores() -> None:
    found = Detections(np.array([[8.0, 16, 24, 32], [0, 0, 4, 4]]), np.array([2, 0]), np.array([0.8, 0.1]))
    answer = v5.boxes_answer(found, (128, 256, 3), 64, list(SHAPE_CLASSES), min_score=0.3)
    assert answer == {"boxes": [{"label": "square", "score": 0.8, "box": [32.0, 32.0, 96.0, 64.0]}]}
