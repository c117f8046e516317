"""A model's parameters, FLOPs and training memory, predicted by formula and measured on the model (lab p5).

Predicted: closed forms from the sizes alone (d, layers, vocabulary, sequence length, batch), per layer type
for parameters and FLOPs, per model for the activations saved for backward (which tensors each layer keeps
is read off PyTorch's autograd, see `gpt_saved_bytes`). Measured: `sum(p.numel())`, torch's
`FlopCounterMode` (metrics/flops.py counts the same products layer by layer with hooks; this module predicts
them without running the model), the bytes of the tensors autograd saves (a `saved_tensors_hooks` pack
hook, unique storages, parameters left out), and the bytes of the gradients and the optimiser's state after
one step. FLOPs follow FlopCounterMode's convention: 2 per multiply-add, matrix products and convolutions
only, no bias. Simplified: activations are the tensors saved for backward, not the allocator's peak (on CPU
there is no `torch.cuda.max_memory_allocated`); temporaries freed during forward are not counted.
"""

from __future__ import annotations

import contextlib
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.checkpoint import checkpoint
from torch.utils.flop_counter import FlopCounterMode

from dlpractice.models.convnets import conv_output_size
from dlpractice.models.gpt import GPTConfig

OPTIMISER_STATES = {"sgd": 0, "momentum": 1, "adam": 2}  # values kept per parameter besides the weight
INDEX_BYTES = 8  # token ids, targets and max-pool indices are int64
LOSS_BYTES = 4  # lm_loss and F.cross_entropy work in float32 whatever the model's dtype


# ---------------------------------------------------------------- parameters, per layer type
def linear_params(d_in: int, d_out: int, bias: bool = True) -> int:
    return d_in * d_out + (d_out if bias else 0)


