"""Training checkpoints: one safetensors file holding weights, optimiser, scheduler, RNG states and step.

Tensors go in the safetensors body; everything else (step, optimiser hyper-parameters, scheduler state,
the loss history) is JSON in its metadata. A SHA-256 over tensors and metadata is stored too, so a
truncated or tampered file is refused with a clear error. Files are written atomically (temp + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from dlpractice.errors import DlpError

FORMAT = "dlp-checkpoint-1"


@dataclass
class TrainState:
    """Everything needed to continue a run exactly where it stopped."""

    step: int
    model: dict[str, torch.Tensor]
    optimizer: dict[str, Any]
    scheduler: dict[str, Any]
    batch_rng: torch.Tensor  # state of the generator that draws minibatches
    rng: dict[str, Any]  # global torch / numpy / python RNG states
    extra: dict[str, Any] = field(default_factory=dict)  # loop bookkeeping: history, best val, ...


def capture_rng() -> dict[str, Any]:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _digest(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> str:
    h = hashlib.sha256()
    for key in sorted(tensors):
        h.update(key.encode())
        h.update(tensors[key].reshape(-1).view(torch.uint8).numpy().tobytes())
    h.update(json.dumps(metadata, sort_keys=True).encode())
    return h.hexdigest()


def _flatten(state: TrainState) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Split a TrainState into safetensors tensors and JSON metadata strings."""
    tensors: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for name, t in state.model.items():
        t = t.detach().cpu().contiguous()
        if t.data_ptr() in seen:  # tied weights share storage, which safetensors refuses
            t = t.clone()
        seen.add(t.data_ptr())
        tensors[f"model.{name}"] = t
    optim_scalars: dict[str, dict[str, Any]] = {}
    for index, param_state in state.optimizer["state"].items():
        for key, value in param_state.items():
            if torch.is_tensor(value):
                tensors[f"optim.{index}.{key}"] = value.detach().cpu().contiguous()
            else:
                optim_scalars.setdefault(str(index), {})[key] = value
    numpy_name, numpy_keys, numpy_pos, has_gauss, cached = state.rng["numpy"]
    tensors["rng.batches"] = state.batch_rng.cpu()
    tensors["rng.torch"] = state.rng["torch"]
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(numpy_keys, dtype=np.int64))
    for i, cuda_state in enumerate(state.rng.get("cuda", [])):
        tensors[f"rng.cuda.{i}"] = cuda_state
    metadata = {
        "format": FORMAT,
        "step": str(state.step),
        "optimizer.param_groups": json.dumps(state.optimizer["param_groups"]),
        "optimizer.scalars": json.dumps(optim_scalars),
        "scheduler": json.dumps(state.scheduler),
        "rng.numpy": json.dumps([numpy_name, numpy_pos, has_gauss, cached]),
        "rng.python": json.dumps(state.rng["python"]),
        "extra": json.dumps(state.extra),
    }
    return tensors, metadata


def save_checkpoint(path: Path, state: TrainState) -> Path:
    """Write atomically: a crash mid-write leaves the previous checkpoint intact."""
    tensors, metadata = _flatten(state)
    metadata["sha256"] = _digest(tensors, metadata)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def read_checkpoint(path: Path) -> TrainState:
    """Load and verify a checkpoint; any damage is a one-line DlpError, never a traceback."""
    if not path.is_file():
        raise DlpError(f"no checkpoint at {path}")
    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise DlpError(f"checkpoint {path} is unreadable (truncated or corrupt): {err}") from None
    if metadata.get("format") != FORMAT:
        raise DlpError(f"{path} is not a dlp checkpoint (format {metadata.get('format')!r})")
    expected = metadata.pop("sha256", None)
    if expected != _digest(tensors, metadata):
        raise DlpError(f"checkpoint {path} failed its integrity check (modified or damaged); not resuming")
    return _unflatten(tensors, metadata)


def _unflatten(tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> TrainState:
    optim_state: dict[int, dict[str, Any]] = {}
    for index, scalars in json.loads(metadata["optimizer.scalars"]).items():
        optim_state.setdefault(int(index), {}).update(scalars)
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, index, name = key.split(".", 2)
            optim_state.setdefault(int(index), {})[name] = value
    numpy_name, numpy_pos, has_gauss, cached = json.loads(metadata["rng.numpy"])
    python_state = json.loads(metadata["rng.python"])
    rng = {
        "torch": tensors["rng.torch"],
        "numpy": (numpy_name, tensors["rng.numpy"].numpy().astype(np.uint32), numpy_pos, has_gauss, cached),
        "python": (python_state[0], tuple(python_state[1]), python_state[2]),
    }
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("rng.cuda."))]
    if cuda:
        rng["cuda"] = cuda
    return TrainState(
        step=int(metadata["step"]),
        model={k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")},
        optimizer={"state": optim_state, "param_groups": json.loads(metadata["optimizer.param_groups"])},
        scheduler=json.loads(metadata["scheduler"]),
        batch_rng=tensors["rng.batches"],
        rng=rng,
        extra=json.loads(metadata["extra"]),
    )


def save_weights(path: Path, model: torch.nn.Module) -> Path:
    """Weights only (what `dlp sample` and serving load), atomically."""
    weights = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(fd)
    try:
        save_file(weights, tmp)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_weights(path: Path, model: torch.nn.Module) -> torch.nn.Module:
    try:
        weights = load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise DlpError(f"weights file {path} is unreadable: {err}") from None
    model.load_state_dict(weights)
    return model
