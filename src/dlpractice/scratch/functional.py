"""Neural-network operations on `Tensor`: softmax, cross-entropy, convolution, pooling, normalisation.

Same layout as `tensor.py`: NumPy forward, then the `_backward` closure. Where an operation is a
composition of existing ones (embedding is indexing, dropout is a multiplication) it is written as
that composition. Convolution is one matrix product over im2col columns; both it and max-pooling
walk the kernel offsets with one strided slice each, which is what makes them fast in NumPy.
Simplified compared with torch.nn.functional: 2-D only, one stride and one padding for both axes,
square pooling windows, no dilation or groups; cross-entropy takes (N, C) logits and integer class
targets, with no weights, ignore_index or label smoothing.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from dlpractice.scratch.tensor import Tensor, normalize_axes, unbroadcast


def _softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))  # subtracting the max keeps exp finite
    return shifted / shifted.sum(axis=axis, keepdims=True)


def _log_softmax_array(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    probs = _softmax_array(x.data, axis)

    def _backward(grad: np.ndarray) -> None:
        # Jacobian-vector product of softmax: s * (g - <g, s>)
        x._accumulate(probs * (grad - (grad * probs).sum(axis=axis, keepdims=True)))

    return Tensor._result(probs, (x,), "softmax", _backward)


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    data = _log_softmax_array(x.data, axis)

    def _backward(grad: np.ndarray) -> None:
        x._accumulate(grad - np.exp(data) * grad.sum(axis=axis, keepdims=True))

    return Tensor._result(data, (x,), "log_softmax", _backward)


def cross_entropy(logits: Tensor, targets: npt.ArrayLike | Tensor) -> Tensor:
    """Mean over the batch of -log softmax(logits)[target], in one numerically stable step.

    logits: (N, C) unnormalised scores; targets: (N,) class indices.
    """
    targets = (targets.data if isinstance(targets, Tensor) else np.asarray(targets)).astype(np.intp)
    n = logits.shape[0]
    log_probs = _log_softmax_array(logits.data, axis=1)  # (N, C)
    loss = -log_probs[np.arange(n), targets].mean()

    def _backward(grad: np.ndarray) -> None:
        # BEGIN EXERCISE f1.3: gradient of the mean cross-entropy w.r.t. the logits
        d_logits = np.exp(log_probs)  # softmax(logits), (N, C)
        d_logits[np.arange(n), targets] -= 1  # minus the one-hot targets
        logits._accumulate(d_logits * (grad / n))
        # END EXERCISE

    return Tensor._result(np.asarray(loss, dtype=logits.dtype), (logits,), "cross_entropy", _backward)


def embedding(indices: npt.ArrayLike | Tensor, weight: Tensor) -> Tensor:
    """Rows of `weight` (num_embeddings, dim) picked by integer `indices` of any shape."""
    return weight[Tensor(indices) if not isinstance(indices, Tensor) else indices]


def dropout(x: Tensor, p: float, training: bool, rng: np.random.Generator) -> Tensor:
    """Zero each element with probability p and scale the rest by 1/(1-p) (identity in evaluation)."""
    if not training or p == 0:
        return x
    keep = (rng.random(x.shape) >= p).astype(x.dtype) * (1 / (1 - p))
    return x * keep


# ----- convolution and pooling: one strided slice per kernel offset -----


def _pad(x: np.ndarray, padding: int, value: float = 0.0) -> np.ndarray:
    if padding == 0:
        return x
    return np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)), constant_values=value)


def _output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _shifted(x_padded: np.ndarray, i: int, j: int, stride: int, h_out: int, w_out: int) -> np.ndarray:
    """The input pixel under kernel offset (i, j) for every output pixel: a (B, C, H', W') view."""
    return x_padded[:, :, i : i + stride * h_out : stride, j : j + stride * w_out : stride]


def _im2col(
    x_padded: np.ndarray, kernel: tuple[int, int], stride: int, out_size: tuple[int, int]
) -> np.ndarray:
    """(B, C, H, W) -> (C*kh*kw, B*H'*W'): one column per output pixel, holding the patch it sees.

    Filled with one strided copy per kernel offset; this layout keeps the copies, the matrix product
    and the reshapes around it contiguous (about 5x faster than transposing a sliding-window view).
    """
    batch, channels = x_padded.shape[:2]
    (kh, kw), (h_out, w_out) = kernel, out_size
    cols = np.empty((channels, kh, kw, batch, h_out, w_out), dtype=x_padded.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = _shifted(x_padded, i, j, stride, h_out, w_out).transpose(1, 0, 2, 3)
    return cols.reshape(channels * kh * kw, -1)


def _col2im(
    d_cols: np.ndarray, input_shape: tuple[int, ...], kernel: tuple[int, int], stride: int, padding: int
) -> np.ndarray:
    """The adjoint of `_im2col`: add each patch's gradient back onto the pixels it was copied from.

    d_cols: (C*kh*kw, B*H'*W') -> (B, C, H, W); overlapping patches sum their contributions.
    """
    batch, channels, height, width = input_shape
    kh, kw = kernel
    h_out, w_out = (_output_size(n, k, stride, padding) for n, k in zip((height, width), kernel, strict=True))
    d_cols = d_cols.reshape(channels, kh, kw, batch, h_out, w_out)
    d_padded = np.zeros((batch, channels, height + 2 * padding, width + 2 * padding), dtype=d_cols.dtype)
    for i in range(kh):
        for j in range(kw):
            _shifted(d_padded, i, j, stride, h_out, w_out)[...] += d_cols[:, i, j].transpose(1, 0, 2, 3)
    return d_padded[:, :, padding : padding + height, padding : padding + width]


def conv2d(
    x: Tensor, weight: Tensor, bias: Tensor | None = None, stride: int = 1, padding: int = 0
) -> Tensor:
    """Cross-correlation, as torch's F.conv2d: x (B, C, H, W), weight (O, C, kh, kw) -> (B, O, H', W')."""
    batch, _, height, width = x.shape
    out_channels, _, kh, kw = weight.shape
    h_out, w_out = _output_size(height, kh, stride, padding), _output_size(width, kw, stride, padding)
    cols = _im2col(_pad(x.data, padding), (kh, kw), stride, (h_out, w_out))  # (C*kh*kw, B*H'*W')
    w_mat = weight.data.reshape(out_channels, -1)  # (O, C*kh*kw)
    out = w_mat @ cols  # (O, B*H'*W')
    if bias is not None:
        out += bias.data[:, None]
    data = np.ascontiguousarray(out.reshape(out_channels, batch, h_out, w_out).transpose(1, 0, 2, 3))

    def _backward(grad: np.ndarray) -> None:
        g = grad.transpose(1, 0, 2, 3).reshape(out_channels, -1)  # (O, B*H'*W')
        weight._accumulate((g @ cols.T).reshape(weight.shape))
        if bias is not None:
            bias._accumulate(g.sum(axis=1))
        if x.requires_grad:  # the input image usually needs none: skip the biggest product
            x._accumulate(_col2im(w_mat.T @ g, x.shape, (kh, kw), stride, padding))

    parents = (x, weight) if bias is None else (x, weight, bias)
    return Tensor._result(data, parents, "conv2d", _backward)


