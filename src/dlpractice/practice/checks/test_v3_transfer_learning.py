"""Checks of lab v3: the optimiser's parameter groups of each way of transferring a pretrained network."""

from __future__ import annotations

import pytest
import torch

from dlpractice.models.attribution import SmallCNN


def ids(params) -> set[int]:
    return {id(p) for p in params}


@pytest.mark.exercise("v3.1")
def test_finetune_and_scratch_train_everything_at_one_rate(impl) -> None:
    model = SmallCNN(26, widths=(4, 6, 8))
    for method in ("finetune", "scratch"):
        groups = impl.parameter_groups(model, method, 2e-3, 0.1)
        assert len(groups) == 1 and groups[0]["lr"] == 2e-3, (
            f"{method}: one group with every parameter at lr 2e-3; got {[g.get('lr') for g in groups]}"
        )
        assert ids(groups[0]["params"]) == ids(model.parameters()), f"{method}: every parameter learns"


@pytest.mark.exercise("v3.1")
def test_lower_lr_gives_the_backbone_a_fraction_of_the_rate(impl) -> None:
    model = SmallCNN(26, widths=(4, 6, 8))
    groups = impl.parameter_groups(model, "lower_lr", 2e-3, 0.1)
    rates = {}
    for group in groups:
        for p in group["params"]:
            rates[id(p)] = group["lr"]
    assert set(rates) == ids(model.parameters()), "lower_lr: every parameter learns, each in one group"
    assert all(rates[id(p)] == pytest.approx(2e-4) for p in model.features.parameters()), (
        "lower_lr: the backbone (model.features) should learn at lr * backbone_lr_ratio = 2e-4"
    )
    assert all(rates[id(p)] == 2e-3 for p in model.head.parameters()), "lower_lr: the head learns at lr"


@pytest.mark.exercise("v3.1")
def test_probe_freezes_the_backbone(impl) -> None:
    """Only the head is optimised, and no gradient is even computed for the backbone."""
    model = SmallCNN(26, widths=(4, 6, 8))
    groups = impl.parameter_groups(model, "probe", 2e-3, 0.1)
    optimised = ids(p for group in groups for p in group["params"])
    assert optimised == ids(model.head.parameters()), (
        "probe: the optimiser should get the head's parameters only"
    )
    _, loss = model(torch.rand(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    assert all(p.grad is None for p in model.features.parameters()), (
        "probe: the backbone still gets gradients; freeze it (requires_grad_(False)) so backward skips it"
    )
    assert all(p.grad is not None for p in model.head.parameters()), "probe: the head must still learn"
