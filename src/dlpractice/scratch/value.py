"""A scalar autograd engine in the style of micrograd: where lab f1 starts.

Every `Value` remembers the values it was computed from and a `_backward` closure that pushes its
gradient to them; `backward()` walks the graph in reverse topological order. Simplified: scalars
only, float64 only, one value per node (so it is ~1000x slower than the `Tensor` engine), and the
graph is rebuilt on every forward pass.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol, TypeVar


class _Node(Protocol):
    _parents: tuple


NodeT = TypeVar("NodeT", bound=_Node)


def topological_order(root: NodeT) -> list[NodeT]:
    """Every node `root` depends on, each after all of its parents (iterative: no recursion limit)."""
    order: list[NodeT] = []
    visited: set[int] = set()
    stack: list[tuple[NodeT, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((parent, False) for parent in node._parents if id(parent) not in visited)
    return order


class Value:
    """One scalar, its gradient, and how it was made."""

    __slots__ = ("data", "grad", "_parents", "_backward", "op", "label")

    def __init__(self, data: float, _parents: tuple[Value, ...] = (), op: str = "", label: str = ""):
        self.data = float(data)
        self.grad = 0.0
        self._parents = _parents
        self._backward: Callable[[], None] = lambda: None
        self.op = op
        self.label = label

    def __repr__(self) -> str:
        return f"Value(data={self.data:.4g}, grad={self.grad:.4g})"

    def __add__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward() -> None:
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: Value | float) -> Value:
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward() -> None:
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: float) -> Value:
        out = Value(self.data**exponent, (self,), f"**{exponent:g}")

        def _backward() -> None:
            self.grad += exponent * self.data ** (exponent - 1) * out.grad

        out._backward = _backward
        return out

    def tanh(self) -> Value:
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward() -> None:
            self.grad += (1 - t * t) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> Value:
        out = Value(max(self.data, 0.0), (self,), "relu")

        def _backward() -> None:
            self.grad += (self.data > 0) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> Value:
        out = Value(math.exp(self.data), (self,), "exp")

        def _backward() -> None:
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> Value:
        out = Value(math.log(self.data), (self,), "log")

        def _backward() -> None:
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def backward(self) -> None:
        """Fill `.grad` of every value this one depends on with d(self)/d(value)."""
        # BEGIN EXERCISE f1.1: order the graph topologically, seed d(self)/d(self) = 1, apply the chain rule
        self.grad = 1.0
        for node in reversed(topological_order(self)):
            node._backward()
        # END EXERCISE

    # The remaining operators are compositions of the ones above.
    def __neg__(self) -> Value:
        return self * -1

    def __sub__(self, other: Value | float) -> Value:
        return self + (-other)

    def __truediv__(self, other: Value | float) -> Value:
        return self * other**-1

    def __radd__(self, other: float) -> Value:
        return self + other

    def __rsub__(self, other: float) -> Value:
        return (-self) + other

    def __rmul__(self, other: float) -> Value:
        return self * other

    def __rtruediv__(self, other: float) -> Value:
        return Value(other) / self


class Neuron:
    """w . x + b, then tanh (or nothing, for an output neuron)."""

    def __init__(self, n_in: int, nonlinear: bool = True, rng: random.Random | None = None):
        rng = rng or random.Random(0)
        self.w = [Value(rng.uniform(-1, 1)) for _ in range(n_in)]
        self.b = Value(0.0)
        self.nonlinear = nonlinear

    def __call__(self, x: Sequence[Value | float]) -> Value:
        act = sum((wi * xi for wi, xi in zip(self.w, x, strict=True)), self.b)
        return act.tanh() if self.nonlinear else act

    def parameters(self) -> list[Value]:
        return [*self.w, self.b]


class Layer:
    def __init__(self, n_in: int, n_out: int, nonlinear: bool = True, rng: random.Random | None = None):
        rng = rng or random.Random(0)
        self.neurons = [Neuron(n_in, nonlinear, rng) for _ in range(n_out)]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        return [neuron(x) for neuron in self.neurons]

    def parameters(self) -> list[Value]:
        return [p for neuron in self.neurons for p in neuron.parameters()]


class MLP:
    """Tanh hidden layers and a linear output layer; `MLP(2, [16, 16, 1])` as in micrograd's demo."""

    def __init__(self, n_in: int, sizes: Sequence[int], seed: int = 0):
        rng = random.Random(seed)
        dims = [n_in, *sizes]
        self.layers = [
            Layer(dims[i], dims[i + 1], nonlinear=i < len(sizes) - 1, rng=rng) for i in range(len(sizes))
        ]

    def __call__(self, x: Sequence[Value | float]) -> list[Value]:
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self) -> list[Value]:
        return [p for layer in self.layers for p in layer.parameters()]

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = 0.0


def sgd_step(parameters: Iterable[Value], lr: float) -> None:
    for p in parameters:
        p.data -= lr * p.grad
