"""Checks of lab l3 (WaveNet-style makemore): fusing neighbouring positions, and batch norm over batch and
time."""

from __future__ import annotations

import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("l3.1")
def test_flatten_consecutive_fuses_neighbours(impl):
    """(B, T, C) -> (B, T / n, n C): n neighbours side by side; a time axis of length 1 is dropped."""
    x = torch.arange(2 * 8 * 3).view(2, 8, 3)  # (B, T, C)
    y = impl.FlattenConsecutive(2)(x)
    assert y.shape == (2, 4, 6), f"(2, 8, 3) fused by 2 should be (2, 4, 6), got {tuple(y.shape)}"
    assert y[0, 1].tolist() == x[0, 2].tolist() + x[0, 3].tolist(), (
        "output position 1 should hold input positions 2 and 3 side by side"
    )
    whole = impl.FlattenConsecutive(8)(x)
    assert whole.shape == (2, 24), (
        f"(2, 8, 3) fused by 8 should be (2, 24): squeeze a time axis of length 1; got {tuple(whole.shape)}"
    )


@pytest.mark.exercise("l3.2")
def test_batchnorm_normalises_over_batch_and_time(impl):
    """On (B, T, C) the statistics are over batch and time together, one per channel."""
    torch.manual_seed(4)
    bn = impl.SeqBatchNorm(5)
    x = torch.randn(16, 4, 5) * 3 + torch.arange(4).view(1, 4, 1)  # each position has its own offset
    y = bn(x)
    assert_close(
        y.mean((0, 1)),
        torch.zeros(5),
        "each channel's output should have mean 0 over batch and time",
        atol=1e-5,
        rtol=0,
    )
    assert_close(
        y.var((0, 1), unbiased=False),
        torch.ones(5),
        "each channel's output should have variance 1 over batch and time",
        atol=1e-3,
        rtol=0,
    )
    assert y.mean(0)[0].mean() < -0.1, (
        "per-position means were removed one by one: take the statistics over dims (0, 1) of a 3-D input"
    )
    assert_close(
        bn.running_mean,
        0.1 * x.mean((0, 1)),
        "running_mean should move 10 % (momentum 0.1) toward the batch-and-time mean",
        atol=1e-5,
        rtol=0,
    )
