"""Every Tensor operation's value and gradient equal PyTorch's (float64, atol 1e-6), on generated shapes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, mutually_broadcastable_shapes

from dlpractice.scratch import Tensor, cat, no_grad, stack, unbroadcast
from dlpractice.scratch import tensor as tensor_module

SETTINGS = settings(max_examples=25, deadline=None)
seeds = st.integers(0, 2**32 - 1)


def normal(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def away_from_zero(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Values in +-[0.5, 2]: safe for division, and for powers and logs after abs()."""
    rng = np.random.default_rng(seed)
    return rng.uniform(0.5, 2.0, shape) * rng.choice([-1.0, 1.0], shape)


BINARY_OPS = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
    "mixed": lambda a, b: (a * 2.0 - b) / (3.0 + b * b) - 1.5 / b,  # reflected ops with constants
}


@pytest.mark.parametrize("name", BINARY_OPS)
@SETTINGS
@given(shapes=mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=4, max_side=4), seed=seeds)
def test_binary_ops_broadcast_like_torch(check_against_torch, name, shapes, seed):
    a_shape, b_shape = shapes.input_shapes
    check_against_torch(
        BINARY_OPS[name], BINARY_OPS[name], [normal(a_shape, seed), away_from_zero(b_shape, seed)]
    )


UNARY_OPS = {
    "neg": (lambda x: -x, lambda x: -x),
    "exp": (Tensor.exp, torch.exp),
    "tanh": (Tensor.tanh, torch.tanh),
    "sigmoid": (Tensor.sigmoid, torch.sigmoid),
    "relu": (Tensor.relu, torch.relu),
    "gelu": (Tensor.gelu, torch.nn.functional.gelu),
    "silu": (Tensor.silu, torch.nn.functional.silu),
    "cube": (lambda x: x**3, lambda x: x**3),
    "rpow": (lambda x: 2.0**x, lambda x: 2.0**x),
}
POSITIVE_OPS = {
    "log": (Tensor.log, torch.log),
    "sqrt": (lambda x: x**0.5, torch.sqrt),
    "reciprocal_power": (lambda x: x**-1.5, lambda x: x**-1.5),
}


@pytest.mark.parametrize("name", UNARY_OPS)
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=4, max_side=5), seed=seeds)
def test_unary_ops_match_torch(check_against_torch, name, shape, seed):
    ours, theirs = UNARY_OPS[name]
    check_against_torch(ours, theirs, [normal(shape, seed) * 2])


@pytest.mark.parametrize("name", POSITIVE_OPS)
@SETTINGS
@given(shape=array_shapes(min_dims=0, max_dims=4, max_side=5), seed=seeds)
def test_ops_on_positive_inputs_match_torch(check_against_torch, name, shape, seed):
    ours, theirs = POSITIVE_OPS[name]
    check_against_torch(ours, theirs, [np.abs(away_from_zero(shape, seed))])


@st.composite
def shape_and_axes(draw):
    shape = draw(array_shapes(min_dims=1, max_dims=4, max_side=4))
    axes = draw(st.lists(st.integers(-len(shape), len(shape) - 1), unique_by=lambda a: a % len(shape)))
    return shape, tuple(axes) if axes else None


@pytest.mark.parametrize("reduction", ["sum", "mean", "max"])
@SETTINGS
@given(case=shape_and_axes(), keepdims=st.booleans(), seed=seeds)
def test_reductions_match_torch(check_against_torch, reduction, case, keepdims, seed):
    shape, axes = case

    def ours(x):
        return getattr(x, reduction)(axis=axes, keepdims=keepdims)

    def theirs(x):
        dim = axes if axes is not None else tuple(range(x.ndim))
        if reduction == "max":
            return torch.amax(x, dim=dim, keepdim=keepdims)
        return getattr(x, reduction)(dim=dim, keepdim=keepdims)

    check_against_torch(ours, theirs, [normal(shape, seed)])


def test_max_shares_the_gradient_between_ties_like_amax(check_against_torch):
    check_against_torch(
        lambda x: x.max(axis=1), lambda x: torch.amax(x, dim=1), [np.array([[1.0, 3.0, 3.0]])]
    )


