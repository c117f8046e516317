"""Lab p5 end to end on its smoke preset: every prediction meets its measurement, the FLOPs exactly, and
the report has its figures and tables."""

from __future__ import annotations

import json

import pytest

from dlpractice.labs.production import p5_model_maths as p5
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("p5")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("p5", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_predicts_what_it_measures(smoke) -> None:
    m = smoke.metrics
    names = ["mlp", "cnn", *(f"gpt{w}" for w in p5.PRESETS["smoke"]["gpt_widths"])]
    for name in names:
        for quantity in ("params", "forward_flops", "train_flops", "activation"):
            assert m[f"{name}_{quantity}_rel_error"] == 0, (name, quantity)
        # only Adam's 0-d step counters (4 bytes a parameter tensor) are outside the formula
        assert 0 < m[f"{name}_memory_rel_error"] < 1e-3
        assert m[f"{name}_gflops_per_s"] > 0 and 0 < m[f"{name}_mfu"] < 1
    for name in names[2:]:
        assert m[f"{name}_train_over_forward"] == 3
        assert 0 < m[f"{name}_flash_uncounted_fraction"] < 0.2  # attention's T^2 terms, uncounted on CPU
        assert 0.9 < m[f"{name}_six_nd_over_counted"] < 1.1
    assert m["mlp_train_over_forward"] < 3 and m["cnn_train_over_forward"] < 3  # no gradient for the input
    for variant in ("float32", "checkpointed", "bfloat16", "kv_cache"):
        assert m[f"seq_{variant}_rel_error"] == 0, variant
    assert m["checkpointed_train_flops_rel_error"] == 0 and 3 < m["checkpointed_train_over_forward"] < 4
    assert m["max_flops_rel_error"] == 0 and m["max_rel_error"] < 1e-3 and m["matmul_peak_gflops"] > 0
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} == {
        "memory",
        "flops",
        "sequence",
        "mfu",
    }
    report = smoke.report.read_text()
    assert "| gpt64 |" in report and "Compute-optimal budgets" in report and "checkpointed" in report
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["data_info"]["data_source"] == "embedded"


def test_a_width_the_heads_do_not_divide_is_one_line() -> None:
    from dlpractice.config import validate
    from dlpractice.errors import DlpError

    with pytest.raises(DlpError, match="gpt_widths must be multiples of n_head"):
        validate(p5.Config(gpt_widths=(30, 64)))
