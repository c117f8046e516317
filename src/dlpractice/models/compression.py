"""Making a trained classifier smaller: magnitude pruning, channel pruning, affine int8 and distillation.

Lab p3's from-scratch pieces sit at the top, each checked against the library that does the same job:
- the global magnitude-pruning mask (Han et al., 2015) vs torch.nn.utils.prune's global L1 pruning;
- affine (asymmetric) quantisation with a scale and a zero-point from the tensor's min and max vs
  torch.ao's MinMaxObserver and torch.quantize_per_tensor;
- Hinton et al.'s (2015) distillation loss vs the same formula written with F.kl_div and F.log_softmax.
Below them, what the lab builds with them: torch's pruning of a model's Conv2d and Linear weights,
structured pruning of PlainCNN's channels (a network with really fewer channels, so dense kernels do
less work), and a student wrapper that trains with a frozen teacher through the usual fit().
Simplified: one-shot pruning (no iterative schedule), one width for every stage, per-tensor qparams.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from dlpractice.models.convnets import PlainCNN, classify

# ---- from scratch ------------------------------------------------------------------------------------


def magnitude_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """One 0/1 mask per tensor (same shape) that zeroes the round(sparsity * N) weights of smallest
    magnitude among all N weights of all tensors together (global, not per layer)."""
    # BEGIN EXERCISE p3.1: the global magnitude-pruning masks at this sparsity
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])  # (N,)
    n_pruned = round(sparsity * magnitudes.numel())
    keep = torch.ones_like(magnitudes)
    if n_pruned > 0:
        smallest = torch.topk(magnitudes, n_pruned, largest=False).indices
        keep[smallest] = 0
    masks, start = [], 0
    for w in weights:
        masks.append(keep[start : start + w.numel()].view_as(w))
        start += w.numel()
    return masks
    # END EXERCISE


@dataclass
class AffineQuantised:
    """Integers q with x ≈ scale * (q - zero_point): the zero-point is the integer that stands for 0.0."""

    q: torch.Tensor  # int64 codes in [qmin, qmax]
    scale: float
    zero_point: int

    def dequantise(self) -> torch.Tensor:
        return self.scale * (self.q - self.zero_point).float()


def affine_quantise(x: torch.Tensor, qmin: int = -128, qmax: int = 127) -> AffineQuantised:
    """x to integers in [qmin, qmax] on the grid that spans [min(x, 0), max(x, 0)], as MinMaxObserver
    picks it: 0.0 is always exactly representable (zero padding, ReLU outputs), rounding half to even."""
    # BEGIN EXERCISE p3.2: scale and zero-point from the min and max, then round and clamp
    lo, hi = min(float(x.min()), 0.0), max(float(x.max()), 0.0)
    scale = max((hi - lo) / (qmax - qmin), torch.finfo(torch.float32).eps)
    zero_point = int(min(max(qmin - round(lo / scale), qmin), qmax))
    # times 1/scale (float32), as torch's kernels do: x / scale can round the other way at exact halves
    q = torch.clamp(torch.round(x * (1 / scale)) + zero_point, qmin, qmax).long()
    return AffineQuantised(q, scale, zero_point)
    # END EXERCISE


def distillation_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    targets: torch.Tensor,
    temperature: float = 4.0,
    alpha: float = 0.9,
) -> torch.Tensor:
    """alpha * T² * KL(softmax(teacher / T) || softmax(student / T)) + (1 - alpha) * cross-entropy(student,
    targets), the KL summed over classes and averaged over the batch. The T² keeps the soft term's
    gradients as large as the hard term's whatever the temperature (Hinton et al., 2015).
    Logits (B, C), targets (B,)."""
    # BEGIN EXERCISE p3.3: Hinton's distillation loss from the two sets of logits
    t = temperature
    log_p_student = student_logits / t - torch.logsumexp(student_logits / t, dim=1, keepdim=True)  # (B, C)
    log_p_teacher = teacher_logits / t - torch.logsumexp(teacher_logits / t, dim=1, keepdim=True)
    kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(1).mean()
    hard = F.cross_entropy(student_logits, targets)
    return alpha * t * t * kl + (1 - alpha) * hard
    # END EXERCISE


# ---- unstructured pruning with torch.nn.utils.prune ---------------------------------------------------


def prunable(model: nn.Module) -> list[tuple[nn.Module, str]]:
    """The weights magnitude pruning acts on: every Conv2d's and Linear's (not biases, not BatchNorm)."""
    return [(m, "weight") for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def prune_globally(model: nn.Module, sparsity: float) -> nn.Module:
    """Zero the smallest-magnitude `sparsity` of all prunable weights (torch's global L1 pruning). The
    mask stays attached (weight = weight_orig * weight_mask), so fine-tuning keeps the zeros at zero."""
    prune.global_unstructured(prunable(model), pruning_method=prune.L1Unstructured, amount=sparsity)
    return model


def make_permanent(model: nn.Module) -> nn.Module:
    """Fold each mask into its weight and drop the hooks: a plain model again, with zeros in its weights."""
    for module, name in prunable(model):
        if prune.is_pruned(module):
            prune.remove(module, name)
    return model


def weight_sparsity(model: nn.Module) -> float:
    """Share of the prunable weights that are exactly zero."""
    weights = [getattr(m, name) for m, name in prunable(model)]
    return float(sum((w == 0).sum() for w in weights) / sum(w.numel() for w in weights))


# ---- structured (channel) pruning of PlainCNN ---------------------------------------------------------


def strongest_channels(conv: nn.Conv2d, keep: int) -> torch.Tensor:
    """Indices (ascending) of the `keep` output channels whose filters have the largest L1 norm."""
    norms = conv.weight.detach().abs().sum(dim=(1, 2, 3))  # (C_out,)
    return torch.topk(norms, keep).indices.sort().values


@torch.no_grad()
def channel_pruned(model: PlainCNN, keep_fraction: float) -> PlainCNN:
    """A PlainCNN with round(width * keep_fraction) channels in the first stage (twice that in the second),
    its weights the strongest filters of `model`: each conv loses output channels, the next conv (or the
    head's first Linear) loses the matching inputs. Smaller tensors, so less work for dense kernels."""
    convs = [m for m in model.features.modules() if isinstance(m, nn.Conv2d)]
    norms = [m for m in model.features.modules() if isinstance(m, nn.BatchNorm2d)]
    linears = [m for m in model.head if isinstance(m, nn.Linear)]
    width = max(1, round(convs[0].out_channels * keep_fraction))
    side = round((linears[0].in_features / convs[-1].out_channels) ** 0.5) * 4  # two 2x2 max-pools
    dropout = next(m for m in model.head if isinstance(m, nn.Dropout)).p
    small = PlainCNN(
        convs[0].in_channels, side, linears[-1].out_features, width, linears[0].out_features, dropout
    )
    small_convs = [m for m in small.features.modules() if isinstance(m, nn.Conv2d)]
    small_norms = [m for m in small.features.modules() if isinstance(m, nn.BatchNorm2d)]
    kept_in = torch.arange(convs[0].in_channels)
    for conv, norm, new_conv, new_norm in zip(convs, norms, small_convs, small_norms):
        kept = strongest_channels(conv, new_conv.out_channels)
        new_conv.weight.copy_(conv.weight[kept][:, kept_in])  # (C_out', C_in', k, k)
        for name in ("weight", "bias", "running_mean", "running_var"):
            getattr(new_norm, name).copy_(getattr(norm, name)[kept])
        kept_in = kept
    pixels = linears[0].in_features // convs[-1].out_channels  # flatten() puts each channel's pixels together
    columns = (kept_in[:, None] * pixels + torch.arange(pixels)).flatten()
    small_linears = [m for m in small.head if isinstance(m, nn.Linear)]
    small_linears[0].weight.copy_(linears[0].weight[:, columns])
    small_linears[0].bias.copy_(linears[0].bias)
    small_linears[1].load_state_dict(linears[1].state_dict())
    return small


# ---- distillation through fit() -----------------------------------------------------------------------


class Distilled(nn.Module):
    """A student that trains on distillation_loss against a frozen teacher, with the `logits, loss =
    model(x, targets)` contract fit() expects. The teacher stays in eval mode (its BatchNorm statistics
    and dropout fixed) even while fit() puts the student in train mode."""

    def __init__(self, student: nn.Module, teacher: nn.Module, temperature: float, alpha: float):
        super().__init__()
        self.student, self.teacher = student, teacher.eval().requires_grad_(False)
        self.temperature, self.alpha = temperature, alpha

    def train(self, mode: bool = True) -> Distilled:
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.student(x)[0]  # (B, C)
        if targets is None:
            return classify(logits, None)
        with torch.no_grad():
            teacher_logits = self.teacher(x)[0]
        return logits, distillation_loss(logits, teacher_logits, targets, self.temperature, self.alpha)
