"""Check a backward pass against finite differences, the way to test a hand-written gradient.

The output is reduced to a scalar with fixed random weights, L = sum(w * fn(*inputs)), so one
backward pass checks the whole vector-Jacobian product; each input element is then nudged by
+-eps and dL/dx is estimated by the central difference (L(x + eps) - L(x - eps)) / (2 eps).
Simplified compared with torch.autograd.gradcheck: one random projection instead of the full
Jacobian, and first derivatives only. Use float64: in float32 the differences are mostly rounding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from dlpractice.scratch.tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """The analytic gradient of an input disagrees with the numerical one."""


def numerical_gradient(loss: Callable[[], float], x: np.ndarray, eps: float) -> np.ndarray:
    """d loss / d x by central differences, nudging x in place one element at a time."""
    grad = np.zeros_like(x)
    for idx in np.ndindex(x.shape):
        original = x[idx]
        x[idx] = original + eps
        plus = loss()
        x[idx] = original - eps
        minus = loss()
        x[idx] = original
        grad[idx] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(
    fn: Callable[..., Tensor],
    inputs: Sequence[Tensor],
    eps: float = 1e-6,
    atol: float = 1e-5,
    rtol: float = 1e-3,
    raise_exception: bool = True,
    seed: int = 0,
) -> bool:
    """True if the gradients of every input with requires_grad match finite differences.

    An element passes when |analytic - numerical| <= atol + rtol * |numerical|. On a mismatch, raises
    GradcheckError naming the input and its worst element (or returns False if raise_exception=False).
    """
    for i, x in enumerate(inputs):
        if x.requires_grad and x.dtype != np.float64:
            raise ValueError(f"gradcheck needs float64 inputs; input {i} is {x.dtype}")
    weights = np.random.default_rng(seed).standard_normal(fn(*inputs).shape)

    def weighted_loss() -> float:
        with no_grad():
            return float((fn(*inputs).data * weights).sum())

    for x in inputs:
        x.grad = None
    (fn(*inputs) * weights).sum().backward()

    for i, x in enumerate(inputs):
        if not x.requires_grad:
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numerical = numerical_gradient(weighted_loss, x.data, eps)
        excess = np.abs(analytic - numerical) - (atol + rtol * np.abs(numerical))
        if (excess > 0).any():
            if not raise_exception:
                return False
            worst = np.unravel_index(np.argmax(excess), x.shape)
            raise GradcheckError(
                f"gradient of input {i} (shape {x.shape}) is wrong: at element {tuple(map(int, worst))} "
                f"the backward pass gives {analytic[worst]:.6g} but finite differences give "
                f"{numerical[worst]:.6g}; "
                f"{int((excess > 0).sum())} of {x.size} elements differ (atol={atol:g}, rtol={rtol:g})"
            )
    return True
