"""Depth models: the scale-invariant loss, block matching on a known shift, the cost volume against loops,
and the stereo network's shapes and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlpractice.models import depth


def test_scale_invariant_loss_is_mse_at_lam_0_and_blind_to_scale_at_lam_1() -> None:
    torch.manual_seed(0)
    log_pred, log_true = torch.randn(3, 8, 8), torch.randn(3, 8, 8)
    assert depth.scale_invariant_loss(log_pred, log_true, 0.0) == pytest.approx(
        float(F.mse_loss(log_pred, log_true))
    )
    shifted = log_pred + torch.tensor([0.5, -1.0, 2.0])[:, None, None]  # each image's depth times a factor
    assert depth.scale_invariant_loss(shifted, log_true, 1.0) == pytest.approx(
        float(depth.scale_invariant_loss(log_pred, log_true, 1.0)), abs=1e-5
    )


def test_block_matching_finds_a_uniform_shift_to_a_fraction_of_a_pixel() -> None:
    rng = np.random.default_rng(0)
    scene = rng.uniform(0, 1, (3, 40, 80)).astype(np.float32)
    left, right = scene[:, :, :-7], scene[:, :, 7:]  # every left pixel x is right pixel x - 7
    found = depth.block_matching(left, right, 16, 5)
    assert np.abs(found[:, 16:] - 7).max() < 0.25  # the right integer everywhere, refined near it
    assert abs(np.median(found[:, 16:]) - 7) < 0.01


def test_cost_volume_equals_the_correlation_written_out_pixel_by_pixel() -> None:
    torch.manual_seed(0)
    left, right = torch.randn(2, 4, 3, 6), torch.randn(2, 4, 3, 6)
    volume = depth.cost_volume(left, right, max_disparity=4, groups=2)
    assert volume.shape == (2, 2, 4, 3, 6)
    for d in range(4):
        for x in range(6):
            expected = (
                (left[:, :, :, x] * right[:, :, :, x - d]).view(2, 2, 2, 3).mean(2)
                if x >= d
                else torch.zeros(2, 2, 3)
            )
            assert torch.allclose(volume[:, :, d, :, x], expected, atol=1e-6)


def test_stereo_net_predicts_any_size_and_learns_from_its_loss() -> None:
    torch.manual_seed(0)
    net = depth.StereoNet(max_disparity=16, features=8, groups=4, width=4)
    pair, truth = torch.rand(2, 6, 32, 48), torch.rand(2, 32, 48) * 10
    disparity, loss = net(pair, truth)
    assert disparity.shape == (2, 32, 48) and disparity.min() >= 0 and disparity.max() <= 15
    loss.backward()
    assert all(p.grad is not None for p in net.parameters())
    assert net.predict(torch.rand(3, 21, 37), torch.rand(3, 21, 37)).shape == (21, 37)
    with pytest.raises(ValueError, match="multiple of 16|divide by 16"):
        depth.StereoNet(max_disparity=20)