def max_pool2d(x: Tensor, kernel_size: int, stride: int | None = None, padding: int = 0) -> Tensor:
    """Maximum over each window of (B, C, H, W); the gradient goes to the first maximum, as in torch."""
    stride = stride or kernel_size
    x_padded = _pad(x.data, padding, -np.inf)
    h_out, w_out = (_output_size(n, kernel_size, stride, padding) for n in x.shape[2:])
    offsets = [(i, j) for i in range(kernel_size) for j in range(kernel_size)]
    data = _shifted(x_padded, 0, 0, stride, h_out, w_out).copy()  # (B, C, H', W')
    for i, j in offsets[1:]:  # a running maximum over the kernel offsets: elementwise, no window copies
        np.maximum(data, _shifted(x_padded, i, j, stride, h_out, w_out), out=data)

    def _backward(grad: np.ndarray) -> None:
        d_padded = np.zeros(x_padded.shape, dtype=grad.dtype)
        unclaimed = np.ones(data.shape, dtype=bool)
        for i, j in offsets:
            # on a tie the first offset takes the whole gradient, as in torch
            first = (_shifted(x_padded, i, j, stride, h_out, w_out) == data) & unclaimed
            unclaimed &= ~first
            _shifted(d_padded, i, j, stride, h_out, w_out)[...] += grad * first
        x._accumulate(d_padded[:, :, padding : padding + x.shape[2], padding : padding + x.shape[3]])

    return Tensor._result(data, (x,), "max_pool2d", _backward)


