"""Checks of lab v7: the group-wise correlation cost volume (v7.1) and the scale-invariant loss (v7.2)."""

from __future__ import annotations

import pytest
import torch


def correlation_by_loops(
    left: torch.Tensor, right: torch.Tensor, max_disparity: int, groups: int
) -> torch.Tensor:
    """The cost volume written out one disparity and one column at a time: the slow, obvious reference."""
    b, c, h, w = left.shape
    volume = torch.zeros(b, groups, max_disparity, h, w)
    for d in range(max_disparity):
        for x in range(d, w):
            product = left[:, :, :, x] * right[:, :, :, x - d]  # (B, C, H)
            volume[:, :, d, :, x] = product.view(b, groups, c // groups, h).mean(2)
    return volume


@pytest.mark.exercise("v7.1")
def test_cost_volume_correlates_each_left_pixel_with_the_right_pixel_d_to_its_left(impl) -> None:
    torch.manual_seed(0)
    left, right = torch.randn(2, 6, 3, 9), torch.randn(2, 6, 3, 9)
    got = impl.cost_volume(left, right, 5, 3)
    assert tuple(got.shape) == (2, 3, 5, 3, 9), (
        f"expected (B, groups, D, H, W) = (2, 3, 5, 3, 9), got {tuple(got.shape)}"
    )
    expected = correlation_by_loops(left, right, 5, 3)
    assert torch.allclose(got[:, :, 0], expected[:, :, 0], atol=1e-5), (
        "disparity 0: the mean over each group's channels of left * right at the same pixel"
    )
    assert torch.allclose(got, expected, atol=1e-5), (
        "disparity d pairs left pixel x with right pixel x - d (the right camera sees things further left); "
        "the mean (not the sum) over each group of C / groups consecutive channels; 0 where x - d < 0"
    )


@pytest.mark.exercise("v7.1")
def test_cost_volume_peaks_at_the_true_shift_and_carries_gradients(impl) -> None:
    torch.manual_seed(1)
    scene = torch.randn(1, 32, 4, 30)
    left, right = scene[..., :24].clone().requires_grad_(), scene[..., 3:27]  # left x is right x - 3
    volume = impl.cost_volume(left, right, 6, 2)
    best = volume.sum(1).argmax(1)  # (1, H, W): the best disparity of each pixel
    assert (best[..., 6:] == 3).all(), "a pair shifted by 3 pixels should correlate best at disparity 3"
    volume.sum().backward()
    assert left.grad is not None and left.grad.abs().sum() > 0, "the cost volume must be differentiable"


@pytest.mark.exercise("v7.2")
def test_scale_invariant_loss_matches_its_formula(impl) -> None:
    torch.manual_seed(2)
    log_pred, log_true = torch.randn(3, 5, 7), torch.randn(3, 5, 7)
    d = (log_pred - log_true).flatten(1)
    for lam in (0.0, 0.5, 1.0):
        expected = ((d**2).mean(1) - lam * d.mean(1) ** 2).mean()
        got = impl.scale_invariant_loss(log_pred, log_true, lam)
        assert float(got) == pytest.approx(float(expected), rel=1e-5), (
            f"lam={lam}: per image mean(d^2) - lam * mean(d)^2 with d = log_pred - log_true, "
            f"then the batch mean; expected {float(expected):.5f}, got {float(got):.5f}"
        )


@pytest.mark.exercise("v7.2")
def test_scale_invariant_loss_forgives_one_scale_per_image(impl) -> None:
    torch.manual_seed(3)
    log_true = torch.randn(2, 6, 6)
    log_pred = log_true + torch.tensor([0.7, -1.2])[:, None, None]  # each image's depth times its own factor
    got = float(impl.scale_invariant_loss(log_pred, log_true, 1.0))
    assert got == pytest.approx(0.0, abs=1e-5), (
        f"lam = 1 and a prediction off by one factor per image should cost 0, got {got:.4f}: "
        "the mean of d is taken per image, not over the whole batch"
    )
