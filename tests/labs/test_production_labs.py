"""The production labs: p1's smoke run, its child runs and the numbers its report draws from them."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.labs.production import p1_experiment_manager as p1
from dlpractice.runner import RunSpec, start_run
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
