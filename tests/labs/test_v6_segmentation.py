"""Lab v6 end to end on its smoke preset: metrics agree with torchmetrics, figures, worst scenes as failure
cases, and the served model's answer (its mask and pixel shares)."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from dlpractice.data.scenes import SCENE_CLASSES, generate_scenes
from dlpractice.labs.vision import v6_segmentation as v6
from dlpractice.runner import RunSpec, start_run
from dlpractice.serve.media import picture


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v6")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v6", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_every_class_and_agrees_with_torchmetrics(smoke) -> None:
    m = smoke.metrics
    ious = [m[f"iou_{name}"] for name in SCENE_CLASSES]
    assert m["test_miou"] == pytest.approx(np.nanmean(ious))
    assert m["torchmetrics_miou_diff"] < 1e-6
    assert 0 <= m["test_miou"] <= m["test_dice"] <= 1  # Dice >= IoU for every class
    assert (smoke.run_dir / "model.safetensors").is_file()
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "iou", "examples", "worst"}
    assert "| circle |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_worst_segmented_scenes_as_pictures(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == 12  # every test scene of the smoke preset, worst first
    scores = [f["confidence"] for f in failures]
    assert scores == sorted(scores) and scores[0] == pytest.approx(
        smoke.metrics["worst_image_miou"], abs=1e-4
    )
    assert failures[0]["label"] == "scene" and failures[0]["prediction"] == f"mIoU {scores[0]:.2f}"
    picture = Image.open(io.BytesIO(base64.b64decode(failures[0]["input"].split(",", 1)[1])))
    assert picture.size == (64, 64) and picture.mode == "RGB"


@pytest.mark.slow
def test_served_model_answers_with_a_mask_and_pixel_shares(smoke) -> None:
    cfg = v6.Config(**v6.PRESETS["smoke"])
    predictor = v6.serve(smoke.run_dir, cfg)
    x, _ = generate_scenes(2, seed=99)
    pictures = [(image.transpose(1, 2, 0) * 255).astype(np.uint8) for image in x]
    answers = predictor.predict([{"image": pictures[0]}, {"image": pictures[1][:48]}])  # any size
    for answer in answers:
        shares = answer["values"]
        assert set(shares) == set(SCENE_CLASSES) and sum(shares.values()) == pytest.approx(1)
        assert picture(answer["image"]).shape == (64, 64, 3)  # the scenes' side


def test_mask_answer_draws_each_class_in_its_colour_and_counts_its_pixels() -> None:
    mask = np.zeros((4, 4), np.int64)
    mask[0, :3] = 2
    mask[1, 0] = 3
    answer = v6.mask_answer(mask, list(SCENE_CLASSES))
    assert answer["values"]["background"] == pytest.approx(12 / 16)
    assert answer["values"][SCENE_CLASSES[2]] == pytest.approx(3 / 16)
    colours = (np.array([v6.PALETTE(c)[:3] for c in range(len(SCENE_CLASSES))]) * 255).round()  # (C, 3)
    drawn = picture(answer["image"]).astype(float)  # (4, 4, 3)
    nearest = np.abs(drawn[:, :, None, :] - colours[None, None]).sum(-1).argmin(-1)  # (4, 4) class ids
    assert np.array_equal(nearest, mask)
