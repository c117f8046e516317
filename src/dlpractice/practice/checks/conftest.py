"""The checks run on one CPU thread: they are small, and two threads on a busy machine only spin."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(1)
    threadpool_limits(1)