# ----- normalisation -----


def _normalize_affine(
    x: Tensor,
    weight: Tensor | None,
    bias: Tensor | None,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
    stat_axes: tuple[int, ...],
    param_shape: tuple[int, ...],
    stats_from_x: bool,
    op: str,
) -> Tensor:
    """(x - mean) / sqrt(var + eps) * weight + bias, shared by batch and layer normalisation.

    `mean` and `var` broadcast against x; if `stats_from_x` they were computed from x over
    `stat_axes`, so the gradient flows through them too. weight and bias reshape to `param_shape`.
    """
    inv_std = 1.0 / np.sqrt(var + eps)
    x_hat = (x.data - mean) * inv_std
    w = None if weight is None else weight.data.reshape(param_shape)
    data = x_hat if w is None else x_hat * w
    if bias is not None:
        data = data + bias.data.reshape(param_shape)

    def _backward(grad: np.ndarray) -> None:
        if weight is not None:
            weight._accumulate(unbroadcast(grad * x_hat, param_shape).reshape(weight.shape))
        if bias is not None:
            bias._accumulate(unbroadcast(grad, param_shape).reshape(bias.shape))
        d_x_hat = grad if w is None else grad * w
        if stats_from_x:
            # mean and variance move with x: remove the parts of d_x_hat that would shift or scale them
            d_x_hat = (
                d_x_hat
                - d_x_hat.mean(axis=stat_axes, keepdims=True)
                - x_hat * (d_x_hat * x_hat).mean(axis=stat_axes, keepdims=True)
            )
        x._accumulate(d_x_hat * inv_std)

    parents = tuple(t for t in (x, weight, bias) if t is not None)
    return Tensor._result(data, parents, op, _backward)


def batch_norm(
    x: Tensor,
    running_mean: np.ndarray | None,
    running_var: np.ndarray | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) of (N, C) or (N, C, ...) input, like torch's F.batch_norm.

    Training uses the batch's statistics and updates the running ones in place (the variance that
    goes into the running estimate is the unbiased one, as in torch); evaluation uses the running ones.
    """
    stat_axes = tuple(a for a in range(x.ndim) if a != 1)
    param_shape = tuple(n if a == 1 else 1 for a, n in enumerate(x.shape))  # (1, C, 1, ...)
    if training:
        mean = x.data.mean(axis=stat_axes, keepdims=True)
        var = x.data.var(axis=stat_axes, keepdims=True)
        if running_mean is not None and running_var is not None:
            count = x.size // x.shape[1]
            running_mean *= 1 - momentum
            running_mean += momentum * mean.reshape(-1)
            running_var *= 1 - momentum
            running_var += momentum * var.reshape(-1) * (count / max(count - 1, 1))
    else:
        mean, var = running_mean.reshape(param_shape), running_var.reshape(param_shape)
    return _normalize_affine(x, weight, bias, mean, var, eps, stat_axes, param_shape, training, "batch_norm")


def layer_norm(
    x: Tensor,
    normalized_shape: tuple[int, ...],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the last len(normalized_shape) axes of each example, like torch's F.layer_norm."""
    stat_axes = normalize_axes(range(-len(normalized_shape), 0), x.ndim)
    mean = x.data.mean(axis=stat_axes, keepdims=True)
    var = x.data.var(axis=stat_axes, keepdims=True)
    shape = tuple(normalized_shape)
    return _normalize_affine(x, weight, bias, mean, var, eps, stat_axes, shape, True, "layer_norm")
