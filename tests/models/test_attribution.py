"""The hand-written attribution methods against captum on the same model and inputs, and their own maths."""

from __future__ import annotations

import copy

import pytest
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency

from dlpractice.models import attribution as attr
from dlpractice.practice.checks.test_v4_visualize import FlatHeadCNN

# the bar for the deterministic methods, relative to the largest attribution: an untrained net's
# gradients are ~1e-4, so an absolute 1e-5 would let a 10 % error through
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def setup() -> tuple[attr.SmallCNN, torch.Tensor, torch.Tensor]:
    """An untrained (seeded) CNN, four 28x28 images and a class each: the methods need no training."""
    torch.manual_seed(0)
    model = attr.SmallCNN(widths=(6, 8, 12)).eval()
    x = torch.rand(4, 1, 28, 28)
    return model, x, torch.tensor([0, 3, 7, 9])


def largest_difference(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    """max |ours - theirs| / max |theirs|, for maps of the same shape (theirs not all zero)."""
    assert ours.shape == theirs.shape
    scale = float(theirs.detach().abs().max())
    assert scale > 0, "comparing with an all-zero map proves nothing"
    return float((ours.detach() - theirs.detach()).abs().max()) / scale


def test_saliency_is_captums(setup) -> None:
    model, x, target = setup
    forward = attr.logits_of(model)
    theirs = Saliency(forward).attribute(x.clone().requires_grad_(), target=target)
    assert largest_difference(attr.saliency(forward, x, target), theirs) <= TOLERANCE


def test_smoothgrad_with_the_same_noise_is_captums(setup) -> None:
    model, x, target = setup
    forward = attr.logits_of(model)
    torch.manual_seed(5)
    theirs = NoiseTunnel(Saliency(forward)).attribute(
        x.clone().requires_grad_(), nt_type="smoothgrad", nt_samples=6, stdevs=0.2, target=target
    )
    ours = attr.smoothgrad(forward, x, target, 6, 0.2, torch.Generator().manual_seed(5))
    assert largest_difference(ours, theirs) <= TOLERANCE
    other_noise = attr.smoothgrad(forward, x, target, 6, 0.2, torch.Generator().manual_seed(6))
    assert largest_difference(other_noise, theirs) > 0.05  # the noise matters: the match is not by accident


@pytest.mark.parametrize("method", ["gausslegendre", "riemann_trapezoid"])
def test_integrated_gradients_are_captums_and_complete(setup, method: str) -> None:
    model, x, target = setup
    forward = attr.logits_of(model)
    ours = attr.integrated_gradients(forward, x, target, 0.0, 24, method)
    theirs = IntegratedGradients(forward).attribute(
        x.clone().requires_grad_(), baselines=0.0, target=target, n_steps=24, method=method
    )
    assert largest_difference(ours, theirs) <= TOLERANCE
    # completeness: the attributions add up to score(x) - score(baseline), up to the quadrature's error
    if method == "gausslegendre":  # ReLU kinks keep it from being exact; 64 points get within 2 %
        with torch.no_grad():
            gap = attr.target_scores(forward, x, target) - attr.target_scores(
                forward, torch.zeros_like(x), target
            )
        total = attr.integrated_gradients(forward, x, target, 0.0, 64, method).sum((1, 2, 3))
        torch.testing.assert_close(total, gap, atol=0.02 * gap.abs().max().item(), rtol=0)


@pytest.mark.parametrize(("window", "stride"), [(4, 2), (5, 3)])
def test_occlusion_is_captums(setup, window: int, stride: int) -> None:
    """(5, 3) does not tile 28 pixels: the last window hangs over the edge, as in captum."""
    model, x, target = setup
    forward = attr.logits_of(model)
    theirs = Occlusion(forward).attribute(
        x,
        sliding_window_shapes=(1, window, window),
        strides=(1, stride, stride),
        baselines=0.0,
        target=target,
    )
    assert largest_difference(attr.occlusion(forward, x, target, window, stride), theirs) <= TOLERANCE


@pytest.mark.parametrize("head", ["pooled", "flat"])
def test_grad_cam_is_captums_layer_grad_cam_upsampled(setup, head: str) -> None:
    """On the lab's net (global average pooling: one gradient per map) and on a flattening head, where
    each position has its own gradient and their mean is what Grad-CAM weighs by."""
    model, x, target = setup
    if head == "flat":
        torch.manual_seed(2)
        model = FlatHeadCNN(28).eval()
    cam = LayerGradCam(attr.logits_of(model), model.cam_layer).attribute(
        x, target=target, relu_attributions=True
    )
    theirs = LayerAttribution.interpolate(cam, (28, 28), interpolate_mode="bilinear")
    ours = attr.grad_cam(model, model.cam_layer, x, target)
    assert ours.shape == (4, 1, 28, 28)
    assert largest_difference(ours, theirs) <= TOLERANCE


def test_feature_maps_and_filters(setup) -> None:
    model, x, _ = setup
    relus = [m for m in model.features if isinstance(m, torch.nn.ReLU)]
    maps = attr.feature_maps(model, {"b1": relus[0], "b3": relus[2]}, x)
    assert maps["b1"].shape == (4, 6, 28, 28) and maps["b3"].shape == (4, 12, 7, 7)
    assert torch.equal(maps["b1"], torch.relu(model.features[0](x)))  # the hook saw the layer's real output
    filters = attr.first_layer_filters(model)
    assert filters.shape == (6, 1, 5, 5)
    assert torch.allclose(filters.amin((1, 2, 3)), torch.zeros(6)) and torch.allclose(
        filters.amax((1, 2, 3)), torch.ones(6)
    )
    assert not model.features[0].weight.grad_fn and not any(m._forward_hooks for m in relus)  # hooks removed


def test_randomised_weights_change_the_grad_cam(setup) -> None:
    model, x, target = setup
    random_model = attr.randomize_weights(copy.deepcopy(model), seed=1)
    assert not torch.equal(random_model.features[0].weight, model.features[0].weight)
    before = attr.grad_cam(model, model.cam_layer, x, target)
    after = attr.grad_cam(random_model, random_model.cam_layer, x, target)
    assert largest_difference(after, before) > 0.1


def test_path_points_weights_sum_as_captums() -> None:
    alphas, weights = attr.path_points(10, "gausslegendre")
    assert float(weights.sum()) == pytest.approx(1.0) and alphas.min() > 0 and alphas.max() < 1
    alphas, weights = attr.path_points(10, "riemann_trapezoid")
    assert alphas[0] == 0 and alphas[-1] == 1 and float(weights.sum()) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="unknown integration method"):
        attr.path_points(10, "simpson")
