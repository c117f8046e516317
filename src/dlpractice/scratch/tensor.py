"""A NumPy `Tensor` with reverse-mode automatic differentiation: the engine of lab f1.

Each operation computes its result with NumPy and defines, right below, a `_backward(grad)` closure
that turns the gradient of the result into gradients of its inputs (micrograd's layout, with arrays
instead of scalars). `backward()` visits the graph in reverse topological order.

Simplified compared with PyTorch: CPU only; floating-point tensors only (integer indices stay NumPy
arrays); no views (every result is a new node, slices are copies on the backward pass); no in-place
operations on tracked tensors; gradients of intermediate results are kept (handy for teaching) and
overwritten by the next `backward()`, while leaf gradients accumulate as in PyTorch. Neural-network
operations (softmax, cross-entropy, convolution, normalisation) live in `functional.py`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import numpy.typing as npt
from scipy.special import erf, expit

from dlpractice.scratch.value import topological_order

_grad_enabled = True


@contextmanager
def no_grad() -> Iterator[None]:
    """Operations inside build no graph: for evaluation and for updating parameters."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum `grad` over the axes that broadcasting added or stretched, so it has `shape` again."""
    if grad.shape == shape:
        return grad
    added = grad.ndim - len(shape)
    if added:
        grad = grad.sum(axis=tuple(range(added)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def normalize_axes(axis: int | Sequence[int] | None, ndim: int) -> tuple[int, ...]:
    """`axis` as a tuple of non-negative axes; None means all of them."""
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    return tuple(a % ndim for a in axes)


class Tensor:
    """An n-dimensional float array that records the operations made on it."""

    __slots__ = ("data", "grad", "requires_grad", "_parents", "_backward", "op", "label")
    __array_ufunc__ = None  # `ndarray + Tensor` defers to Tensor.__radd__ instead of looping elementwise

    def __init__(
        self, data: npt.ArrayLike, requires_grad: bool = False, dtype: npt.DTypeLike = None, label: str = ""
    ):
        array = np.asarray(data, dtype=dtype)
        if not np.issubdtype(array.dtype, np.floating):
            array = array.astype(np.float64)
        self.data: np.ndarray = array
        self.grad: np.ndarray | None = None
        self.requires_grad = requires_grad
        self._parents: tuple[Tensor, ...] = ()
        self._backward: Callable[[np.ndarray], None] | None = None
        self.op = ""
        self.label = label

    @staticmethod
    def _result(
        data: np.ndarray, parents: tuple[Tensor, ...], op: str, backward: Callable[[np.ndarray], None]
    ) -> Tensor:
        """Wrap an operation's output; link it into the graph only if some input needs a gradient."""
        out = Tensor.__new__(Tensor)
        out.data, out.grad, out.op, out.label = data, None, op, ""
        out.requires_grad = _grad_enabled and any(p.requires_grad for p in parents)
        out._parents = parents if out.requires_grad else ()
        out._backward = backward if out.requires_grad else None
        return out

    def _lift(self, other: Tensor | npt.ArrayLike) -> Tensor:
        """Constants join the graph as tensors of this tensor's dtype (so float32 stays float32)."""
        return other if isinstance(other, Tensor) else Tensor(np.asarray(other, dtype=self.data.dtype))

    def _accumulate(self, grad: np.ndarray) -> None:
        if not self.requires_grad:
            return
        if grad.dtype != self.data.dtype:
            grad = grad.astype(self.data.dtype)
        if self.grad is None:
            self.grad = grad if grad.flags.writeable else grad.copy()  # broadcast views are read-only
        else:
            self.grad = self.grad + grad

    def backward(self, grad: npt.ArrayLike | None = None) -> None:
        """Fill `.grad` of every tensor this one depends on (d self / d tensor, times `grad`)."""
        if not self.requires_grad:
            raise RuntimeError("backward() on a tensor that does not require grad (built under no_grad?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() of a non-scalar (shape {self.shape}) needs `grad`")
            grad = np.ones_like(self.data)
        order = topological_order(self)
        for node in order:
            if node._backward is not None:
                node.grad = None  # intermediate gradients restart; leaf gradients accumulate
        self._accumulate(np.asarray(grad, dtype=self.data.dtype))
        for node in reversed(order):
            if node._backward is not None and node.grad is not None:
                node._backward(node.grad)

    # ----- information and conversion -----
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        grad = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}{grad})"

    def item(self) -> float:
        return self.data.item()

    def numpy(self) -> np.ndarray:
        return self.data

    def detach(self) -> Tensor:
        return Tensor(self.data)

    # ----- elementwise arithmetic, with broadcasting -----
    def __add__(self, other: Tensor | npt.ArrayLike) -> Tensor:
        other = self._lift(other)
        data = self.data + other.data

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(unbroadcast(grad, self.shape))
            other._accumulate(unbroadcast(grad, other.shape))

        return Tensor._result(data, (self, other), "+", _backward)

    def __sub__(self, other: Tensor | npt.ArrayLike) -> Tensor:
        other = self._lift(other)
        data = self.data - other.data

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(unbroadcast(grad, self.shape))
            other._accumulate(unbroadcast(-grad, other.shape))

        return Tensor._result(data, (self, other), "-", _backward)

    def __mul__(self, other: Tensor | npt.ArrayLike) -> Tensor:
        other = self._lift(other)
        data = self.data * other.data

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(unbroadcast(grad * other.data, self.shape))
            other._accumulate(unbroadcast(grad * self.data, other.shape))

        return Tensor._result(data, (self, other), "*", _backward)

    def __truediv__(self, other: Tensor | npt.ArrayLike) -> Tensor:
        other = self._lift(other)
        data = self.data / other.data

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(unbroadcast(grad / other.data, self.shape))
            other._accumulate(unbroadcast(-grad * data / other.data, other.shape))  # -a / b**2

        return Tensor._result(data, (self, other), "/", _backward)

    def __pow__(self, exponent: float) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; write exp(b * log(a))")
        data = self.data**exponent

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * exponent * self.data ** (exponent - 1))

        return Tensor._result(data, (self,), f"**{exponent:g}", _backward)

    def __rpow__(self, base: float) -> Tensor:
        data = np.asarray(base, dtype=self.data.dtype) ** self.data

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * data * math.log(base))

        return Tensor._result(data, (self,), f"{base:g}**", _backward)

    def __neg__(self) -> Tensor:
        def _backward(grad: np.ndarray) -> None:
            self._accumulate(-grad)

        return Tensor._result(-self.data, (self,), "neg", _backward)

    def __radd__(self, other: npt.ArrayLike) -> Tensor:
        return self + other

    def __rmul__(self, other: npt.ArrayLike) -> Tensor:
        return self * other

    def __rsub__(self, other: npt.ArrayLike) -> Tensor:
        return self._lift(other) - self

    def __rtruediv__(self, other: npt.ArrayLike) -> Tensor:
        return self._lift(other) / self

    # ----- matrix product -----
    def __matmul__(self, other: Tensor | npt.ArrayLike) -> Tensor:
        other = self._lift(other)
        if self.ndim == 1 or other.ndim == 1:
            return self._matmul_with_vector(other)
        data = self.data @ other.data  # (..., n, m) @ (..., m, p) -> (..., n, p)

        def _backward(grad: np.ndarray) -> None:
            # BEGIN EXERCISE f1.2: gradients of A @ B for A and B (batch axes may have been broadcast)
            # Inputs that need no gradient (a batch of data) are skipped: it saves a whole matmul.
            if self.requires_grad:
                self._accumulate(unbroadcast(grad @ np.swapaxes(other.data, -1, -2), self.shape))
            if other.requires_grad:
                other._accumulate(unbroadcast(np.swapaxes(self.data, -1, -2) @ grad, other.shape))
            # END EXERCISE

        return Tensor._result(data, (self, other), "@", _backward)

    def _matmul_with_vector(self, other: Tensor) -> Tensor:
        """NumPy's 1-D rules: a vector on the left is a row, on the right a column, and the axis goes."""
        left = self.reshape(1, -1) if self.ndim == 1 else self
        right = other.reshape(-1, 1) if other.ndim == 1 else other
        out = left @ right
        rows = () if self.ndim == 1 else out.shape[-2:-1]
        columns = () if other.ndim == 1 else out.shape[-1:]
        return out.reshape(*out.shape[:-2], *rows, *columns)

    def __rmatmul__(self, other: npt.ArrayLike) -> Tensor:
        return self._lift(other) @ self

    # ----- reductions -----
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = normalize_axes(axis, self.ndim)
        data = self.data.sum(axis=axes, keepdims=keepdims)

        def _backward(grad: np.ndarray) -> None:
            if not keepdims:
                grad = np.expand_dims(grad, axes)
            self._accumulate(np.broadcast_to(grad, self.shape))

        return Tensor._result(data, (self,), "sum", _backward)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        count = math.prod(self.shape[a] for a in normalize_axes(axis, self.ndim))
        return self.sum(axis, keepdims) * (1.0 / count)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        axes = normalize_axes(axis, self.ndim)
        kept = self.data.max(axis=axes, keepdims=True)

        def _backward(grad: np.ndarray) -> None:
            if not keepdims:
                grad = np.expand_dims(grad, axes)
            winners = self.data == kept  # ties share the gradient equally, as torch.amax does
            self._accumulate(winners * (grad / winners.sum(axis=axes, keepdims=True, dtype=grad.dtype)))

        data = kept if keepdims else np.squeeze(kept, axes)
        return Tensor._result(data, (self,), "max", _backward)

    # ----- shape -----
    def reshape(self, *shape: int) -> Tensor:
        if len(shape) == 1 and not isinstance(shape[0], int):
            shape = tuple(shape[0])

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad.reshape(self.shape))

        return Tensor._result(self.data.reshape(shape), (self,), "reshape", _backward)

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes (reverse them if none are given), like np.transpose."""
        axes = axes or tuple(range(self.ndim))[::-1]

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(np.transpose(grad, np.argsort(axes)))

        return Tensor._result(np.transpose(self.data, axes), (self,), "transpose", _backward)

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index: object) -> Tensor:
        index = _index_to_numpy(index)

        def _backward(grad: np.ndarray) -> None:
            full = np.zeros_like(self.data)
            np.add.at(full, index, grad)  # an index repeated in an integer array collects every gradient
            self._accumulate(full)

        return Tensor._result(self.data[index], (self,), "index", _backward)

    # ----- elementwise functions -----
    def exp(self) -> Tensor:
        data = np.exp(self.data)

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * data)

        return Tensor._result(data, (self,), "exp", _backward)

    def log(self) -> Tensor:
        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad / self.data)

        return Tensor._result(np.log(self.data), (self,), "log", _backward)

    def tanh(self) -> Tensor:
        data = np.tanh(self.data)

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * (1 - data * data))

        return Tensor._result(data, (self,), "tanh", _backward)

    def sigmoid(self) -> Tensor:
        data = expit(self.data)  # 1 / (1 + exp(-x)) without overflow warnings

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * data * (1 - data))

        return Tensor._result(data, (self,), "sigmoid", _backward)

    def relu(self) -> Tensor:
        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * (self.data > 0))

        return Tensor._result(np.maximum(self.data, 0), (self,), "relu", _backward)

    def gelu(self) -> Tensor:
        """Exact GELU, x * Phi(x), PyTorch's default (not the tanh approximation)."""
        cdf = 0.5 * (1 + erf(self.data * (1 / math.sqrt(2))))  # Phi(x)

        def _backward(grad: np.ndarray) -> None:
            pdf = np.exp(-0.5 * self.data * self.data) * (1 / math.sqrt(2 * math.pi))  # phi(x)
            self._accumulate(grad * (cdf + self.data * pdf))

        return Tensor._result(self.data * cdf, (self,), "gelu", _backward)

    def silu(self) -> Tensor:
        """x * sigmoid(x), also called swish."""
        sig = expit(self.data)

        def _backward(grad: np.ndarray) -> None:
            self._accumulate(grad * sig * (1 + self.data * (1 - sig)))

        return Tensor._result(self.data * sig, (self,), "silu", _backward)


def _index_to_numpy(index: object) -> object:
    """Tensors used as indices become integer arrays; everything else is NumPy indexing as is."""
    if isinstance(index, tuple):
        return tuple(_index_to_numpy(i) for i in index)
    if isinstance(index, Tensor):
        return index.data.astype(np.intp)
    return index


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Concatenate along an existing axis; the gradient is cut back into the original pieces."""
    data = np.concatenate([t.data for t in tensors], axis=axis)
    boundaries = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def _backward(grad: np.ndarray) -> None:
        for t, piece in zip(tensors, np.split(grad, boundaries, axis=axis), strict=True):
            t._accumulate(piece)

    return Tensor._result(data, tuple(tensors), "cat", _backward)


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Join along a new axis: a `cat` of tensors given a length-1 axis there."""
    axis = axis % (tensors[0].ndim + 1)
    return cat([t.reshape(*t.shape[:axis], 1, *t.shape[axis:]) for t in tensors], axis=axis)
