"""FLOPs of a model's forward pass, counted layer by layer from the shapes each layer sees (lab v2).

One multiply-add is 2 FLOPs, the convention of `torch.utils.flop_counter.FlopCounterMode`, which counts
only matrix products and convolutions (and ignores their bias). We count those the same way, so the two
totals must agree exactly (tests/metrics/test_flops.py checks it on every model of the zoo), and we also
count what it leaves out: BatchNorm (a scale and a shift per element, at inference), activations (one
per element), pooling (one per window element read) and biases (one add per output). Counting is done
with forward hooks on the leaf modules, so an operation written as a function call in `forward` (the
addition of a residual connection) is not seen.
Simplified: an activation costs 1 whatever its formula (tanh is dearer than ReLU in practice).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

POOLS = (nn.MaxPool2d, nn.AvgPool2d)
ELEMENTWISE = (nn.ReLU, nn.Tanh, nn.Sigmoid, nn.GELU, nn.SiLU, nn.ReLU6, nn.LeakyReLU)
FREE = (nn.Flatten, nn.Dropout, nn.Identity)  # no arithmetic (dropout is off at inference)
BATCHNORMS = (nn.BatchNorm1d, nn.BatchNorm2d)
KNOWN = (nn.Conv2d, nn.Linear, *BATCHNORMS, *POOLS, nn.AdaptiveAvgPool2d, *ELEMENTWISE, *FREE)


@dataclass(frozen=True)
class LayerFlops:
    """One layer's cost for one forward pass of the batch it was counted on."""

    name: str  # the module's name in the model, e.g. "layers.3.conv1"
    kind: str  # its class, e.g. "Conv2d"
    output_shape: tuple[int, ...]
    flops: int  # all of it, by our count
    products: int  # the part torch's FlopCounterMode counts: multiply-adds of weights (no bias)


@dataclass(frozen=True)
class FlopCount:
    layers: list[LayerFlops]
    batch: int

    @property
    def total(self) -> int:
        return sum(layer.flops for layer in self.layers)

    @property
    def products(self) -> int:
        """Convolutions and linear layers only, as FlopCounterMode counts them."""
        return sum(layer.products for layer in self.layers)

    def by_kind(self) -> dict[str, int]:
        """Total FLOPs per layer class, largest first."""
        kinds: dict[str, int] = {}
        for layer in self.layers:
            kinds[layer.kind] = kinds.get(layer.kind, 0) + layer.flops
        return dict(sorted(kinds.items(), key=lambda item: -item[1]))


def conv2d_flops(conv: nn.Conv2d, output_shape: tuple[int, ...]) -> int:
    """FLOPs of a convolution's weights (no bias) that produced `output_shape` (B, C_out, H_out, W_out)."""
    # BEGIN EXERCISE v2.3: each output element is a dot product of (C_in / groups) x kH x kW pairs
    batch, c_out, h_out, w_out = output_shape
    kh, kw = conv.kernel_size
    macs_per_output = conv.in_channels // conv.groups * kh * kw
    return 2 * batch * c_out * h_out * w_out * macs_per_output
    # END EXERCISE


def linear_flops(linear: nn.Linear, output_shape: tuple[int, ...]) -> int:
    """FLOPs of a linear layer's weight (no bias): in_features multiply-adds per output element."""
    return 2 * math.prod(output_shape) * linear.in_features


def layer_flops(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> tuple[int, int]:
    """(all FLOPs, FlopCounterMode's part) of one leaf module's call."""
    if not isinstance(module, KNOWN):
        raise TypeError(f"no FLOP formula for {type(module).__name__}; add one to metrics/flops.py")
    out_elements = output.numel()
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        counter = conv2d_flops if isinstance(module, nn.Conv2d) else linear_flops
        products = counter(module, tuple(output.shape))
        bias = out_elements if module.bias is not None else 0
        return products + bias, products
    if isinstance(module, BATCHNORMS):
        return 2 * out_elements, 0  # y = x * scale + shift, with the running statistics folded in
    if isinstance(module, POOLS):
        kernel = module.kernel_size if isinstance(module.kernel_size, tuple) else (module.kernel_size,) * 2
        return out_elements * math.prod(kernel), 0  # compare (max) or add (average) each window element
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return inputs[0].numel(), 0  # every input element is added once
    if isinstance(module, ELEMENTWISE):
        return out_elements, 0
    return 0, 0  # FREE


@torch.no_grad()
def count_flops(model: nn.Module, x: torch.Tensor) -> FlopCount:
    """Run `model` once on `x` in eval mode and count each leaf module's FLOPs, in call order."""
    layers: list[LayerFlops] = []
    names = {module: name for name, module in model.named_modules()}

    def record(module: nn.Module, inputs: tuple, output: torch.Tensor) -> None:
        flops, products = layer_flops(module, inputs, output)
        layers.append(LayerFlops(names[module], type(module).__name__, tuple(output.shape), flops, products))

    leaves = [m for m in model.modules() if not list(m.children())]
    handles = [m.register_forward_hook(record) for m in leaves]
    was_training = model.training
    model.eval()
    try:
        model(x)
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return FlopCount(layers, len(x))


def torch_flops(model: nn.Module, x: torch.Tensor) -> int:
    """FlopCounterMode's total for one eval-mode forward pass: the reference our `products` must equal."""
    from torch.utils.flop_counter import FlopCounterMode

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x)
    finally:
        model.train(was_training)
    return counter.get_total_flops()
