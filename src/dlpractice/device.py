"""Which device a run uses: cuda, then mps, then cpu, unless the user names one."""

from __future__ import annotations

import torch

from dlpractice.errors import DlpError


def pick_device(requested: str) -> str:
    """'auto' -> cuda, then mps, then cpu. Asking for a device this machine lacks is a clear error."""
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if requested not in (*available, "auto"):
        raise DlpError(f"unknown device {requested!r}; use auto, cpu, cuda or mps")
    if requested != "auto":
        if not available[requested]:
            raise DlpError(f"--device {requested} requested but this machine has no {requested} device")
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if torch.backends.mps.is_available():
        return "mps"
    return "cpu"
