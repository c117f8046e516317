"""gradcheck passes correct backward passes and names the input of a wrong one."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.scratch import GradcheckError, Tensor, gradcheck
from dlpractice.scratch import functional as F


def wrong_square(x: Tensor) -> Tensor:
    """x**2 with a deliberately wrong backward: it forgets the factor 2."""

    def _backward(grad: np.ndarray) -> None:
        x._accumulate(grad * x.data)

    return Tensor._result(x.data**2, (x,), "wrong_square", _backward)


def random_input(*shape: int, seed: int = 0, requires_grad: bool = True) -> Tensor:
    return Tensor(np.random.default_rng(seed).standard_normal(shape), requires_grad=requires_grad)


def test_gradcheck_passes_correct_operations():
    x, w = random_input(2, 2, 5, 5), random_input(3, 2, 3, 3, seed=1)
    assert gradcheck(lambda x, w: F.max_pool2d(F.conv2d(x, w, padding=1).gelu(), 2), [x, w])
    a, b = random_input(3, 4), random_input(4, seed=1)
    assert gradcheck(lambda a, b: F.layer_norm((a * b).silu(), (4,)) @ b, [a, b])
    targets = np.array([0, 2, 1])
    assert gradcheck(lambda a: F.cross_entropy(F.batch_norm(a, None, None, training=True), targets), [a])


def test_gradcheck_catches_a_wrong_backward_and_names_the_input():
    x, y = random_input(3, requires_grad=False), random_input(2, 3, seed=1)
    with pytest.raises(GradcheckError, match=r"input 1 \(shape \(2, 3\)\).*element \(\d, \d\)"):
        gradcheck(lambda x, y: wrong_square(y) + x, [x, y])
    assert gradcheck(lambda x, y: wrong_square(y) + x, [x, y], raise_exception=False) is False


def test_gradcheck_refuses_float32():
    with pytest.raises(ValueError, match="float64"):
        gradcheck(lambda x: x * 2.0, [Tensor(np.ones(2, dtype=np.float32), requires_grad=True)])
