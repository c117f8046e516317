"""Lab v11 end to end on its smoke preset: both decoders scored at every beam size, BLEU equal to
torchmetrics', the figures, the worst captions as failure cases, and the served model's caption."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpractice.data.captions import generate_scenes
from dlpractice.labs.vision import v11_image_captioning as v11
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v11")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v11", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_both_decoders_and_agrees_with_torchmetrics(smoke) -> None:
    m = smoke.metrics
    for name in ("gru", "transformer"):
        for beam in (1, 3):
            assert 0 <= m[f"{name}_bleu4_beam{beam}"] <= m[f"{name}_bleu1_beam{beam}"] <= 1
            assert 0 <= m[f"{name}_fact_accuracy_beam{beam}"] <= 1
        assert (smoke.run_dir / name / "model.safetensors").is_file()
    best = "transformer" if m["best_is_transformer"] else "gru"
    assert m["bleu4"] == m[f"{best}_bleu4_beam3"] == max(m["gru_bleu4_beam3"], m["transformer_bleu4_beam3"])
    assert m["torchmetrics_bleu4_diff"] < 1e-6
    for name in ("gru", "transformer"):  # every caption earns one verdict; "right" is the fact accuracy
        shares = [v for k, v in m.items() if k.startswith(f"{name}_facts_")]
        assert len(shares) == 4 and sum(shares) == pytest.approx(1)
        assert m[f"{name}_facts_right"] == pytest.approx(m[f"{name}_fact_accuracy_beam3"])
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"loss_gru", "loss_transformer", "beam", "examples", "worst", "attention"}
    assert "| GRU + soft attention | 3 |" in smoke.report.read_text()


@pytest.mark.slow
def test_failure_cases_are_the_lowest_bleu_captions(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == 12  # every test picture of the smoke preset, worst first
    scores = [f["confidence"] for f in failures]
    assert scores == sorted(scores) and scores[0] == pytest.approx(
        smoke.metrics["worst_caption_bleu2"], abs=1e-4
    )
    assert failures[0]["input"].startswith("data:image/png;base64,") and failures[0]["label"]


@pytest.mark.slow
def test_served_model_writes_a_caption_of_its_vocabulary(smoke) -> None:
    cfg = v11.Config(**v11.PRESETS["smoke"])
    predictor = v11.serve(smoke.run_dir, cfg)
    x, _, _ = generate_scenes(2, seed=99)
    pictures = [(image.transpose(1, 2, 0) * 255).astype(np.uint8) for image in x]
    answers = predictor.predict([{"image": pictures[0]}, {"image": pictures[1][:40]}])  # any size
    tokens = set(json.loads((smoke.run_dir / "serving.json").read_text())["tokens"][4:])
    assert len(answers) == 2
    for answer in answers:
        assert set(answer) == {"text"} and set(answer["text"].split()) <= tokens
