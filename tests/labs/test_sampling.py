"""`sample()` of the eight generative labs (l1-l8) loads a run folder through models/saved.py: a folder
without weights, with damaged weights or with another model's weights is one line, never a traceback;
l1's bigram samples from the weights it is given."""

from __future__ import annotations

import json
import string

import pytest
import torch

from dlpractice.checkpoint import save_weights
from dlpractice.config import build_config
from dlpractice.errors import DlpError
from dlpractice.models.makemore import Bigram
from dlpractice.models.saved import WEIGHTS
from dlpractice.registry import load_lab

LABS = ["l1", "l2", "l3", "l4", "l5", "l6", "l7", "l8"]
NAME_CHARS = [".", *string.ascii_lowercase]  # vocab.json of a names run: the boundary first


def run_folder(path, lab: str):
    chars = [*"\n !',.:;?", *string.ascii_letters] if lab == "l8" else NAME_CHARS
    (path / "vocab.json").write_text(json.dumps(chars))
    return path, load_lab(lab), len(chars)


@pytest.mark.parametrize("lab", LABS)
def test_missing_damaged_or_foreign_weights_are_one_line(tmp_path, lab):
    run_dir, module, _ = run_folder(tmp_path, lab)
    cfg = build_config(module.Config, module.PRESETS, "smoke")
    with pytest.raises(DlpError, match="has no trained weights"):
        module.sample(run_dir, cfg, 2, 0)
    save_weights(run_dir / WEIGHTS, torch.nn.Linear(2, 3))
    with pytest.raises(DlpError, match="does not fit the model the run's config builds"):
        module.sample(run_dir, cfg, 2, 0)
    (run_dir / WEIGHTS).write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(DlpError, match="unreadable"):
        module.sample(run_dir, cfg, 2, 0)


def test_the_bigram_samples_what_its_weights_say(tmp_path):
    run_dir, module, vocab_size = run_folder(tmp_path, "l1")
    model = Bigram(vocab_size)
    with torch.no_grad():  # '.' -> 'a' -> 'b' -> '.' and nothing else
        model.logits.fill_(-1e4)
        model.logits[0, 1] = model.logits[1, 2] = model.logits[2, 0] = 0.0
    save_weights(run_dir / WEIGHTS, model)
    cfg = build_config(module.Config, module.PRESETS, "smoke")
    assert module.sample(run_dir, cfg, 3, 0) == ["ab", "ab", "ab"]
