"""Shared set-up for the scratch-engine tests: one thread, and the parity check against PyTorch that the
exercise checks use too (dlpractice/practice/checks/support.py)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from threadpoolctl import threadpool_limits

from dlpractice.practice.checks.support import check_against_torch as _check_against_torch

# The test machine has two shared cores; more threads only spin (see DESIGN.md, CPU threads).
torch.set_num_threads(1)
threadpool_limits(1)


@pytest.fixture(scope="session")
def check_against_torch() -> Callable[..., None]:
    return _check_against_torch
