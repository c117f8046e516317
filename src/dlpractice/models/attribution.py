"""Looking inside a CNN: a small digit CNN and the attribution methods of lab v4, written by hand.

Every method answers "which input pixels made the network say class c?" for a batch of images (B, C, H, W)
and returns a map of the same shape (Grad-CAM: (B, 1, H, W)):

- vanilla saliency (Simonyan et al., 2013): |d score_c / d x|;
- SmoothGrad (Smilkov et al., 2017): the mean saliency over n copies of x with Gaussian noise added;
- integrated gradients (Sundararajan et al., 2017): (x - x0) times the mean gradient along the straight
  path from a baseline x0 to x, as a quadrature (Riemann trapezoid or Gauss-Legendre);
- occlusion (Zeiler & Fergus, 2014): how much the score drops when a window is replaced by a baseline,
  averaged over the windows that cover each pixel;
- Grad-CAM (Selvaraju et al., 2017): a convolutional layer's maps weighted by their mean gradient,
  ReLU'd and upsampled (bilinear) to the input size.

Each is checked against captum on the same model and inputs (tests/models/test_attribution.py), with
captum's conventions: the saliency is the absolute gradient, SmoothGrad averages absolute gradients and
draws its noise as captum does (one normal draw of shape (B * n, ...), copies of an image side by side).
`feature_maps` and `first_layer_filters` are what the lab draws of the network itself.
Simplified: one target class per image, a scalar baseline, no batching of the many forward passes.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

Forward = Callable[[torch.Tensor], torch.Tensor]  # images (B, C, H, W) -> logits (B, K)


class SmallCNN(nn.Module):
    """Three conv blocks (5x5, 3x3, 3x3; two 2x2 max-pools), global average pooling, a linear layer.

    `features` is the backbone (what transfer learning reuses), `head` the classifier; `cam_layer` is
    the last convolution's ReLU (7x7 maps for a 28x28 input), whose maps Grad-CAM weighs. With average
    pooling before the linear layer, Grad-CAM is CAM (Zhou et al., 2016). A head over the flattened maps
    learned faster here (95 % of MNIST-5k's test digits after 200 steps against 82 %), but its mean
    gradients often cancel: Grad-CAM was all zero for 11 of 16 digits."""

    def __init__(self, n_classes: int = 10, in_channels: int = 1, widths: tuple[int, ...] = (16, 32, 64)):
        super().__init__()
        c1, c2, c3 = widths
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 14x14
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 7x7
            nn.Conv2d(c2, c3, 3, padding=1),
            nn.ReLU(),
        )
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c3, n_classes))

    @property
    def cam_layer(self) -> nn.Module:
        return self.features[-1]

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.features(x))  # (B, K)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


def logits_of(model: nn.Module) -> Forward:
    """The forward function the methods (and captum) call: the logits of a `logits, loss` model."""
    return lambda x: model(x)[0]


def target_scores(forward: Forward, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Each image's logit of its target class: (B,)."""
    return forward(x).gather(1, target[:, None])[:, 0]


def input_gradient(forward: Forward, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d score_target / d x for each image (B, C, H, W); images do not interact, so one backward does all."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(target_scores(forward, x, target).sum(), x)
    return grad


def saliency(forward: Forward, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Vanilla saliency: the absolute input gradient (B, C, H, W)."""
    return input_gradient(forward, x, target).abs()


def smoothgrad(
    forward: Forward,
    x: torch.Tensor,
    target: torch.Tensor,
    n_samples: int = 25,
    sigma: float = 0.15,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SmoothGrad: the mean saliency of n noisy copies of each image, noise N(0, sigma^2) per pixel."""
    noise = torch.randn((len(x) * n_samples, *x.shape[1:]), generator=generator) * sigma  # (B*n, C, H, W)
    noisy = x.repeat_interleave(n_samples, dim=0) + noise  # image b's copies are rows b*n .. b*n + n-1
    grads = saliency(forward, noisy, target.repeat_interleave(n_samples))
    return grads.reshape(len(x), n_samples, *x.shape[1:]).mean(1)


def path_points(n_steps: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Where along the path (alphas in [0, 1]) the gradient is taken and each point's weight."""
    if method == "riemann_trapezoid":
        alphas = torch.linspace(0, 1, n_steps, dtype=torch.float64)
        weights = torch.full((n_steps,), 1 / n_steps, dtype=torch.float64)
        weights[[0, -1]] /= 2  # the end points count half (as captum does: the weights sum to 1 - 1/n)
        return alphas, weights
    if method == "gausslegendre":  # nodes and weights of [-1, 1], moved to [0, 1]
        nodes, weights = np.polynomial.legendre.leggauss(n_steps)
        return torch.from_numpy(0.5 * (1 + nodes)), torch.from_numpy(0.5 * weights)
    raise ValueError(f"unknown integration method {method!r}; use riemann_trapezoid or gausslegendre")


def integrated_gradients(
    forward: Forward,
    x: torch.Tensor,
    target: torch.Tensor,
    baseline: float = 0.0,
    n_steps: int = 32,
    method: str = "gausslegendre",
) -> torch.Tensor:
    """(x - x0) * sum_k w_k grad(x0 + a_k (x - x0)): the attributions add up to score(x) - score(x0)."""
    alphas, weights = path_points(n_steps, method)
    x0 = torch.full_like(x, baseline)
    total = torch.zeros_like(x)
    for alpha, weight in zip(alphas.tolist(), weights.tolist()):
        total += weight * input_gradient(forward, x0 + alpha * (x - x0), target)
    return (x - x0) * total


@torch.no_grad()
def occlusion(
    forward: Forward, x: torch.Tensor, target: torch.Tensor, window: int = 4, stride: int = 2, baseline=0.0
) -> torch.Tensor:
    """Score drop when a window x window square (all channels) is set to `baseline`, per pixel the mean
    over the windows covering it. Windows start every `stride` pixels until one reaches the edge; the
    last may hang over it (cut there), so every pixel is covered (captum's placement)."""
    _, _, height, width = x.shape
    reference = target_scores(forward, x, target)  # (B,)
    drops, covered = torch.zeros_like(x), torch.zeros_like(x[:1])
    for top in range(0, height - window + stride, stride):
        for left in range(0, width - window + stride, stride):
            occluded = x.clone()
            occluded[:, :, top : top + window, left : left + window] = baseline
            drop = reference - target_scores(forward, occluded, target)  # (B,)
            drops[:, :, top : top + window, left : left + window] += drop[:, None, None, None]
            covered[:, :, top : top + window, left : left + window] += 1
    return drops / covered


def grad_cam(model: nn.Module, layer: nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Grad-CAM of `layer`'s output for each image's target class, upsampled to the input: (B, 1, H, W)."""
    captured = {}
    hook = layer.register_forward_hook(lambda module, args, output: captured.update(maps=output))
    try:
        x = x.detach().requires_grad_(True)  # so the graph reaches the layer even if it is the first
        scores = target_scores(logits_of(model), x, target)  # (B,)
    finally:
        hook.remove()
    maps = captured["maps"]  # (B, K, h, w)
    # BEGIN EXERCISE v4.1: weigh each map by its mean gradient, sum over maps, ReLU, upsample to (H, W)
    (grads,) = torch.autograd.grad(scores.sum(), maps)  # (B, K, h, w)
    weights = grads.mean(dim=(2, 3), keepdim=True)  # (B, K, 1, 1): global-average-pooled gradients
    cam = F.relu((weights * maps).sum(1, keepdim=True))  # (B, 1, h, w)
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear")  # (B, 1, H, W)
    # END EXERCISE


@torch.no_grad()
def feature_maps(model: nn.Module, layers: dict[str, nn.Module], x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The output of each named layer for images x: name -> (B, K, h, w)."""
    captured: dict[str, torch.Tensor] = {}
    hooks = [
        layer.register_forward_hook(lambda module, args, output, name=name: captured.update({name: output}))
        for name, layer in layers.items()
    ]
    try:
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return captured


def first_layer_filters(model: nn.Module) -> torch.Tensor:
    """The first convolution's kernels (K, C, k, k), each scaled to [0, 1] for drawing."""
    conv = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    w = conv.weight.detach()
    low = w.amin(dim=(1, 2, 3), keepdim=True)
    high = w.amax(dim=(1, 2, 3), keepdim=True)
    return (w - low) / (high - low).clamp(min=1e-12)


def randomize_weights(model: nn.Module, seed: int) -> nn.Module:
    """The model with every conv and linear layer re-initialised (the 'model randomisation' sanity check of
    Adebayo et al., 2018): a faithful map must change; one that does not only shows the input's edges."""
    torch.manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            module.reset_parameters()
    return model
