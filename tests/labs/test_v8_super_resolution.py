"""Lab v8 end to end on its smoke preset: every method scored on the held-out images, metrics that agree
with scikit-image, the figures, failure cases as pictures, and the served model's x4 upscale."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from dlpractice.labs.vision import v8_super_resolution as v8
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v8")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v8", "smoke", data="embedded"))
    monkeypatch.undo()


def decode(uri: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))


@pytest.mark.slow
def test_smoke_run_scores_every_method_and_agrees_with_scikit_image(smoke) -> None:
    m = smoke.metrics
    for method in v8.METHODS:
        assert 10 < m[f"{method}_held_out_psnr"] < 60
        assert 0 < m[f"{method}_held_out_ssim"] <= 1
    assert m["bicubic_held_out_psnr"] == pytest.approx(28.54, abs=0.01)  # the same every run: no training
    assert m["skimage_psnr_diff"] < 1e-9 and m["skimage_ssim_diff"] < 1e-9
    assert m["esrgan_params"] == m["edsr_params"]  # ESRGAN-lite's generator is EDSR-lite's
    assert smoke.record.data_source == "embedded" and smoke.value is None  # no Set5 in embedded data
    assert (smoke.run_dir / "model.safetensors").is_file()
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "psnr_curves", "crops"}
    assert "| held_out | esrgan |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_least_improved_images_as_pictures(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert sorted(f["label"] for f in failures) == ["astronaut", "chelsea", "coffee"]
    gains = [f["confidence"] for f in failures]
    assert gains == sorted(gains) and len(gains) == 3
    sizes = {f["label"]: decode(f["input"]).size for f in failures}  # the LR inputs: a quarter of each side
    assert sizes == {"astronaut": (128, 128), "coffee": (150, 100), "chelsea": (112, 75)}


@pytest.mark.slow
def test_served_model_upscales_any_picture_four_times(smoke) -> None:
    predictor = v8.serve(smoke.run_dir, v8.Config(**v8.PRESETS["smoke"]))
    rng = np.random.default_rng(0)
    answers = predictor.predict(
        [{"image": rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)}, {"image": np.zeros((9, 7), np.uint8)}]
    )
    assert [decode(a["image"]).size for a in answers] == [(120, 80), (28, 36)]
    assert all(a["values"] == {"scale": 4} for a in answers)
    assert v8.SERVING.input == "image" and v8.SERVING.output == "image" and v8.SERVING.max_side == 256


@pytest.mark.slow
def test_the_web_endpoint_answers_with_the_upscaled_png_and_refuses_big_pictures(smoke) -> None:
    from fastapi.testclient import TestClient

    from dlpractice.serve.app import build_app, served_from
    from dlpractice.serving import png_data_uri

    client = TestClient(build_app(served_from(smoke.run_dir), ui=False))
    picture = np.random.default_rng(1).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    answer = client.post("/predict", json={"image": png_data_uri(picture)})
    assert answer.status_code == 200, answer.text
    assert decode(answer.json()["image"]).size == (48, 40) and answer.json()["values"] == {"scale": 4}
    wide = np.zeros((8, 300, 3), np.uint8)  # wider than SERVING.max_side
    assert client.post("/predict", json={"image": png_data_uri(wide)}).status_code == 422
