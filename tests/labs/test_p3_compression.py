"""Lab p3 end to end on its smoke preset: every variant of the table measured, our pieces equal torch's,
the exports equal PyTorch, the static int8 model served from its saved state, its mistakes as failure
cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpractice.data.images import load_image_data
from dlpractice.labs.production import p3_compression as p3
from dlpractice.runner import RunSpec, start_run

VARIANTS = [
    "fp32",
    "pruned-50",
    "pruned-50-ft",
    "pruned-90",
    "pruned-90-ft",
    "structured",
    "dynamic-int8",
    "static-int8",
    "qat-int8",
    "student",
    "kd-student",
    "torchscript",
    "onnxruntime",
]


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p3")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("p3", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_every_variant_is_measured_and_the_pieces_agree_with_torch(smoke) -> None:
    m = smoke.metrics
    for name in VARIANTS:
        assert 0 <= m[f"{name}_accuracy"] <= 1
        assert m[f"{name}_bytes"] > 0 and m[f"{name}_ms_batch_1"] > 0 and m[f"{name}_ms_batch_n"] > 0
    assert m["static_int8_accuracy"] == m["static-int8_accuracy"]
    assert m["prune_mask_mismatches"] == 0 and m["affine_code_max_diff"] == 0
    assert m["affine_dequant_max_diff"] < 1e-6 and m["kd_loss_vs_kl_div_diff"] < 1e-4
    assert m["torchscript_max_diff"] < 1e-5 and m["onnx_max_diff"] < 1e-4
    assert m["torchscript_accuracy"] == m["onnxruntime_accuracy"] == m["fp32_accuracy"]
    for sparsity in (50, 90):  # the masks held through fine-tuning; a dense file keeps every zero
        assert m[f"pruned-{sparsity}-ft_weight_sparsity"] == pytest.approx(sparsity / 100, abs=1e-3)
        assert m[f"pruned-{sparsity}_bytes"] == m["fp32_bytes"]
        assert m[f"pruned-{sparsity}_gzip_bytes"] < m["fp32_gzip_bytes"]
    assert m["structured_bytes"] < m["fp32_bytes"] and m["student_bytes"] < m["structured_bytes"]
    assert m["static-int8_bytes"] < m["fp32_bytes"]
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} == {
        "loss",
        "sparsity",
        "tradeoff",
        "histograms",
    }
    assert "| static-int8 |" in smoke.report.read_text()


@pytest.mark.slow
def test_served_static_int8_model_answers_like_the_run_measured_it(smoke) -> None:
    cfg = p3.Config(**p3.PRESETS["smoke"])
    predictor = p3.serve(smoke.run_dir, cfg)
    data = load_image_data("digits", "embedded")
    pictures = [(image[0] * 255).round().astype(np.uint8) for image in data.x_test]  # (8, 8) each
    answers = predictor.predict([{"image": picture} for picture in pictures])
    assert all(sum(a["probabilities"].values()) == pytest.approx(1, abs=1e-4) for a in answers)
    served = np.mean([int(a["label"]) == y for a, y in zip(answers, data.y_test)])
    # the same model on the same test images, up to their 8-bit re-encoding
    assert served == pytest.approx(smoke.metrics["static_int8_accuracy"], abs=0.02)
    answers = predictor.predict([{"image": np.full((30, 50, 3), 200, np.uint8)}])  # any size, colour
    assert answers[0]["label"] in p3.CLASSES["digits"]


@pytest.mark.slow
def test_failure_cases_are_the_static_int8_models_confident_mistakes(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    n_test = len(load_image_data("digits", "embedded").y_test)
    wrong = round((1 - smoke.metrics["static_int8_accuracy"]) * n_test)
    assert len(failures) == min(100, wrong)
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)
    assert all(f["label"] != f["prediction"] and f["input"].startswith("data:image/png") for f in failures)
