"""Checks of lab f1 (the NumPy autograd engine): scalar backward, batched matmul and cross-entropy
gradients, the MSE loss and the training loop, each against PyTorch or a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

from dlpractice.practice.checks.support import assert_close, check_against_torch
from dlpractice.scratch import Tensor

SETTINGS = settings(max_examples=25, deadline=None)


def normal(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def expression(a, b, relu, tanh, exp, log):
    """micrograd's test expression, plus tanh, exp and log; works on Values and on torch scalars."""
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + relu(b + a)
    d = d + 3 * d + relu(b - a)
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    return g * 1e-3 + tanh(a * 0.3) + exp(b * 0.1) + log(a * a + 1)


@pytest.mark.exercise("f1.1")
def test_value_gradients_match_torch(impl):
    """Value.backward over micrograd's expression gives PyTorch's gradients."""
    Value = impl.Value
    a, b = Value(-4.0), Value(2.0)
    out = expression(a, b, Value.relu, Value.tanh, Value.exp, Value.log)
    out.backward()
    ta = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    ref = expression(ta, tb, torch.relu, torch.tanh, torch.exp, torch.log)
    ref.backward()
    assert out.data == pytest.approx(ref.item(), abs=1e-9), "the forward value changed: leave it as it was"
    assert a.grad == pytest.approx(ta.grad.item(), abs=1e-6), (
        f"a.grad should be {ta.grad.item():.6f} (PyTorch's), got {a.grad}: "
        "visit every node once, outputs first"
    )
    assert b.grad == pytest.approx(tb.grad.item(), abs=1e-6), (
        f"b.grad should be {tb.grad.item():.6f} (PyTorch's), got {b.grad}"
    )


@pytest.mark.exercise("f1.1")
def test_value_used_twice_collects_both_gradients(impl):
    """d(a*a + a)/da = 2a + 1: a node used twice adds up the gradients of both uses."""
    a = impl.Value(3.0)
    (a * a + a).backward()
    assert a.grad == 7.0, f"d(a*a + a)/da at a=3 should be 7 (both uses added up), got {a.grad}"


@pytest.mark.exercise("f1.2")
@SETTINGS
@given(
    batch=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=2, max_side=3),
    n=st.integers(1, 5),
    m=st.integers(1, 5),
    p=st.integers(1, 5),
    seed=st.integers(0, 2**32 - 1),
)
def test_batched_matmul_matches_torch(impl, batch, n, m, p, seed):
    """a @ b on broadcast batch shapes: both gradients equal PyTorch's (summed over broadcast axes)."""
    a_batch, b_batch = batch.input_shapes
    a, b = normal((*a_batch, n, m), seed), normal((*b_batch, m, p), seed + 1)
    check_against_torch(lambda x, y: x @ y, lambda x, y: x @ y, [a, b], tensor=impl.Tensor)


@pytest.mark.exercise("f1.3")
@SETTINGS
@given(
    n=st.integers(1, 6),
    classes=st.integers(2, 7),
    scale=st.sampled_from([1.0, 30.0]),
    seed=st.integers(0, 999),
)
def test_cross_entropy_matches_torch(impl, n, classes, scale, seed):
    """The gradient of the mean cross-entropy, (softmax - one-hot) / N, equals PyTorch's, large logits too."""
    targets = np.random.default_rng(seed).integers(0, classes, n)
    check_against_torch(
        lambda t: impl.cross_entropy(t, targets),
        lambda t: TF.cross_entropy(t, torch.as_tensor(targets)),
        [normal((n, classes), seed) * scale],  # scale 30: large logits must not overflow
        tensor=Tensor,
    )


@pytest.mark.exercise("f1.4")
def test_mse_loss_value_and_gradient(impl) -> None:
    """mean((prediction - target)^2) on an (N, 1) prediction and an (N,) target, and its gradient."""
    pred = Tensor(np.array([[1.0], [2.0], [4.0]]), requires_grad=True)
    target = np.array([0.0, 2.0, 1.0])
    loss = impl.mse_loss(pred, target)
    assert loss.item() == pytest.approx((1 + 0 + 9) / 3), (
        f"the loss of predictions (1, 2, 4) for targets (0, 2, 1) should be 10/3, got {loss.item():.4f}: "
        "compare each prediction with its own target (reshape, do not broadcast (N, 1) against (N,))"
    )
    loss.backward()
    assert_close(
        pred.grad[:, 0],
        2 * (pred.data[:, 0] - target) / 3,
        "the gradient should be 2 (prediction - target) / N",
    )


@pytest.mark.exercise("f1.5")
def test_train_lowers_the_loss(impl) -> None:
    """200 steps of SGD on a line y = 3x - 1 bring the loss below 1 % of the first step's."""
    from dlpractice.scratch import nn

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 1))
    y = 3 * x[:, 0] - 1
    model = nn.Linear(1, 1, rng=rng)
    losses = impl.train(model, impl.mse_loss, x, y, 200, impl.Config(lr=0.05), rng)
    assert len(losses) == 200, f"train should return one loss per step (200), got {len(losses)}"
    assert losses[-1] < 0.01 * losses[0], (
        f"the loss should fall below 1 % of the first one, went from {losses[0]:.4f} to {losses[-1]:.4f}: "
        "zero the gradients, backward, then step, at every step"
    )
