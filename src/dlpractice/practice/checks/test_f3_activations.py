"""Checks of lab f3: the swish activation and the share of dead units."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("f3.1")
def test_swish_is_silu(impl) -> None:
    """swish(x) = x * sigmoid(x), PyTorch's SiLU."""
    x = torch.linspace(-6, 6, 101)
    assert_close(impl.swish(x), F.silu(x), "swish(x) should equal x * sigmoid(x) (torch's F.silu)")


@pytest.mark.exercise("f3.2")
def test_dead_fraction_counts_units_off_everywhere(impl) -> None:
    """A unit is dead when its activation's slope is (near) zero on every row of the batch."""
    from dlpractice.models.mlp import MLP

    model = MLP(4, 3, width=8, depth=2, activation="relu")
    with torch.no_grad():
        model.blocks[0][0].bias[:4] = -100.0  # four units of the first layer never switch on
    x = torch.rand(50, 4)
    dead, h = 0, x  # by hand: a ReLU unit is dead when its pre-activation is <= 0 on every row
    with torch.no_grad():
        for block in model.blocks:
            z = block[0](h)
            dead += int((z <= 0).all(0).sum())
            h = z.clamp(min=0)
    got = impl.dead_fraction(model, x)
    assert dead >= 4 and got == pytest.approx(dead / 16), (
        f"with {dead} of 16 ReLU units off on every row the dead fraction should be {dead / 16:.4f}, "
        f"got {got}: count a unit only when it is off on all rows, over all hidden layers"
    )
    leaky = MLP(4, 3, width=8, depth=2, activation="leaky_relu")
    got = impl.dead_fraction(leaky, x)
    assert got == 0.0, f"a leaky ReLU never has a zero slope, so no unit is dead; got {got}"
