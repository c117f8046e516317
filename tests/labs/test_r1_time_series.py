"""Lab r1 end to end on its smoke preset: every model scored on both real series, the baselines' known
order, both anomaly detectors scored on the generated series, the figures and the report's tables."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.data import series as ts
from dlpractice.labs.beyond import r1_time_series as r1
from dlpractice.runner import RunSpec, start_run

MODELS = ("naive", "seasonal_naive", "sarima", "mlp", "gru", "lstm")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("r1")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("r1", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_every_model_on_both_series(smoke) -> None:
    m = smoke.metrics
    for name in ("co2", "sunspots"):
        for model in MODELS:
            assert m[f"{name}_{model}_mase"] > 0 and m[f"{name}_{model}_rmse"] >= m[f"{name}_{model}_mae"] > 0
        # measured facts of the data, not of training: a season repeats, and SARIMA beats repeating it
        assert m[f"{name}_seasonal_naive_mase"] < m[f"{name}_naive_mase"]
        assert m[f"{name}_sarima_mase"] < 1 < m[f"{name}_seasonal_naive_mase"]
        assert 0 <= m[f"{name}_lstm_interval_coverage"] <= 1
        for net in ("mlp", "gru", "lstm"):
            assert (smoke.run_dir / f"{name}-{net}-seed0" / "model.safetensors").is_file()
    assert smoke.value == m["lstm_mase"] == m["co2_lstm_mase"]
    for detector in ("residual_z_score", "autoencoder"):
        for score in ("precision", "recall", "f1", "average_precision", "event_recall"):
            assert 0 <= m[f"{detector}_{score}"] <= 1, (detector, score)
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"co2-forecasts", "sunspots-forecasts", "horizon", "anomalies", "loss"}
    report = smoke.report.read_text()
    assert "GENERATED" in report and "| seasonal naive |" in report and "| LSTM autoencoder |" in report


def test_detect_picks_the_threshold_on_validation_and_scores_test() -> None:
    gen = ts.AnomalySeries(
        np.zeros(12), np.array([0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 1], bool), [(8, 9, "spike")]
    )
    perfect = gen.labels.astype(float)  # a detector that knows the answer
    late = np.r_[perfect[:6], np.roll(perfect[6:], 1)]  # right on validation, one step late on test
    metrics, flags = r1.detect(gen, {"perfect": perfect, "late one": late}, (0, 6))
    assert metrics["perfect_f1"] == 1 and metrics["perfect_average_precision"] == 1
    assert metrics["late_one_f1"] == 0 and metrics["late_one_event_recall"] == 0
    assert flags["perfect"].tolist() == [False, False, True, False, False, True]
