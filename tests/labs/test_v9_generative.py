"""Lab v9 end to end on its smoke preset: every generator scored, FID agreeing with torchmetrics, the
figures, the unreadable DDPM samples as failure cases, and the served 4x4 grid for a seed."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from dlpractice.labs.vision import v9_generative as v9
from dlpractice.runner import RunSpec, start_run
from dlpractice.serve.media import picture


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("v9")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("v9", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_every_generator_against_the_real_floor(smoke) -> None:
    m = smoke.metrics
    for name in ("ae", "vae", "dcgan", "ddpm", "ddim2", "ddim5", "real"):
        assert m[f"{name}_fid"] >= -1e-9, name
    for name in ("ae", "vae", "dcgan", "ddpm"):
        assert 0 <= m[f"{name}_class_entropy"] <= np.log(10) + 1e-9
        assert 0.1 <= m[f"{name}_confidence"] <= 1
        assert m[f"{name}_seconds"] > 0 and m[f"{name}_params"] > 0
    assert m["torchmetrics_fid_diff"] < 1e-3 * max(1.0, m["ddpm_fid"])
    assert m["vae_neg_elbo"] == pytest.approx(m["vae_recon_nll"] + m["vae_kl"], rel=1e-5)
    assert smoke.value == m["ddpm_fid"]
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"samples", "fid", "curves", "vae_latent", "interpolation", "denoising"}
    assert "| real vs real (floor) |" in smoke.report.read_text()
    assert (smoke.run_dir / "model.safetensors").is_file()
    assert (smoke.run_dir / "dcgan" / "model.safetensors").is_file()


@pytest.mark.slow
def test_failure_cases_are_the_least_readable_ddpm_samples(smoke) -> None:
    failures = json.loads((smoke.run_dir / "failures.json").read_text())
    assert len(failures) == 40  # n_fid samples of the smoke preset, least confident first
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences)
    assert failures[0]["label"] == "sample" and failures[0]["prediction"].startswith("reads as ")
    assert picture(failures[0]["input"]).shape == (28, 28, 3)


@pytest.mark.slow
def test_served_grid_is_sixteen_digits_repeatable_by_seed(smoke) -> None:
    cfg = v9.Config(**v9.PRESETS["smoke"])
    predictor = v9.serve(smoke.run_dir, cfg)
    first, again, other = predictor.predict([{"text": "7"}, {"text": " 7 "}, {"text": "8"}])
    assert first["values"] == {"seed": 7} and picture(first["image"]).shape == (112, 112)
    assert first["image"] == again["image"] != other["image"]
    for bad in ("seven", "-1", "1.5", "", "9" * 30):
        with pytest.raises(ValueError, match="seed"):
            predictor.check({"text": bad})


def test_grid_answer_tiles_the_samples_row_by_row() -> None:
    class Fixed:
        def sample(self, n, generator, ddim_steps):
            return (
                torch.arange(16.0).view(16, 1, 1, 1).expand(16, 1, 28, 28) / 7.5 - 1
            )  # sample i is flat i/15

    answer = v9.grid_answer(Fixed(), 3, 2)
    grid = picture(answer["image"]).astype(float) / 255  # (112, 112)
    assert grid.shape == (112, 112)
    assert grid[0, 28] == pytest.approx(1 / 15, abs=0.01) and grid[28, 0] == pytest.approx(4 / 15, abs=0.01)
