"""Checks of lab l2 (the MLP by hand in NumPy): the fused softmax cross-entropy and the batch-norm
backward pass, each against PyTorch's autograd in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("l2.1")
def test_softmax_cross_entropy_matches_torch(impl):
    """The mean cross-entropy and its gradient (softmax - one-hot) / B equal PyTorch's."""
    logits = torch.randn(16, 27, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(27, (16,))
    loss = torch.nn.functional.cross_entropy(logits, targets)
    loss.backward()
    ours, dlogits = impl.softmax_cross_entropy(logits.detach().numpy(), targets.numpy())
    assert ours == pytest.approx(loss.item(), abs=1e-12), (
        f"the loss should be the mean of -log softmax(logits)[target] ({loss.item():.6f}), got {ours}"
    )
    assert_close(
        dlogits,
        logits.grad.numpy(),
        "dlogits should be (softmax(logits) - one_hot(targets)) / B, PyTorch's gradient",
        atol=1e-12,
    )


@pytest.mark.exercise("l2.2")
def test_batchnorm_backward_matches_torch(impl):
    """The gradient through batch normalisation (mean and variance of the batch included) is PyTorch's."""
    x = torch.randn(32, 8, dtype=torch.float64, requires_grad=True)
    gamma = torch.rand(8, dtype=torch.float64) + 0.5
    dout = torch.randn(32, 8, dtype=torch.float64)
    out = torch.nn.functional.batch_norm(x, None, None, weight=gamma, training=True, eps=1e-5)
    out.backward(dout)
    xd = x.detach().numpy()
    inv_std = 1 / np.sqrt(xd.var(0) + 1e-5)
    xhat = (xd - xd.mean(0)) * inv_std
    assert_close(
        impl.batchnorm_backward(dout.numpy(), xhat, gamma.numpy(), inv_std),
        x.grad.numpy(),
        "dx should be PyTorch's gradient of batch norm, the paths through the batch mean and variance "
        "included",
        atol=1e-10,
    )
