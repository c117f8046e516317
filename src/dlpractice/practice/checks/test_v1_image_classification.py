"""Checks of lab v1: a convolution's output size, a convolution without im2col, and ViT patch embedding,
each against PyTorch (nn.Conv2d, F.conv2d, F.unfold) on the same inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.practice.checks.support import assert_close

CASES = [  # (size, kernel, stride, padding, dilation)
    (28, 3, 1, 1, 1),
    (28, 5, 1, 0, 1),
    (28, 2, 2, 0, 1),
    (27, 3, 2, 1, 1),
    (32, 3, 2, 0, 1),
    (14, 3, 1, 2, 2),
    (7, 7, 1, 0, 1),
    (9, 4, 3, 1, 1),
]


@pytest.mark.exercise("v1.1")
@pytest.mark.parametrize(("size", "kernel", "stride", "padding", "dilation"), CASES)
def test_conv_output_size_matches_conv2d(impl, size, kernel, stride, padding, dilation):
    """The side nn.Conv2d produces, with odd sizes, strides that do not divide, padding and dilation."""
    conv = torch.nn.Conv2d(1, 1, kernel, stride, padding, dilation)
    want = conv(torch.zeros(1, 1, size, size)).shape[-1]
    got = impl.conv_output_size(size, kernel, stride, padding, dilation)
    assert got == want, (
        f"size {size}, kernel {kernel}, stride {stride}, padding {padding}, dilation {dilation}: "
        f"nn.Conv2d gives {want}, got {got} (floor((size + 2p - d(k-1) - 1) / s) + 1)"
    )


@pytest.mark.exercise("v1.2")
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (1, 1), (2, 1), (2, 0), (3, 2)])
def test_conv2d_shifted_matches_f_conv2d(impl, stride, padding):
    """Same numbers as F.conv2d for several channels, a bias, strides and padding."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, 11, 11)  # (B, Cin, H, W)
    weight, bias = torch.randn(5, 3, 3, 3), torch.randn(5)  # (Cout, Cin, K, K)
    got = impl.conv2d_shifted(x, weight, bias, stride, padding)
    want = F.conv2d(x, weight, bias, stride, padding)
    assert_close(
        got,
        want,
        f"conv2d_shifted (stride {stride}, padding {padding}) should equal F.conv2d",
        atol=1e-5,
        rtol=1e-5,
    )
    no_bias = impl.conv2d_shifted(x, weight, None, stride, padding)
    assert_close(
        no_bias, F.conv2d(x, weight, None, stride, padding), "without a bias too", atol=1e-5, rtol=1e-5
    )


@pytest.mark.exercise("v1.2")
def test_conv2d_shifted_has_gradients_like_f_conv2d(impl):
    """Built from differentiable tensor operations: the gradients with respect to input and weight agree."""
    torch.manual_seed(1)
    x = torch.randn(1, 2, 7, 7, requires_grad=True)
    weight = torch.randn(4, 2, 5, 5, requires_grad=True)
    impl.conv2d_shifted(x, weight, None, 1, 2).square().sum().backward()
    ours = (x.grad.clone(), weight.grad.clone())
    x.grad, weight.grad = None, None
    F.conv2d(x, weight, None, 1, 2).square().sum().backward()
    assert_close(
        ours[0],
        x.grad,
        "the gradient with respect to the input should match F.conv2d's",
        atol=1e-4,
        rtol=1e-4,
    )
    assert_close(
        ours[1], weight.grad, "the gradient with respect to the weight should match", atol=1e-4, rtol=1e-4
    )


@pytest.mark.exercise("v1.3")
@pytest.mark.parametrize(("channels", "side", "patch"), [(1, 28, 4), (3, 32, 8), (2, 8, 2)])
def test_patchify_matches_unfold(impl, channels, side, patch):
    """Patches in row-major order, each flattened (channel, row, column): F.unfold with stride = patch."""
    x = torch.randn(2, channels, side, side)
    got = impl.patchify(x, patch)
    want = F.unfold(x, patch, stride=patch).transpose(1, 2)  # (B, N, C*P*P)
    assert got.shape == want.shape, (
        f"expected shape {tuple(want.shape)} (B, N, C*P*P), got {tuple(got.shape)}"
    )
    assert_close(got, want, "patch n should be the n-th square in row-major order, flattened (C, P, P)")


@pytest.mark.exercise("v1.3")
def test_patch_embedding_is_a_strided_convolution(impl):
    """A linear layer on the patches is a Conv2d with kernel = stride = patch: the ViT's patch embedding."""
    torch.manual_seed(2)
    conv = torch.nn.Conv2d(3, 16, kernel_size=4, stride=4)
    x = torch.randn(2, 3, 12, 12)
    tokens = impl.patchify(x, 4) @ conv.weight.reshape(16, -1).T + conv.bias  # (B, 9, 16)
    want = conv(x).flatten(2).transpose(1, 2)  # (B, 9, 16)
    assert_close(
        tokens,
        want,
        "patchify followed by a linear layer should equal the strided Conv2d",
        atol=1e-5,
        rtol=1e-5,
    )
