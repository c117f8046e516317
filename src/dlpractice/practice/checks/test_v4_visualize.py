"""Checks of lab v4: Grad-CAM by hand equals captum's LayerGradCam, upsampled bilinearly to the input."""

from __future__ import annotations

import pytest
import torch
from captum.attr import LayerAttribution, LayerGradCam

from dlpractice.practice.checks.support import assert_close


class FlatHeadCNN(torch.nn.Module):
    """Two conv layers and a linear layer over the flattened maps. Unlike lab v4's net (global average
    pooling, where every position of a map gets the same gradient), the gradients vary over positions,
    so weighing by their mean is not the same as weighing by each one."""

    def __init__(self, side: int, n_classes: int = 10):
        super().__init__()
        self.features = torch.nn.Sequential(
            torch.nn.Conv2d(1, 4, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(4, 6, 3, padding=1),
            torch.nn.ReLU(),
        )
        self.cam_layer = self.features[-1]
        self.head = torch.nn.Linear(6 * (side // 2) ** 2, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        return self.head(self.features(x).flatten(1)), None


def captum_grad_cam(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    forward = lambda images: model(images)[0]  # noqa: E731  (logits of a `logits, loss` model)
    cam = LayerGradCam(forward, model.cam_layer).attribute(x, target=target, relu_attributions=True)
    return LayerAttribution.interpolate(cam, tuple(x.shape[2:]), interpolate_mode="bilinear")


@pytest.mark.exercise("v4.1")
def test_grad_cam_matches_captum(impl) -> None:
    """Maps weighted by their spatially averaged gradient, summed, ReLU'd, upsampled: captum's numbers."""
    torch.manual_seed(0)
    model = FlatHeadCNN(28).eval()
    x, target = torch.rand(3, 1, 28, 28), torch.tensor([2, 5, 9])
    got = impl.grad_cam(model, model.cam_layer, x, target)
    assert isinstance(got, torch.Tensor) and got.shape == (3, 1, 28, 28), (
        f"Grad-CAM should be one map per image at the input's size, (3, 1, 28, 28); got "
        f"{tuple(got.shape) if isinstance(got, torch.Tensor) else type(got).__name__}"
    )
    assert got.min() >= 0, "Grad-CAM keeps only what speaks for the class: apply a ReLU to the weighted sum"
    want = captum_grad_cam(model, x, target)
    scale = float(want.detach().abs().max())
    assert_close(
        got.detach() / scale,
        want.detach() / scale,
        "each map should be weighted by the mean of its gradient over positions (global average pooling), "
        "then summed over maps, ReLU'd and upsampled bilinearly, as captum's LayerGradCam",
        atol=1e-5,
        rtol=1e-5,
    )


@pytest.mark.exercise("v4.1")
def test_grad_cam_follows_the_target_class(impl) -> None:
    """Each class its own map (the gradient of the target's score only), at any input size."""
    torch.manual_seed(1)
    model = FlatHeadCNN(16).eval()
    x = torch.rand(2, 1, 16, 16)  # any size: the upsampling goes to the input's own height and width
    lab_net = impl.SmallCNN(widths=(4, 6, 8)).eval()  # and the lab's own net
    cases = ((model, torch.tensor([0, 0])), (model, torch.tensor([7, 3])), (lab_net, torch.tensor([1, 4])))
    for net, target in cases:
        got = impl.grad_cam(net, net.cam_layer, x, target)
        want = captum_grad_cam(net, x, target)
        assert got.shape == (2, 1, 16, 16), "upsample to the input's height and width, not a fixed 28x28"
        scale = float(want.detach().abs().max())
        assert_close(
            got.detach() / scale,
            want.detach() / scale,
            f"for classes {target.tolist()} the map should come from those classes' scores only",
            atol=1e-5,
            rtol=1e-5,
        )