@pytest.mark.parametrize("shapes", [((3,), (3,)), ((3,), (3, 4)), ((2, 3), (3,)), ((2, 5, 3), (3,))])
def test_matmul_with_vectors_follows_numpy_rules(check_against_torch, shapes):
    a_shape, b_shape = shapes
    check_against_torch(lambda x, y: x @ y, lambda x, y: x @ y, [normal(a_shape, 0), normal(b_shape, 1)])


def test_reshape_and_transpose_match_torch(check_against_torch):
    check_against_torch(
        lambda x: x.reshape(4, 6).T.reshape(2, 3, 4).transpose(2, 0, 1) * 2.0,
        lambda x: x.reshape(4, 6).T.reshape(2, 3, 4).permute(2, 0, 1) * 2.0,
        [normal((2, 3, 4), 0)],
    )


INDICES = {
    "slice": (slice(1, None), slice(None, None, 2)),
    "integer": (1,),
    "repeated integer array": (np.array([0, 2, 0, 0]),),
    "array and slice": (np.array([[1, 1], [2, 0]]), slice(None, 3)),
    "two arrays": (np.array([0, 2, 2]), np.array([1, 1, 3])),
    "negative and ellipsis": (Ellipsis, -1),
}


@pytest.mark.parametrize("name", INDICES)
def test_indexing_matches_torch(check_against_torch, name):
    index = INDICES[name]
    torch_index = tuple(torch.as_tensor(i) if isinstance(i, np.ndarray) else i for i in index)
    check_against_torch(lambda x: x[index], lambda x: x[torch_index], [normal((3, 4), 0)])


def test_indexing_with_an_integer_tensor():
    x = Tensor(np.arange(4.0), requires_grad=True)
    x[Tensor([1, 1, 3])].sum().backward()
    np.testing.assert_array_equal(x.grad, [0, 2, 0, 1])


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cat_and_stack_match_torch(check_against_torch, axis):
    arrays = [normal((2, 3), 0), normal((2, 3), 1), normal((2, 3), 2)]
    check_against_torch(lambda *t: cat(t, axis=axis), lambda *t: torch.cat(t, dim=axis), arrays)
    check_against_torch(lambda *t: stack(t, axis=axis), lambda *t: torch.stack(t, dim=axis), arrays)


def test_gradient_flows_to_a_tensor_used_twice():
    x = Tensor([2.0, -1.0], requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, [5.0, -1.0])


def test_leaf_gradients_accumulate_and_intermediate_ones_restart():
    x = Tensor([3.0], requires_grad=True)
    y = x * 2.0
    y.sum().backward()
    y.sum().backward()
    np.testing.assert_allclose(x.grad, [4.0])  # leaves accumulate, as in torch
    np.testing.assert_allclose(y.grad, [1.0])  # intermediates are recomputed, not doubled


def test_no_grad_builds_no_graph():
    x = Tensor([1.0, 2.0], requires_grad=True)
    with no_grad():
        y = (x * 3.0).exp()
    assert not y.requires_grad and y._parents == ()
    assert tensor_module.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.sum().backward()


def test_a_long_chain_needs_no_recursion():
    x = Tensor(1.0, requires_grad=True)
    y = x
    for _ in range(5000):
        y = y * 1.0 + 0.0
    y.backward()
    assert x.grad == pytest.approx(1.0)


def test_float32_stays_float32():
    x = Tensor(np.ones((2, 3), dtype=np.float32), requires_grad=True)
    y = ((x * 2.5 + 1) / 3.0) ** 2 @ np.ones((3, 1), dtype=np.float32)
    y = y.tanh().sum() * 0.5
    y.backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32


def test_unbroadcast_sums_added_and_stretched_axes():
    grad = np.ones((4, 2, 3))
    np.testing.assert_array_equal(unbroadcast(grad, (2, 1)), np.full((2, 1), 12.0))
    np.testing.assert_array_equal(unbroadcast(grad, ()), 24.0)


def test_non_scalar_backward_needs_a_gradient():
    with pytest.raises(RuntimeError, match="needs `grad`"):
        (Tensor([1.0, 2.0], requires_grad=True) * 2.0).backward()
