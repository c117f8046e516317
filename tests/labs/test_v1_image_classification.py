"""Lab v1 end to end on its smoke preset (figures, table, failure cases, the served model), and the five
classifiers of models/convnets.py on the shapes the lab feeds them."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dlpractice.labs.vision import v1_image_classification as v1
from dlpractice.models import convnets
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v1")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v1", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_trains_every_model_in_its_child_run(smoke) -> None:
    m = smoke.metrics
    names = [*convnets.KINDS, "cnn-no-augment"]
    for name in names:
        assert (
            0 <= m[f"{name}_test_accuracy"] <= 1 and m[f"{name}_params"] > 0 and m[f"{name}_cpu_seconds"] > 0
        )
        assert (smoke.run_dir / name / "model.safetensors").is_file()  # each model in its own child run
    assert m["logreg_params"] == 10 * 64 + 10  # digits: one weight per pixel and class, and a bias
    assert m["cnn_test_accuracy"] > 0.3  # 30 steps on digits: well above a guess (10 %)
    assert m["test_accuracy"] in {m[f"{k}_test_accuracy"] for k in convnets.KINDS}
    assert m["conv_shifted_max_diff"] < 1e-5  # our convolution on the trained CNN's first layer
    assert m["train_pool"] == 2 * smoke.record.data_info["n_train"]  # the originals and one augmented copy
    assert smoke.record.data_source == "embedded" and smoke.record.data_info["dataset"] == "digits"
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"augmentation", "loss", "confusion", "mistakes"}
    assert "| CNN (no augmentation) |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_most_confident_mistakes_as_pictures(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == min(100, int(smoke.metrics["test_mistakes"]))
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)
    assert all(f["label"] != f["prediction"] for f in failures)
    picture = Image.open(io.BytesIO(base64.b64decode(failures[0]["input"].split(",", 1)[1])))
    assert picture.size == (8, 8)  # the test image itself (digits are 8x8)


@pytest.mark.slow
def test_the_served_model_reads_any_picture_and_agrees_with_the_run(smoke) -> None:
    cfg = v1.Config(**v1.PRESETS["smoke"])
    predictor = v1.serve(smoke.run_dir, cfg)
    colour = np.zeros((40, 40, 3), dtype=np.uint8)
    colour[8:32, 18:22] = 255  # a "1" in colour, 5 times too big
    paper = 255 - np.zeros((8, 8), dtype=np.uint8)  # a blank white page (inverted to blank dark)
    answers = predictor.predict([{"image": colour}, {"image": paper}])
    for answer in answers:
        assert answer["label"] in "0123456789" and sum(answer["probabilities"].values()) == pytest.approx(1.0)
    # on a test image at its own size, the served answer is the run's prediction
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    raw = base64.b64decode(failures[0]["input"].split(",", 1)[1])
    image = np.asarray(Image.open(io.BytesIO(raw)))  # (8, 8) uint8
    (answer,) = predictor.predict([{"image": image}])
    assert answer["label"] == failures[0]["prediction"]
    assert answer["probabilities"][answer["label"]] == pytest.approx(failures[0]["confidence"], abs=0.02)


@pytest.mark.parametrize("kind", convnets.KINDS)
@pytest.mark.parametrize(("channels", "side"), [(1, 28), (3, 32), (1, 8)])
def test_every_classifier_follows_the_contract(kind: str, channels: int, side: int) -> None:
    torch.manual_seed(0)
    model = convnets.build_classifier(kind, channels, side, 10)
    x, y = torch.rand(3, channels, side, side), torch.tensor([0, 4, 9])
    logits, loss = model(x, y)
    assert logits.shape == (3, 10) and loss.ndim == 0 and torch.isfinite(loss)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(logits, y))
    loss.backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert model(x)[1] is None


def test_the_vit_embeds_patches_with_a_class_token_and_positions() -> None:
    vit = convnets.SmallViT(1, 28, 10, patch=4, dim=32, depth=1)
    assert vit.positions.shape == (1, 49 + 1, 32)  # 7x7 patches and the class token
    with pytest.raises(ValueError, match="not a multiple of the patch size 5"):
        convnets.SmallViT(1, 28, 10, patch=5)
    with pytest.raises(ValueError, match="unknown classifier 'vgg'"):
        convnets.build_classifier("vgg", 1, 28, 10)


def test_a_new_residual_block_is_the_identity_up_to_the_relu() -> None:
    """zero-initialised last BatchNorm gain: a fresh block passes its (non-negative) input through."""
    block = convnets.BasicBlock(8, 8).eval()
    x = torch.rand(2, 8, 7, 7)
    torch.testing.assert_close(block(x), x)
