"""Our per-layer FLOP count equals torch.utils.flop_counter on every model of the zoo (every kind of
convolution: the v2.3 check); what torch does not count (BatchNorm, activations, pooling, biases) follows
our formulas."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlpractice.metrics.flops import count_flops, torch_flops
from dlpractice.models.cnn_zoo import ZOO, build


@pytest.mark.parametrize("name", sorted(ZOO))
@pytest.mark.parametrize("batch", [1, 3])
def test_our_count_equals_flop_counter_mode_on_every_zoo_model(name: str, batch: int) -> None:
    model = build(name)
    x = torch.rand(batch, 1, 28, 28)
    ours = count_flops(model, x)
    assert ours.products == torch_flops(model, x) > 0
    assert ours.total > ours.products  # BatchNorm, activations and pooling cost something too
    assert ours.batch == batch and model.training  # counting leaves the model's mode as it was


def test_the_layers_torch_does_not_count() -> None:
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1),  # (1, 4, 8, 8)
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),  # (1, 4, 4, 4)
        nn.AdaptiveAvgPool2d(1),  # (1, 4, 1, 1)
        nn.Flatten(),
        nn.Linear(4, 3),
    )
    count = count_flops(model, torch.rand(1, 1, 8, 8))
    expected = {
        "Conv2d": 2 * 256 * 9 + 256,  # 9 multiply-adds per output, and the bias
        "BatchNorm2d": 2 * 256,
        "ReLU": 256,
        "MaxPool2d": 64 * 4,  # a 2x2 window per output
        "AdaptiveAvgPool2d": 64,  # every input added once
        "Flatten": 0,
        "Linear": 2 * 3 * 4 + 3,
    }
    assert {layer.kind: layer.flops for layer in count.layers} == expected
    assert count.products == 2 * 256 * 9 + 2 * 3 * 4
    assert [layer.name for layer in count.layers] == [str(i) for i in range(7)]


def test_a_layer_without_a_formula_is_refused() -> None:
    with pytest.raises(TypeError, match="no FLOP formula for LSTM"):
        count_flops(nn.LSTM(4, 4), torch.rand(2, 3, 4))
