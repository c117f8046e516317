"""Layers for the `Tensor` engine, shaped like torch.nn so the two versions of a lab read alike.

A `Module` finds its parameters by looking through its attributes (tensors that require grad,
sub-modules, and lists or tuples of them). Initialisation follows torch's defaults: Linear and Conv2d
draw weights and biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (what kaiming_uniform_ with a=sqrt(5)
reduces to), Embedding from N(0, 1), norms start at weight 1 and bias 0. Simplified: no hooks,
no state_dict, no device handling; random numbers come from a NumPy Generator (`manual_seed` resets
the default one), so the same seed does not give torch's numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import numpy.typing as npt

from dlpractice.scratch import functional as F
from dlpractice.scratch.tensor import Tensor

_default_rng = np.random.default_rng(0)


def manual_seed(seed: int) -> None:
    """Reseed the generator layers use when they are not given one."""
    global _default_rng
    _default_rng = np.random.default_rng(seed)


def _uniform_parameter(
    shape: tuple[int, ...], fan_in: int, rng: np.random.Generator | None, dtype: npt.DTypeLike
) -> Tensor:
    bound = 1 / math.sqrt(fan_in)
    values = (rng or _default_rng).uniform(-bound, bound, size=shape)
    return Tensor(values.astype(dtype), requires_grad=True)


class Module:
    """Base class: parameters(), zero_grad(), train()/eval(); subclasses define forward()."""

    training = True

    def forward(self, *args: object) -> Tensor:
        raise NotImplementedError

    def __call__(self, *args: object) -> Tensor:
        return self.forward(*args)

    def _children(self) -> Iterator[object]:
        for value in vars(self).values():
            if isinstance(value, (list, tuple)):
                yield from value
            else:
                yield value

    def modules(self) -> Iterator[Module]:
        """This module and every module inside it."""
        yield self
        for child in self._children():
            if isinstance(child, Module):
                yield from child.modules()

    def parameters(self) -> list[Tensor]:
        """Every trainable tensor, once each, in attribute order."""
        found: dict[int, Tensor] = {}
        for module in self.modules():
            for child in module._children():
                if isinstance(child, Tensor) and child.requires_grad:
                    found.setdefault(id(child), child)
        return list(found.values())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    def train(self, mode: bool = True) -> Module:
        for module in self.modules():
            module.training = mode
        return self

    def eval(self) -> Module:
        return self.train(False)


class Linear(Module):
    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: npt.DTypeLike = np.float64,
    ):
        self.weight = _uniform_parameter((out_features, in_features), in_features, rng, dtype)
        self.bias = _uniform_parameter((out_features,), in_features, rng, dtype) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        out = x @ self.weight.T  # (N, in) @ (in, out) -> (N, out)
        return out + self.bias if self.bias is not None else out


class Conv2d(Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int = 0,
        bias: bool = True,
        rng: np.random.Generator | None = None,
        dtype: npt.DTypeLike = np.float64,
    ):
        fan_in = in_channels * kernel_size * kernel_size
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        self.weight = _uniform_parameter(shape, fan_in, rng, dtype)
        self.bias = _uniform_parameter((out_channels,), fan_in, rng, dtype) if bias else None
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding)


class MaxPool2d(Module):
    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0):
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)


class Embedding(Module):
    def __init__(
        self,
        num_embeddings: int,
        embedding_dim: int,
        rng: np.random.Generator | None = None,
        dtype: npt.DTypeLike = np.float64,
    ):
        values = (rng or _default_rng).standard_normal((num_embeddings, embedding_dim))
        self.weight = Tensor(values.astype(dtype), requires_grad=True)

    def forward(self, indices: npt.ArrayLike) -> Tensor:
        return F.embedding(indices, self.weight)


class BatchNorm1d(Module):
    """Batch normalisation over axis 1 of (N, C) or (N, C, L), with running statistics for eval()."""

    def __init__(
        self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, dtype: npt.DTypeLike = np.float64
    ):
        self.weight = Tensor(np.ones(num_features, dtype=dtype), requires_grad=True)
        self.bias = Tensor(np.zeros(num_features, dtype=dtype), requires_grad=True)
        self.running_mean = np.zeros(num_features, dtype=dtype)  # buffers: NumPy arrays, not parameters
        self.running_var = np.ones(num_features, dtype=dtype)
        self.eps, self.momentum = eps, momentum

    def forward(self, x: Tensor) -> Tensor:
        running = (self.running_mean, self.running_var)
        return F.batch_norm(x, *running, self.weight, self.bias, self.training, self.momentum, self.eps)


class BatchNorm2d(BatchNorm1d):
    """The same computation on (N, C, H, W): statistics per channel over N, H and W."""


class LayerNorm(Module):
    def __init__(
        self,
        normalized_shape: int | Sequence[int],
        eps: float = 1e-5,
        elementwise_affine: bool = True,
        dtype: npt.DTypeLike = np.float64,
    ):
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
        self.normalized_shape, self.eps = shape, eps
        self.weight = Tensor(np.ones(shape, dtype=dtype), requires_grad=True) if elementwise_affine else None
        self.bias = Tensor(np.zeros(shape, dtype=dtype), requires_grad=True) if elementwise_affine else None

    def forward(self, x: Tensor) -> Tensor:
        return F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)


class Dropout(Module):
    def __init__(self, p: float = 0.5, rng: np.random.Generator | None = None):
        self.p = p
        self.rng = rng or np.random.default_rng(_default_rng.integers(2**63))

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, self.rng)


class ReLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.relu()


class Tanh(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.tanh()


class Sigmoid(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.sigmoid()


class GELU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.gelu()


class SiLU(Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.silu()


class Flatten(Module):
    """(N, ...) -> (N, everything else)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.reshape(x.shape[0], -1)


class Sequential(Module):
    def __init__(self, *layers: Module):
        self.layers = list(layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x

    def __getitem__(self, i: int) -> Module:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)


class MLP(Sequential):
    """Linear layers with an activation between them (none after the last): MLP(2, [16, 16], 1)."""

    def __init__(
        self,
        in_features: int,
        hidden: Sequence[int],
        out_features: int,
        activation: type[Module] = ReLU,
        rng: np.random.Generator | None = None,
        dtype: npt.DTypeLike = np.float64,
    ):
        sizes = [in_features, *hidden, out_features]
        layers: list[Module] = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
            layers += [Linear(n_in, n_out, rng=rng, dtype=dtype), activation()]
        super().__init__(*layers[:-1])
