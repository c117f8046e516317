"""Checks of lab s2: statistics pooling, the mean and standard deviation of each channel over an utterance's
own frames, against torch.std_mean on each utterance cut to its length."""

from __future__ import annotations

import pytest
import torch

from dlpractice.practice.checks.support import assert_close

FLOOR = 1e-5  # the variance floor the docstring names


def expected_pooling(h: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    rows = []
    for b, n in enumerate(lengths):
        std, mean = torch.std_mean(h[b, :, :n], dim=-1, unbiased=False)
        rows.append(torch.cat([mean, (std**2 + FLOOR).sqrt()]))
    return torch.stack(rows)


@pytest.mark.exercise("s2.1")
def test_statistics_pooling_without_lengths_uses_every_frame(impl):
    torch.manual_seed(0)
    h = torch.randn(2, 3, 7) * 2 + 1  # (B, C, T)
    got = impl.statistics_pooling(h)
    assert tuple(got.shape) == (2, 6), f"expected (B, 2C) = (2, 6), got {tuple(got.shape)}"
    assert_close(
        got,
        expected_pooling(h, [7, 7]),
        "the first C values are each channel's mean over time, the next C sqrt(population variance + 1e-5)",
        rtol=1e-5,
        atol=1e-6,
    )


@pytest.mark.exercise("s2.1")
def test_statistics_pooling_ignores_the_frames_past_each_length(impl):
    torch.manual_seed(1)
    h = torch.randn(3, 4, 10)
    lengths = [10, 3, 1]
    h[1, :, 3:] = 500.0  # padding: it must change nothing
    h[2, :, 1:] = -500.0
    got = impl.statistics_pooling(h, torch.tensor(lengths))
    assert_close(
        got,
        expected_pooling(h, lengths),
        "mean and std over the first lengths[b] frames only (divide by the length, not by T)",
        rtol=1e-5,
        atol=1e-5,
    )
