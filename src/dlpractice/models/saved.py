"""A finished run's model, loaded back from its folder: what `dlp sample` and serving start from.

A run keeps its trained weights in model.safetensors (written by fit()) and what reading its outputs
needs, such as the vocabulary, as JSON beside them. Neither is a pickle: loading a run folder that came
from somewhere else can give wrong numbers, never run code. Every way a folder can be wrong (no weights
yet, a damaged file, weights of another model) is one line naming the run and what is wrong.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from dlpractice.errors import DlpError

WEIGHTS = "model.safetensors"


def read_run_json(run_dir: Path, name: str) -> Any:
    """A JSON file the run saved (e.g. vocab.json), or a one-line error when it is missing or damaged."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise DlpError(f"run {path.parent.name} has no {name}: it stopped before saving it")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise DlpError(f"{path} is unreadable (damaged?): {err}") from None


def load_run_model(run_dir: Path, model: torch.nn.Module) -> torch.nn.Module:
    """`model`, built from the run's config, with the run's trained weights: on the CPU, in eval mode."""
    path = Path(run_dir) / WEIGHTS
    if not path.is_file():
        raise DlpError(f"run {path.parent.name} has no trained weights ({WEIGHTS}): it has not finished")
    try:
        weights = load_file(str(path), device="cpu")  # tensors only: nothing in the file can run
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise DlpError(f"{path} is unreadable (truncated or damaged): {err}") from None
    misfit = mismatches(model.state_dict(), weights)
    if misfit:
        raise DlpError(f"{path} does not fit the model the run's config builds: {misfit}")
    model.load_state_dict(weights)
    return model.to("cpu").eval()


def mismatches(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor]) -> str:
    """What differs between a model's state_dict and a weights file, in a few words; "" when they fit."""
    missing, unknown = sorted(expected.keys() - found.keys()), sorted(found.keys() - expected.keys())
    shapes = [
        f"{k} is {tuple(found[k].shape)}, the model's {tuple(expected[k].shape)}"
        for k in sorted(expected.keys() & found.keys())
        if found[k].shape != expected[k].shape
    ]
    named = {"tensors missing": missing, "unknown tensors": unknown, "of another shape": shapes}
    return "; ".join(f"{len(keys)} {what} ({listed(keys)})" for what, keys in named.items() if keys)


def listed(items: list[str], most: int = 2) -> str:
    return ", ".join(items[:most]) + (", ..." if len(items) > most else "")
