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

    torch.manual_seed(0)  # the same network and inputs every time: the check must not pass by luck
    model = MLP(4, 3, width=8, depth=2, activation="relu")
    with torch.no_grad():
        model.blocks[0][0].bias[:4] = -100.0  # four units of the first layer never switch on
    x = torch.randn(50, 4)
    dead, partly, h = 0, 0, x  # by hand: a ReLU unit is dead when its pre-activation is <= 0 on every row
    with torch.no_grad():
        for block in model.blocks:
            z = block[0](h)
            dead += int((z <= 0).all(0).sum())
            partly += int(((z <= 0).any(0) & ~(z <= 0).all(0)).sum())  # off on some rows only: alive
            h = z.clamp(min=0)
    assert partly > 0, "(the check's own setup: some unit must be off on some rows but not all)"
    got = impl.dead_fraction(model, x)
    assert dead >= 4 and got == pytest.approx(dead / 16), (
        f"with {dead} of 16 ReLU units off on every row the dead fraction should be {dead / 16:.4f}, "
        f"got {got}: count a unit only when it is off on all rows, over all hidden layers"
    )
    leaky = MLP(4, 3, width=8, depth=2, activation="leaky_relu")
    got = impl.dead_fraction(leaky, x)
    assert got == 0.0, f"a leaky ReLU never has a zero slope, so no unit is dead; got {got}"
