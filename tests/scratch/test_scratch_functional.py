"""softmax, cross-entropy, conv2d, max_pool2d, batch_norm, layer_norm, embedding, dropout vs torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st

from dlpractice.scratch import Tensor
from dlpractice.scratch import functional as F

SETTINGS = settings(max_examples=25, deadline=None)


def normal(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


@pytest.mark.parametrize("axis", [0, -1])
def test_softmax_and_log_softmax_match_torch(check_against_torch, axis):
    x = normal(3, 5) * 4
    check_against_torch(lambda t: F.softmax(t, axis), lambda t: torch.softmax(t, axis), [x])
    check_against_torch(lambda t: F.log_softmax(t, axis), lambda t: torch.log_softmax(t, axis), [x])


def test_cross_entropy_is_stable_for_huge_logits():
    loss = F.cross_entropy(Tensor([[1000.0, 0.0], [0.0, -1000.0]], requires_grad=True), [0, 1])
    assert np.isfinite(loss.item()) and loss.item() == pytest.approx(500.0)


@SETTINGS
@given(
    kernel=st.sampled_from([1, 2, 3, 5]),
    stride=st.integers(1, 3),
    padding=st.integers(0, 2),
    channels=st.tuples(st.integers(1, 3), st.integers(1, 4)),
    size=st.integers(5, 9),
    bias=st.booleans(),
    seed=st.integers(0, 999),
)
def test_conv2d_matches_torch(check_against_torch, kernel, stride, padding, channels, size, bias, seed):
    in_channels, out_channels = channels
    arrays = [
        normal(2, in_channels, size, size + 1, seed=seed),
        normal(out_channels, in_channels, kernel, kernel),
    ]
    if bias:
        arrays.append(normal(out_channels, seed=seed + 1))
    check_against_torch(
        lambda x, w, *b: F.conv2d(x, w, *b, stride=stride, padding=padding),
        lambda x, w, *b: TF.conv2d(x, w, *b, stride=stride, padding=padding),
        arrays,
    )


@SETTINGS
@given(
    kernel=st.integers(1, 3),
    stride=st.sampled_from([None, 1, 2]),
    size=st.integers(4, 8),
    data=st.data(),
    seed=st.integers(0, 999),
)
def test_max_pool2d_matches_torch(check_against_torch, kernel, stride, size, data, seed):
    padding = data.draw(st.integers(0, kernel // 2))  # torch allows at most half the kernel
    check_against_torch(
        lambda x: F.max_pool2d(x, kernel, stride, padding),
        lambda x: TF.max_pool2d(x, kernel, stride, padding),
        [normal(2, 3, size, size + 2, seed=seed)],
    )


@pytest.mark.parametrize("shape", [(8, 3), (4, 3, 5), (4, 3, 5, 6)])
def test_batch_norm_training_matches_torch(check_against_torch, shape):
    channels = shape[1]
    ours_running = [np.zeros(channels), np.ones(channels)]
    torch_running = [torch.zeros(channels, dtype=torch.float64), torch.ones(channels, dtype=torch.float64)]
    x, weight, bias = normal(*shape) * 3 + 1, normal(channels, seed=1), normal(channels, seed=2)
    check_against_torch(
        lambda t, w, b: F.batch_norm(t, *ours_running, w, b, training=True, momentum=0.2),
        lambda t, w, b: TF.batch_norm(t, *torch_running, w, b, training=True, momentum=0.2),
        [x, weight, bias],
    )
    for ours, theirs in zip(ours_running, torch_running, strict=True):
        np.testing.assert_allclose(ours, theirs.numpy(), atol=1e-12)


def test_batch_norm_evaluation_uses_running_statistics(check_against_torch):
    running_mean, running_var = normal(3, seed=1), np.abs(normal(3, seed=2)) + 0.5
    check_against_torch(
        lambda t, w, b: F.batch_norm(t, running_mean, running_var, w, b, training=False),
        lambda t, w, b: TF.batch_norm(
            t, torch.tensor(running_mean), torch.tensor(running_var), w, b, training=False
        ),
        [normal(5, 3, 4), normal(3, seed=3), normal(3, seed=4)],
    )


@pytest.mark.parametrize("normalized_shape", [(6,), (4, 6)])
def test_layer_norm_matches_torch(check_against_torch, normalized_shape):
    check_against_torch(
        lambda t, w, b: F.layer_norm(t, normalized_shape, w, b),
        lambda t, w, b: TF.layer_norm(t, normalized_shape, w, b),
        [normal(3, 4, 6) * 2 + 1, normal(*normalized_shape, seed=1), normal(*normalized_shape, seed=2)],
    )
    check_against_torch(
        lambda t: F.layer_norm(t, normalized_shape),
        lambda t: TF.layer_norm(t, normalized_shape),
        [normal(3, 4, 6)],
    )


def test_embedding_matches_torch(check_against_torch):
    indices = np.array([[0, 3, 3], [1, 0, 4]])  # repeated rows must sum their gradients
    check_against_torch(
        lambda w: F.embedding(indices, w), lambda w: TF.embedding(torch.as_tensor(indices), w), [normal(5, 2)]
    )


def test_dropout_zeroes_and_rescales_in_training_only():
    x = Tensor(np.ones((200, 50)), requires_grad=True)
    out = F.dropout(x, 0.3, training=True, rng=np.random.default_rng(0))
    kept = out.data != 0
    assert 0.65 < kept.mean() < 0.75
    np.testing.assert_allclose(out.data[kept], 1 / 0.7)
    out.sum().backward()
    np.testing.assert_allclose(x.grad, out.data)  # d(x * mask)/dx = mask
    assert F.dropout(x, 0.3, training=False, rng=np.random.default_rng(0)) is x
