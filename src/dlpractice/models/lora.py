"""LoRA (Hu et al., 2021): low-rank adapters on a model's linear layers, the rest of the model frozen.

`with_lora` adds them through Hugging Face `peft` (`get_peft_model` with `target_modules` naming the
layers, which works on any torch module, ours included) or through `LoRALinear`, the layer written out
(lab n10's exercise, checked against peft's on the same weights in the tests).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dlpractice.errors import DlpError


class LoRALinear(nn.Module):
    """y = W x + (alpha / r) B A x, with W frozen, A (r, in) random and B (out, r) zero at the start (Hu et
    al., 2021); initialised as peft initialises it, so both start from the same function."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float):
        super().__init__()
        self.base, self.scaling = base, alpha / rank
        base.weight.requires_grad_(False)
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # BEGIN EXERCISE n10.2: the frozen layer's output plus the scaled low-rank update B A x
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling  # (..., out)
        # END EXERCISE


def lora_targets(model: nn.Module) -> list[str]:
    """Every linear layer but the output head (tied to the embedding in a GPT): what LoRA adapts."""
    from transformers.pytorch_utils import Conv1D  # GPT-2's linear layers, weights stored (in, out)

    return [n for n, m in model.named_modules() if isinstance(m, nn.Linear | Conv1D) and "lm_head" not in n]


def stores_transposed(model: nn.Module, targets: list[str]) -> bool:
    """Whether the targets are GPT-2 Conv1D layers, whose weight is (in, out): peft's fan_in_fan_out."""
    from transformers.pytorch_utils import Conv1D

    return any(isinstance(model.get_submodule(name), Conv1D) for name in targets)


def with_lora(model: nn.Module, rank: int, alpha: float, impl: str = "peft") -> nn.Module:
    """The model with adapters on lora_targets and every other weight frozen: peft's, or ours."""
    targets = lora_targets(model)
    if impl == "peft":
        from peft import LoraConfig, get_peft_model

        transposed = stores_transposed(model, targets)
        lora = LoraConfig(
            r=rank, lora_alpha=alpha, target_modules=targets, lora_dropout=0.0, fan_in_fan_out=transposed
        )
        return get_peft_model(model, lora)
    for p in model.parameters():
        p.requires_grad_(False)
    for name in targets:
        parent, _, child = name.rpartition(".")
        layer = model.get_submodule(name)
        if not isinstance(layer, nn.Linear):
            raise DlpError(f"lora_impl=ours adapts nn.Linear only; {name} is a {type(layer).__name__}")
        setattr(model.get_submodule(parent), child, LoRALinear(layer, rank, alpha))
    return model
