"""Checks of lab f4: the Huber and focal losses against PyTorch and their definitions."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("f4.1")
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_matches_torch(impl, delta: float) -> None:
    """Quadratic within delta, linear beyond, and continuous at delta: torch's huber_loss."""
    pred, target = torch.randn(100, 1) * 3, torch.randn(100, 1)
    assert_close(
        impl.huber(pred, target, delta),
        F.huber_loss(pred, target, delta=delta),
        f"huber(delta={delta}) should equal mean(0.5 r^2 if |r| <= delta else delta (|r| - delta / 2))",
    )


@pytest.mark.exercise("f4.2")
def test_focal_loss(impl) -> None:
    """Focal loss: mean of -(1 - p_t)^gamma log p_t, p_t the probability of the true class."""
    logit, target = torch.randn(200), (torch.rand(200) < 0.3).float()
    bce = F.binary_cross_entropy_with_logits(logit, target)
    assert_close(impl.focal(logit, target, gamma=0.0), bce, "with gamma 0 the focal loss should be plain BCE")
    assert impl.focal(logit, target, gamma=2.0) < bce, "with gamma 2 the loss should fall below plain BCE"
    confident = torch.tensor([8.0]), torch.tensor([1.0])
    assert impl.focal(*confident, gamma=2.0) < 1e-3 * F.binary_cross_entropy_with_logits(*confident), (
        "a confident right answer (logit 8, target 1) should cost almost nothing with gamma 2"
    )
    p = torch.sigmoid(logit)
    p_t = torch.where(target == 1, p, 1 - p)  # by hand: the probability of the true class
    assert_close(
        impl.focal(logit, target, gamma=2.0),
        (-((1 - p_t) ** 2) * p_t.log()).mean(),
        "focal(gamma=2) should be mean(-(1 - p_t)^2 log p_t), p_t the probability of the TRUE class",
    )