def conv2d_params(c_in: int, c_out: int, kernel: int, groups: int = 1, bias: bool = True) -> int:
    return c_out * (c_in // groups) * kernel * kernel + (c_out if bias else 0)


def norm_params(d: int, bias: bool = True) -> int:
    """LayerNorm or BatchNorm over d features: a scale (and a shift) per feature."""
    return d * (2 if bias else 1)


def gpt_block_params(d: int, bias: bool = False) -> int:
    """Parameters of one pre-LN GPT block of width d: attention (qkv + output projection), a 4d MLP, two
    LayerNorms. 12 d^2 + 2 d without biases (models/gpt.py), 12 d^2 + 13 d with them (GPT-2)."""
    # BEGIN EXERCISE p5.1: the qkv and output projections, the two MLP layers, the two LayerNorms
    attention = linear_params(d, 3 * d, bias) + linear_params(d, d, bias)
    mlp = linear_params(d, 4 * d, bias) + linear_params(4 * d, d, bias)
    return attention + mlp + 2 * norm_params(d, bias)
    # END EXERCISE


def gpt_params(c: GPTConfig) -> int:
    """Token and position embeddings, the blocks, the final LayerNorm; the head is tied to the token
    embedding, so it adds nothing."""
    return (c.vocab_size + c.block_size) * c.n_embd + c.n_layer * gpt_block_params(c.n_embd) + c.n_embd


def module_params(module: nn.Module) -> int:
    """One leaf module's parameters from its hyper-parameters (in_features, kernel_size, ...), not its
    tensors: the formula per layer type."""
    if isinstance(module, nn.Linear):
        return linear_params(module.in_features, module.out_features, module.bias is not None)
    if isinstance(module, nn.Conv2d):
        kernel = module.kernel_size[0]
        return conv2d_params(
            module.in_channels, module.out_channels, kernel, module.groups, module.bias is not None
        )
    if isinstance(module, nn.LayerNorm):
        return (
            norm_params(module.normalized_shape[0], module.bias is not None)
            if module.elementwise_affine
            else 0
        )
    if isinstance(module, nn.BatchNorm2d | nn.BatchNorm1d):
        return norm_params(module.num_features) if module.affine else 0
    if isinstance(module, nn.Embedding):
        return module.num_embeddings * module.embedding_dim
    return 0  # activations, pooling, dropout, flatten


def predicted_params(model: nn.Module) -> int:
    """The sum of the per-layer formulas over the leaf modules (a model without tied weights)."""
    return sum(module_params(m) for m in model.modules() if not list(m.children()))


# ---------------------------------------------------------------- FLOPs
def layer_forward_flops(layer: nn.Linear | nn.Conv2d, input_shape: tuple[int, ...]) -> int:
    """Forward FLOPs of a Linear layer on input (..., d_in) or a Conv2d on (B, C_in, H, W), from the input's
    shape alone: 2 per multiply-add of the weight, bias not counted (FlopCounterMode's convention)."""
    # BEGIN EXERCISE p5.2: rows x d_in x d_out multiply-adds; a conv: (C_in / groups) k_h k_w per output
    if isinstance(layer, nn.Linear):
        rows = torch.Size(input_shape[:-1]).numel()
        return 2 * rows * layer.in_features * layer.out_features
    batch, _, height, width = input_shape
    (kh, kw), (sh, sw), (ph, pw) = layer.kernel_size, layer.stride, layer.padding
    h_out = conv_output_size(height, kh, sh, ph, layer.dilation[0])
    w_out = conv_output_size(width, kw, sw, pw, layer.dilation[1])
    macs_per_output = layer.in_channels // layer.groups * kh * kw
    return 2 * batch * layer.out_channels * h_out * w_out * macs_per_output
    # END EXERCISE


def next_shape(module: nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output shape of one leaf module of a feed-forward stack, by formula."""
    if isinstance(module, nn.Linear):
        return (*shape[:-1], module.out_features)
    if isinstance(module, nn.Conv2d):
        kernel, stride, padding = module.kernel_size[0], module.stride[0], module.padding[0]
        side = conv_output_size(shape[2], kernel, stride, padding)
        return (shape[0], module.out_channels, side, conv_output_size(shape[3], kernel, stride, padding))
    if isinstance(module, nn.MaxPool2d):
        k, s = module.kernel_size, module.stride
        return (*shape[:2], conv_output_size(shape[2], k, s), conv_output_size(shape[3], k, s))
    if isinstance(module, nn.Flatten):
        return (shape[0], torch.Size(shape[1:]).numel())
    return shape  # elementwise: activations, normalisation, dropout


def stack_forward_flops(model: nn.Module, input_shape: tuple[int, ...]) -> tuple[int, int]:
    """(forward FLOPs, those of the first matmul layer) of a model whose leaf modules run in the order they
    are registered (models/mlp.MLP, models/convnets.PlainCNN), shapes propagated by formula."""
    total, first, shape = 0, 0, input_shape
    for module in (m for m in model.modules() if not list(m.children())):
        if isinstance(module, nn.Linear | nn.Conv2d):
            flops = layer_forward_flops(module, shape)
            first, total = first or flops, total + flops
        shape = next_shape(module, shape)
    return total, first


def gpt_forward_flops(c: GPTConfig, batch: int, seq: int) -> int:
    """Per block: the 12 d^2 weights of the projections and the MLP, 2 FLOPs each per token; attention's
    scores Q K^T and weighted sum A V, 2 T d each per token (all T x T, the causal half included, as the
    math kernel computes them); then the tied head, 2 d V per token."""
    tokens, d = batch * seq, c.n_embd
    per_block = 2 * tokens * 12 * d * d + 2 * 2 * batch * seq * seq * d
    return c.n_layer * per_block + 2 * tokens * d * c.vocab_size


def gpt_checkpointed_train_flops(c: GPTConfig, batch: int, seq: int) -> int:
    """Training FLOPs with every block checkpointed: 3 x forward, plus each block's forward run again in
    backward, less its last Linear: non-reentrant checkpointing stops recomputing as soon as every tensor
    backward needs is back, and the MLP's output projection's result is not one of them."""
    forward, tokens, d = gpt_forward_flops(c, batch, seq), batch * seq, c.n_embd
    block = (forward - 2 * tokens * d * c.vocab_size) // c.n_layer
    return 3 * forward + c.n_layer * (block - 2 * tokens * 4 * d * d)


def counted_flops(step: Callable[[], object], math_attention: bool = True) -> int:
    """FlopCounterMode's total for `step()` (forward, or forward and backward). Attention runs on the math
    kernel unless told otherwise: FlopCounterMode has no formula for the CPU flash kernel (it counts 0)."""
    kernel = sdpa_kernel(SDPBackend.MATH) if math_attention else contextlib.nullcontext()
    with kernel, FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops()


def rel_error(predicted: float, measured: float) -> float:
    return abs(predicted - measured) / measured


def compute_optimal(n_params: float, gflops_per_s: float) -> tuple[float, float, float]:
    """(tokens, FLOPs, seconds at `gflops_per_s`) of training N parameters compute-optimally: about 20
    tokens a parameter (Hoffmann et al., 2022, "Chinchilla"), 6 N D FLOPs."""
    tokens = 20 * n_params
    flops = 6 * n_params * tokens
    return tokens, flops, flops / (gflops_per_s * 1e9)


# ---------------------------------------------------------------- memory
def training_state_bytes(n_params: int, optimiser: str, bytes_per_value: int = 4) -> dict[str, int]:
    """Bytes of the weights, their gradients and the optimiser's state, which live for the whole run:
    SGD keeps nothing, momentum one velocity per weight, Adam two moments per weight."""
    # BEGIN EXERCISE p5.3: one copy of the weights, one of the gradients, OPTIMISER_STATES[...] more
    weights = n_params * bytes_per_value
    return {"weights": weights, "grads": weights, "optimiser": OPTIMISER_STATES[optimiser] * weights}
    # END EXERCISE


def make_optimiser(name: str, model: nn.Module) -> torch.optim.Optimizer:
    """One of OPTIMISER_STATES' optimisers over the model's parameters."""
    if name == "adam":
        return torch.optim.Adam(model.parameters(), lr=1e-4)
    return torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9 if name == "momentum" else 0.0)


def measured_state_bytes(model: nn.Module, optimiser: torch.optim.Optimizer) -> dict[str, int]:
    """After a step: the bytes of the parameters, their .grad and every tensor of the optimiser's state (Adam
    also keeps a 0-d `step` counter per parameter tensor: 4 bytes each, counted here, not in the formula)."""
    params = list(model.parameters())
    states = [t for state in optimiser.state.values() for t in state.values() if isinstance(t, torch.Tensor)]
    return {
        "weights": sum(p.nbytes for p in params),
        "grads": sum(p.grad.nbytes for p in params if p.grad is not None),
        "optimiser": sum(t.nbytes for t in states),
    }


def saved_bytes(model: nn.Module, forward: Callable[[], Any]) -> tuple[int, Any]:
    """(bytes of the tensors autograd saves for backward during `forward()`, what it returns). Each storage
    counts once (a layer's output saved by it and by the next layer is one tensor), parameters not at all."""
    weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
    storages: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            storages[storage.data_ptr()] = storage.nbytes()
        return tensor

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        loss = forward()
    return sum(storages.values()), loss


def mlp_saved_bytes(
    batch: int, n_in: int, width: int, depth: int, n_classes: int, value_bytes: int = 4
) -> int:
    """models/mlp.MLP (ReLU, no norm, no dropout) and cross-entropy: the input (kept by the first Linear),
    each ReLU's output (kept by the ReLU and by the next Linear, one tensor), the log-probabilities, the
    targets and the loss's 0-d weight total."""
    activations = batch * n_in + depth * batch * width
    return activations * value_bytes + batch * n_classes * LOSS_BYTES + batch * INDEX_BYTES + LOSS_BYTES


def plain_cnn_saved_bytes(
    batch: int, channels: int, side: int, width: int, hidden: int, n_classes: int
) -> int:
    """models/convnets.PlainCNN in training mode, float32: each stage's input (the image, then the
    first max-pool's output); per conv-BN-ReLU, the BN's input and
    the ReLU's output (the next conv's input) and four per-channel vectors (batch mean, inverse std, running
    mean and variance); per max-pool, int64 indices of the maxima; per dropout, its float mask and output
    (the next Linear's input); the hidden ReLU's output; the loss's log-probabilities and targets."""
    values, indices, size = 0, 0, side
    stage_input = batch * channels * side * side  # kept by the stage's first conv
    for c in (width, 2 * width):
        values += stage_input + 2 * (2 * batch * c * size * size + 4 * c)  # two conv-BN-ReLU per stage
        size = conv_output_size(size, 2, 2)
        indices += batch * c * size * size
        stage_input = batch * c * size * size
    flat = batch * 2 * width * size * size
    values += 2 * flat + 3 * batch * hidden + batch * n_classes
    return 4 * values + INDEX_BYTES * (indices + batch) + LOSS_BYTES


def gpt_saved_bytes(
    c: GPTConfig, batch: int, seq: int, value_bytes: int = 4, checkpointed: bool = False
) -> int:
    """models/gpt.GPT with CPU's fused attention, no dropout. Per block, in units of E = B T d values: the
    block's input and LayerNorm 1's output (the qkv projection's input), q k v (3E, one tensor), the
    attention's output (c_proj's input), the residual after attention and LayerNorm 2's output, the MLP's
    hidden layer before and after GELU (4E each): 16 E, plus each LayerNorm's mean and 1/std (B T each) and
    the attention's log-sum-exp (B heads T, float32). A checkpointed block keeps only its input (E) and
    recomputes the rest in backward. Then ln_f's input and output, the float32 log-probabilities (B T V),
    the int64 token ids, positions and targets."""
    tokens = batch * seq
    e = tokens * c.n_embd
    block = (
        e * value_bytes if checkpointed else (16 * e + 4 * tokens) * value_bytes + batch * c.n_head * seq * 4
    )
    head = (2 * e + 2 * tokens) * value_bytes + tokens * c.vocab_size * LOSS_BYTES
    ids = (2 * tokens + seq) * INDEX_BYTES + LOSS_BYTES
    return c.n_layer * block + head + ids


class Checkpointed(nn.Module):
    """A module whose activations are recomputed in backward instead of kept (torch.utils.checkpoint)."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return checkpoint(self.inner, x, use_reentrant=False)


def checkpoint_blocks(model: nn.Module) -> nn.Module:
    """Wrap each of a GPT's blocks in `Checkpointed`, in place (the weights are the same objects)."""
    model.blocks = nn.ModuleList(Checkpointed(block) for block in model.blocks)
    return model


def kv_cache_bytes(c: GPTConfig, batch: int, seq: int, value_bytes: int = 4) -> int:
    """Inference keeps every past token's key and value in every layer: 2 x layers x B x T x d values."""
    return 2 * c.n_layer * batch * seq * c.n_embd * value_bytes


@torch.no_grad()
def measured_kv_cache_bytes(model: nn.Module, idx: torch.Tensor) -> int:
    """Run `model` (models/gpt.GPT) on idx (B, T) and keep what a KV cache keeps: the key and value parts of
    each block's qkv projection, copied out as a cache holds them. The bytes they take."""
    cache: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: tuple, qkv: torch.Tensor) -> None:
        _, k, v = qkv.split(qkv.shape[-1] // 3, dim=-1)  # (B, T, d) each
        cache.extend((k.contiguous(), v.contiguous()))

    handles = [block.attn.c_attn.register_forward_hook(keep) for block in model.blocks]
    with contextlib.ExitStack() as stack:
        for handle in handles:
            stack.callback(handle.remove)
        model(idx)
    return sum(t.nbytes for t in cache)


# ---------------------------------------------------------------- time
def median_seconds(step: Callable[[], object], repeats: int) -> float:
    """Median wall time of `step()` after two warm-up calls."""
    for _ in range(2):
        step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def matmul_gflops(size: int, repeats: int) -> float:
    """GFLOP/s of a (size x size) @ (size x size) float32 matmul; the best size is this CPU's practical peak
    (a size whose matrices fit the caches beats a larger one, which waits on memory)."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    return 2 * size**3 / median_seconds(lambda: a @ b, max(repeats, 5)) / 1e9
