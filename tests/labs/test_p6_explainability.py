"""Lab p6 end to end on its smoke preset: the hand-written explanations meet the libraries', Shapley values
add up, the fairness metrics meet fairlearn's, mitigation narrows the gap, and the report has its figures."""

from __future__ import annotations

import json

import pytest

from dlpractice.labs.production import p6_explainability as p6
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p6")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("p6", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_explains_and_mitigates(smoke) -> None:
    m = smoke.metrics
    assert m["shap_kernel_full_max_abs_diff"] < 1e-6 and m["lime_max_abs_diff"] < 1e-6
    assert m["captum_ig_max_abs_diff"] < 1e-5
    assert m["mlp_shapley_efficiency_gap"] < 1e-4 and m["hgb_shapley_efficiency_gap"] < 1e-9
    steps = p6.PRESETS["smoke"]["completeness_steps"]
    errors = [m[f"ig_completeness_{n}"] for n in steps]
    assert errors == sorted(errors, reverse=True), errors
    for method in ("exact_shapley", "kernel_shap", "lime", "integrated_gradients"):
        assert -1 <= m[f"mlp_{method}_truth_rank_corr"] <= 1 and m[f"mlp_{method}_seconds_per_row"] > 0
    assert m["mlp_exact_shapley_exact_rank_corr"] == 1 and "hgb_integrated_gradients_seconds_per_row" not in m
    assert m["dp_fairlearn_abs_diff"] < 1e-12 and m["eod_fairlearn_abs_diff"] < 1e-12
    assert m["mitigated_eod"] < m["unmitigated_eod"] and 0.5 < m["mlp_test_accuracy"] <= 1
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} == {
        "summary",
        "waterfall",
        "methods",
        "group-rates",
        "tradeoff",
    }
    report = smoke.report.read_text()
    assert "| mlp | lime |" in report and "fairlearn ThresholdOptimizer" in report
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["data_info"]["data_source"] == "embedded"
