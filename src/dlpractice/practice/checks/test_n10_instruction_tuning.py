"""Checks of lab n10: the prompt-masked targets of supervised fine-tuning, and a LoRA linear layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("n10.1")
def test_targets_are_the_next_tokens_with_the_prompt_ignored(impl):
    """prompt [5, 6, 7] + response [8, 9, 2]: inputs drop the last token, targets drop the first, and the
    targets that are prompt tokens (6 and 7) become IGNORE."""
    inputs, targets = impl.sft_example([5, 6, 7], [8, 9, 2])
    assert list(inputs) == [5, 6, 7, 8, 9], (
        f"inputs should be prompt + response without its last token: {inputs}"
    )
    expected = [impl.IGNORE, impl.IGNORE, 8, 9, 2]
    assert list(targets) == expected, f"targets should be {expected} (prompt tokens ignored), got {targets}"


@pytest.mark.exercise("n10.1")
def test_unmasked_targets_keep_every_next_token(impl):
    inputs, targets = impl.sft_example([5, 6, 7], [8, 9, 2], mask_prompt=False)
    assert list(targets) == [6, 7, 8, 9, 2], f"without the mask every next token is a target, got {targets}"
    inputs, targets = impl.sft_example([4], [3, 2])
    assert (list(inputs), list(targets)) == ([4, 3], [3, 2]), (
        "a one-token prompt has nothing to ignore: its only target is already the response's first token"
    )


@pytest.mark.exercise("n10.2")
def test_lora_output_is_the_frozen_layer_plus_the_scaled_update(impl):
    """y = W x + (alpha / r) B A x on inputs of any leading shape."""
    torch.manual_seed(0)
    layer = impl.LoRALinear(nn.Linear(6, 4, bias=False), rank=2, alpha=6.0)
    x = torch.randn(3, 5, 6)
    assert_close(layer(x), layer.base(x), "with B = 0 (its start) the output should be the frozen layer's")
    with torch.no_grad():
        layer.lora_B.normal_()
    expected = x @ layer.base.weight.T + 3.0 * (x @ layer.lora_A.T @ layer.lora_B.T)  # alpha / r = 3
    assert_close(
        layer(x), expected, "the output should be W x + (alpha / rank) * B A x", atol=1e-5, rtol=1e-5
    )


@pytest.mark.exercise("n10.2")
def test_lora_gradients_reach_only_the_adapters(impl):
    torch.manual_seed(0)
    layer = impl.LoRALinear(nn.Linear(6, 4, bias=False), rank=2, alpha=4.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    layer(torch.randn(7, 6)).square().sum().backward()
    assert layer.base.weight.grad is None, "the pretrained weight is frozen: it should get no gradient"
    assert layer.lora_A.grad is not None and layer.lora_A.grad.abs().sum() > 0, "A should receive a gradient"
    assert layer.lora_B.grad is not None and layer.lora_B.grad.abs().sum() > 0, "B should receive a gradient"
