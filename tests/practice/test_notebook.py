"""`dlp notebook` writes the lab as cells that run top to bottom (checked with nbclient, smoke preset)."""

from __future__ import annotations

import nbformat
import pytest
from nbclient import NotebookClient

from dlpractice.practice.notebook import notebook_cells
from dlpractice.registry import load_lab
from dlpractice.runner import read_run
from dlpractice.tracking import client


def test_cells_follow_the_lab_and_unroll_run() -> None:
    cells = notebook_cells(load_lab("l2"), "smoke")
    code = [text for kind, text in cells if kind == "code"]
    assert cells[0][0] == "markdown" and cells[0][1].startswith("# l2 · makemore: MLP")
    assert any(text.startswith("def parity_check(") for text in code)
    assert not any(text.startswith("def run(") for text in code)  # its body runs cell by cell instead
    assert any("fit(model, data, cfg, ctx)" in text for text in code) and code[-2].endswith("metrics")


@pytest.mark.slow
def test_notebook_runs_top_to_bottom(dlp, tmp_path, dlp_home) -> None:
    path = tmp_path / "l1.ipynb"
    made = dlp("notebook", "l1", "--out", str(path))
    assert made.returncode == 0, made.stderr
    notebook = nbformat.read(str(path), as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    text = "".join(str(output.get("data", {}).get("text/plain", "")) for output in outputs)
    assert "test_nll" in text and "count_test_nll" in text
    assert any("image/png" in output.get("data", {}) for output in outputs)  # the figures are shown

    # the notebook's run is a run like any other: run.json, a report, a finished MLflow run with metrics
    (run_dir,) = (dlp_home / "runs").iterdir()
    record = read_run(run_dir)
    assert record.status == "finished" and record.spec.origin == "notebook" and "test_nll" in record.metrics
    assert dlp("report", run_dir.name).returncode == 0
    tracked = client().get_run(record.mlflow_run_id)
    assert tracked.info.status == "FINISHED" and "final_test_nll" in tracked.data.metrics
