"""The smoke presets of l3-l7 run end to end in-process: metrics, figures, samples, weights, `sample()`."""

import pytest

from dlpractice.config import build_config
from dlpractice.registry import load_lab
from dlpractice.runner import RunSpec, start_run

FIGURES = {
    "l3": {"loss", "levels"},
    "l4": {"loss", "gates"},
    "l5": {"loss", "gates"},
    "l6": {"loss", "gates"},
    "l7": {"loss", "attention", "positions"},
}


@pytest.mark.slow
@pytest.mark.parametrize("lab", sorted(FIGURES))
def test_smoke_run(lab):
    outcome = start_run(RunSpec(lab, "smoke", data="embedded"))
    assert outcome.value == outcome.metrics[outcome.lab.metric] < 2.8  # learned something (ln 27 = 3.30)
    assert outcome.metrics["initial_loss"] > 3.0
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} == FIGURES[lab]
    report = outcome.report.read_text()
    assert "## Samples" in report and "figures/loss.png" in report
    if lab in ("l4", "l5", "l6"):
        assert outcome.metrics["cell_torch_max_diff"] < 1e-5  # written-out cell == nn.RNN/LSTM/GRU
    module = load_lab(lab)
    cfg = build_config(module.Config, module.PRESETS, "smoke")
    names = module.sample(outcome.run_dir, cfg, 5, seed=1)
    assert len(names) == 5 and names == module.sample(outcome.run_dir, cfg, 5, seed=1)


@pytest.mark.parametrize("lab", sorted(FIGURES))
def test_every_preset_parses(lab):
    module = load_lab(lab)
    for preset in module.PRESETS:
        cfg = build_config(module.Config, module.PRESETS, preset)
        assert cfg.steps > 0


def test_name_stream_slices_the_names_end_to_end():
    from dlpractice.recipes.makemore import name_stream

    x, y = name_stream([[1, 2], [3]], 3)  # '.ab.c.'
    assert x.tolist() == [[0, 1, 2], [1, 2, 0], [2, 0, 3]]
    assert y.tolist() == [[1, 2, 0], [2, 0, 3], [0, 3, 0]]
