"""Checks of lab p5: a GPT block's parameters equal numel (with and without biases), a Linear's and a
Conv2d's forward FLOPs equal torch's FlopCounterMode, and the weights, gradients and optimiser state equal
the bytes of the tensors after a real optimiser step."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlpractice.models.gpt import Block


def numel(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.exercise("p5.1")
@pytest.mark.parametrize("d", [8, 48, 96])
def test_gpt_block_params_equal_numel(impl, d: int) -> None:
    """models/gpt.Block has no biases: 12 d^2 + 2 d (the LayerNorms keep only their scale)."""
    expected = numel(Block(d, 4))
    got = impl.gpt_block_params(d)
    assert got == expected, f"a bias-free GPT block of width {d} has {expected:,} parameters, got {got:,}"


@pytest.mark.exercise("p5.1")
def test_gpt_block_params_with_biases(impl) -> None:
    """GPT-2's block (every Linear and LayerNorm with a bias): 12 d^2 + 13 d, as transformers' GPT2Block."""
    d = 64
    expected = 12 * d * d + 13 * d
    got = impl.gpt_block_params(d, bias=True)
    assert got == expected, f"with biases a block of width {d} has 12 d^2 + 13 d = {expected:,}, got {got:,}"


def flop_counter_mode(layer: nn.Module, x: torch.Tensor) -> int:
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        layer(x)
    return counter.get_total_flops()


@pytest.mark.exercise("p5.2")
@pytest.mark.parametrize(
    ("layer", "shape"),
    [
        (nn.Linear(12, 7), (5, 12)),
        (nn.Linear(16, 9, bias=False), (2, 3, 16)),
        (nn.Conv2d(3, 5, 3, padding=1), (2, 3, 11, 9)),
        (nn.Conv2d(4, 6, (3, 5), stride=2), (3, 4, 13, 12)),
        (nn.Conv2d(8, 8, 3, groups=8, dilation=2), (1, 8, 10, 10)),
    ],
    ids=["linear", "linear-3d", "conv-3x3", "conv-rect-strided", "conv-depthwise-dilated"],
)
def test_layer_forward_flops_equal_flop_counter_mode(impl, layer: nn.Module, shape: tuple[int, ...]) -> None:
    """From the input's shape alone: 2 FLOPs per multiply-add of the weight, no bias."""
    expected = flop_counter_mode(layer, torch.rand(shape))
    got = impl.layer_forward_flops(layer, shape)
    assert got == expected, (
        f"{layer} on input {shape}: FlopCounterMode counts {expected:,} FLOPs, got {got:,}"
    )


@pytest.mark.exercise("p5.3")
@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_training_state_bytes_equal_the_tensors(impl, name: str) -> None:
    """After one step: the weights, their .grad, and the optimiser's buffers (momentum: one, Adam: two)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 3))
    optimiser = {
        "sgd": torch.optim.SGD(model.parameters(), lr=0.1),
        "momentum": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        "adam": torch.optim.Adam(model.parameters()),
    }[name]
    model(torch.rand(4, 10)).sum().backward()
    optimiser.step()
    params = list(model.parameters())
    buffers = [
        t for s in optimiser.state.values() for t in s.values() if isinstance(t, torch.Tensor) and t.dim()
    ]
    expected = {
        "weights": sum(p.nbytes for p in params),
        "grads": sum(p.grad.nbytes for p in params),
        "optimiser": sum(t.nbytes for t in buffers),  # Adam's 0-d step counters left out
    }
    got = impl.training_state_bytes(numel(model), name)
    assert got == expected, f"{name}, float32: expected {expected} bytes, got {got}"
    half = impl.training_state_bytes(numel(model), name, bytes_per_value=2)
    assert half == {k: v // 2 for k, v in expected.items()}, f"{name} in bfloat16 (2 bytes a value): {half}"
