"""The production labs: p1's smoke run, its child runs and the numbers its report draws from them; p2's
smoke run, its load test, its failure cases and `dlp serve` on it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from dlpractice.labs.production import p1_experiment_manager as p1
from dlpractice.labs.production import p2_serve as p2
from dlpractice.runner import RunSpec, start_run
from dlpractice.serving import FAILURES
from dlpractice.tracking import client


@pytest.fixture(scope="module")
def p1_smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p1")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("p1", "smoke", data="embedded"))
    monkeypatch.undo()


def child_runs(outcome, monkeypatch: pytest.MonkeyPatch) -> dict[str, object]:
    """Each child's MLflow run, by the child's name (tracked under the run's own DLP_HOME)."""
    monkeypatch.setenv("DLP_HOME", str(outcome.run_dir.parents[1]))
    mlflow = client()
    return {name: mlflow.get_run(run_id) for name, run_id in outcome.record.children.items()}


@pytest.mark.slow
def test_p1_smoke_runs_every_trial_and_seed_as_a_nested_run(
    p1_smoke, monkeypatch: pytest.MonkeyPatch
) -> None:
    trials = 3  # the smoke preset's budget per method
    names = {f"{m}{i:02d}" for m in p1.METHODS for i in range(trials)} | {"seed1337", "seed1338"}
    runs = child_runs(p1_smoke, monkeypatch)
    assert set(runs) == names
    for name, run in runs.items():
        assert run.data.tags["mlflow.parentRunId"] == p1_smoke.record.mlflow_run_id, name
        assert (p1_smoke.run_dir / name / "model.safetensors").exists(), name
    for method in p1.METHODS:  # every method tried distinct configurations
        configs = {tuple(runs[f"{method}{i:02d}"].data.params[k] for k in p1.SPACE) for i in range(trials)}
        assert len(configs) == trials, method
    for figure in ("best_so_far", "seed_spread"):
        assert (p1_smoke.run_dir / "figures" / f"{figure}.png").exists()


@pytest.mark.slow
def test_p1_metrics_are_drawn_from_its_child_runs(p1_smoke, monkeypatch: pytest.MonkeyPatch) -> None:
    runs = child_runs(p1_smoke, monkeypatch)
    loss = {name: run.data.metrics["val_loss"] for name, run in runs.items()}
    metrics = p1_smoke.metrics
    for method in p1.METHODS:
        best = min(v for name, v in loss.items() if name.startswith(method))
        assert metrics[f"{method}_best_val_loss"] == pytest.approx(best)
    assert p1_smoke.value == metrics["tpe_best_val_loss"]
    seeds = [loss["seed1337"], loss["seed1338"]]
    assert seeds[0] != seeds[1], "another seed should give another loss"
    assert metrics["default_val_loss"] == pytest.approx(loss["seed1337"])  # the trials' seed
    assert metrics["seed_std"] == pytest.approx(np.std(seeds, ddof=1))
    gain = metrics["default_val_loss"] - metrics["tpe_best_val_loss"]
    assert metrics["gain_over_default"] == pytest.approx(gain)
    assert metrics["beats_default"] == float(gain > 2 * metrics["seed_std"])


def test_grid_levels_are_centred_on_each_axis_scale() -> None:
    lr = p1.levels("lr", 2)
    low, high, _ = p1.SPACE["lr"]
    assert lr[0] * lr[1] == pytest.approx(low * high)  # symmetric about the log-scale middle
    assert p1.levels("n_embd", 3) == [5, 13, 21]  # 23 whole numbers in three equal bands


@pytest.fixture(scope="module")
def p2_smoke(tmp_path_factory: pytest.TempPathFactory):
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p2")))
        env.setenv("DLP_THREADS", "1")
        env.setenv("DLP_OFFLINE", "1")
        yield start_run(RunSpec("p2", "smoke", data="embedded"))


@pytest.mark.slow
def test_p2_smoke_measures_batching_against_one_request_at_a_time(p2_smoke) -> None:
    m = p2_smoke.metrics
    assert m["errors"] == 0 and m["changed_labels"] == 0, "batching must answer every request, the same"
    assert m["max_prob_change"] < 1e-4  # float noise of another batch shape, no more
    assert m["mean_batch_b1"] == 1.0, "max_batch 1: every request is its own forward pass"
    assert 1.0 < m["mean_batch_b8"] <= 8.0, "16 clients waiting: batches fill, never past max_batch"
    assert p2_smoke.value == m["batched_rps"] == m["rps_b8"]  # the smoke preset batches at 8 only
    assert m["batching_speedup"] == pytest.approx(m["batched_rps"] / m["unbatched_rps"])
    assert 0 < m["p50_ms"] <= m["p99_ms"]
    assert (p2_smoke.run_dir / "figures" / "batching.png").exists()


@pytest.mark.slow
def test_p2_failure_cases_are_wrong_and_most_confident_first(p2_smoke) -> None:
    failures = json.loads((p2_smoke.run_dir / FAILURES).read_text())
    assert failures and all(f["prediction"] != f["label"] for f in failures)
    confidence = [f["confidence"] for f in failures]
    assert confidence == sorted(confidence, reverse=True)


@pytest.mark.slow
def test_p2_run_is_served_by_dlp_serve(p2_smoke) -> None:
    pytest.importorskip("fastapi", reason="dlp serve needs the serve extra (fastapi)")
    from fastapi.testclient import TestClient

    from dlpractice.serve.app import build_app, served_from

    with TestClient(build_app(served_from(p2_smoke.run_dir), ui=False)) as client:
        answer = client.post("/predict", json={"text": "a gripping film"}).json()
        assert answer["label"] in ("negative", "positive")
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert client.get("/failures").json() == json.loads((p2_smoke.run_dir / FAILURES).read_text())


def test_percentile_is_one_of_the_values() -> None:
    assert p2.percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert p2.percentile([0.2, 0.1], 99) == 0.2
