"""Checks of lab v2: the residual block equals torchvision's, the depthwise-separable block computes a
grouped 3x3 conv then a 1x1 conv, and the FLOPs of a convolution equal torch's FlopCounterMode."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from dlpractice.practice.checks.support import assert_close


def randomised_batchnorms(module: nn.Module) -> None:
    """Running statistics and affine weights away from their identity init, so that a skipped BN shows."""
    torch.manual_seed(1)
    for bn in (m for m in module.modules() if isinstance(m, nn.BatchNorm2d)):
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)


@pytest.mark.exercise("v2.1")
@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(8, 8, 1), (8, 16, 2)])
def test_basic_block_equals_torchvision(impl, c_in: int, c_out: int, stride: int) -> None:
    """The same weights in torchvision's BasicBlock give the same output, identity and projection shortcut."""
    from torchvision.models.resnet import BasicBlock

    torch.manual_seed(0)
    ours = impl.BasicBlock(c_in, c_out, stride).eval()
    randomised_batchnorms(ours)
    downsample = None
    if stride != 1 or c_in != c_out:
        downsample = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))
    reference = BasicBlock(c_in, c_out, stride, downsample).eval()
    reference.load_state_dict({k.replace("shortcut", "downsample"): v for k, v in ours.state_dict().items()})
    x = torch.randn(2, c_in, 8, 8)
    out = ours(x)
    side = 8 // stride
    assert tuple(out.shape) == (2, c_out, side, side), (
        f"the block should map (2, {c_in}, 8, 8) to (2, {c_out}, {side}, {side}), got {tuple(out.shape)}"
    )
    assert (out >= 0).all(), "the block ends with a ReLU, after the shortcut is added"
    what = "identity" if downsample is None else "projection (1x1 conv + BN)"
    assert_close(
        out,
        reference(x),
        f"the output should equal torchvision's BasicBlock with a {what} shortcut: relu(bn2(conv2(relu(bn1("
        "conv1(x))))) + shortcut(x))",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.exercise("v2.2")
@pytest.mark.parametrize("stride", [1, 2])
def test_depthwise_separable_block(impl, stride: int) -> None:
    """A 3x3 conv with one filter per channel, BN, ReLU, then a 1x1 conv, BN, ReLU; no conv bias."""
    torch.manual_seed(0)
    block = impl.depthwise_separable(6, 10, stride).eval()
    randomised_batchnorms(block)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in block.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(convs) == 2 and len(norms) == 2, (
        f"expected two convolutions and two BatchNorms, found {len(convs)} and {len(norms)}"
    )
    depthwise, pointwise = convs
    assert depthwise.groups == 6 and depthwise.kernel_size == (3, 3), (
        "the first conv is depthwise: a 3x3 kernel with groups equal to the input channels (6)"
    )
    assert pointwise.kernel_size == (1, 1) and pointwise.out_channels == 10, "the second conv is 1x1, 6 -> 10"
    assert depthwise.bias is None and pointwise.bias is None, "no conv bias: the BatchNorm after it shifts"
    x = torch.randn(2, 6, 9, 9)

    def bn(t: torch.Tensor, norm: nn.BatchNorm2d) -> torch.Tensor:
        return F.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps)

    hidden = F.relu(bn(F.conv2d(x, depthwise.weight, stride=stride, padding=1, groups=6), norms[0]))
    expected = F.relu(bn(F.conv2d(hidden, pointwise.weight), norms[1]))
    assert_close(
        block(x),
        expected,
        f"the output should be relu(bn(conv1x1(relu(bn(depthwise3x3(x, stride={stride}, padding=1))))))",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.exercise("v2.3")
@pytest.mark.parametrize(
    "options",
    [
        {"in_channels": 3, "out_channels": 5, "kernel_size": 3, "padding": 1},
        {"in_channels": 4, "out_channels": 6, "kernel_size": (3, 5), "stride": 2},
        {"in_channels": 8, "out_channels": 8, "kernel_size": 3, "groups": 8},
        {"in_channels": 4, "out_channels": 6, "kernel_size": 1, "groups": 2, "bias": False},
    ],
    ids=["3x3", "rectangular-strided", "depthwise", "grouped-1x1"],
)
def test_conv2d_flops_equals_flop_counter_mode(impl, options: dict) -> None:
    """2 FLOPs a multiply-add, (C_in / groups) x kH x kW of them per output element; no bias."""
    from torch.utils.flop_counter import FlopCounterMode

    conv = nn.Conv2d(**options)
    x = torch.rand(3, options["in_channels"], 12, 10)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        out = conv(x)
    ours = impl.conv2d_flops(conv, tuple(out.shape))
    assert ours == counter.get_total_flops(), (
        f"{options}: expected {counter.get_total_flops():,} FLOPs (torch) for output {tuple(out.shape)}, "
        f"got {ours:,}"
    )
