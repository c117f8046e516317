"""Shared set-up for the scratch-engine tests: one thread, and a parity check against PyTorch."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits

from dlpractice.scratch import Tensor

# The test machine has two shared cores; more threads only spin (see DESIGN.md, CPU threads).
torch.set_num_threads(1)
threadpool_limits(1)

ATOL = 1e-6


def _check_against_torch(
    scratch_fn: Callable[..., Tensor],
    torch_fn: Callable[..., torch.Tensor],
    arrays: Sequence[np.ndarray],
    atol: float = ATOL,
    tensor: type = Tensor,
) -> None:
    """Same float64 inputs through both engines: outputs and input gradients must agree.

    The output is weighted by random numbers before backward, so every upstream gradient differs.
    `tensor` is the Tensor class under test (a practice workspace's own, when graded there).
    """
    ours = [tensor(a.copy(), requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out, ref = scratch_fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.data, ref.detach().numpy(), atol=atol, rtol=1e-6, err_msg="forward")
    weights = np.random.default_rng(1).standard_normal(out.shape)
    (out * weights).sum().backward()
    (ref * torch.tensor(weights)).sum().backward()
    for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
        assert a.grad is not None, f"no gradient reached input {i}"
        np.testing.assert_allclose(a.grad, b.grad.numpy(), atol=atol, rtol=1e-6, err_msg=f"grad of input {i}")


@pytest.fixture(scope="session")
def check_against_torch() -> Callable[..., None]:
    return _check_against_torch
