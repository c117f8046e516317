"""models/nerf.py and data/orbit_views.py: compositing against the closed form of a constant-density medium,
PSNR against scikit-image's and torchmetrics', the positional encoding, stratified samples, and the cameras
of the orbit views."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from dlpractice.data.orbit_views import BACKGROUND, look_at, orbit_cameras, render_views
from dlpractice.models.nerf import (
    RaySettings,
    TinyNeRF,
    compositing_weights,
    positional_encoding,
    psnr,
    render_image,
    render_rays,
    stratified_depths,
    train_nerf,
)


class ConstantMedium(nn.Module):
    """Density sigma and one colour everywhere."""

    def __init__(self, sigma: float, colour: tuple[float, float, float]):
        super().__init__()
        self.sigma, self.colour = sigma, torch.tensor(colour)

    def forward(self, points: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.full(points.shape[:-1], self.sigma), self.colour.expand(*points.shape[:-1], 3)


@pytest.mark.parametrize("sigma", [0.1, 1.0, 5.0])
def test_weights_of_a_constant_medium_are_the_closed_form_differences_of_exponentials(sigma: float) -> None:
    t = torch.sort(torch.rand(4, 16, generator=torch.Generator().manual_seed(0)) * 3, dim=1).values
    far = 3.5
    deltas = torch.cat([t[:, 1:] - t[:, :-1], far - t[:, -1:]], -1)
    weights = compositing_weights(torch.full_like(t, sigma), deltas)
    start, end = t - t[:, :1], torch.cat([t[:, 1:], torch.full_like(t[:, :1], far)], -1) - t[:, :1]
    expected = torch.exp(-sigma * start) - torch.exp(-sigma * end)  # light stopped between t_i and t_{i+1}
    torch.testing.assert_close(weights, expected, atol=1e-5, rtol=1e-4)


def test_rendering_a_constant_medium_mixes_its_colour_and_the_background_by_beer_lambert() -> None:
    sigma, near, far, samples = 0.7, 1.0, 4.0, 24
    origins = torch.zeros(5, 3)
    directions = torch.nn.functional.normalize(
        torch.randn(5, 3, generator=torch.Generator().manual_seed(1)), dim=1
    )
    rendered = render_rays(
        ConstantMedium(sigma, (0.2, 0.5, 0.9)), origins, directions, near, far, samples, 1.0
    )
    first = near + (far - near) / samples / 2  # bin centres: the first sample sits half a bin in
    opacity = 1 - math.exp(-sigma * (far - first))
    expected = torch.tensor([0.2, 0.5, 0.9]) * opacity + (1 - opacity) * 1.0
    torch.testing.assert_close(rendered, expected.expand(5, 3), atol=1e-5, rtol=1e-5)


def test_psnr_equals_scikit_image_and_torchmetrics() -> None:
    from skimage.metrics import peak_signal_noise_ratio
    from torchmetrics.image import PeakSignalNoiseRatio

    g = torch.Generator().manual_seed(0)
    truth = torch.rand(16, 16, 3, generator=g)
    rendered = (truth + 0.05 * torch.randn(16, 16, 3, generator=g)).clamp(0, 1)
    ours = psnr(rendered, truth)
    assert ours == pytest.approx(
        peak_signal_noise_ratio(truth.numpy(), rendered.numpy(), data_range=1.0), rel=1e-5
    )
    assert ours == pytest.approx(float(PeakSignalNoiseRatio(data_range=1.0)(rendered, truth)), rel=1e-5)


def test_positional_encoding_is_sines_and_cosines_of_doubling_frequencies() -> None:
    x = torch.tensor([[0.25, -0.5, 0.1]])
    encoded = positional_encoding(x, 3)
    assert encoded.shape == (1, 21)
    torch.testing.assert_close(encoded[0, :3], x[0])
    torch.testing.assert_close(
        encoded[0, 3 + 3 * 2 + 1], torch.sin(torch.tensor(4 * math.pi * -0.5))
    )  # k=2, y
    torch.testing.assert_close(encoded[0, 12], torch.cos(torch.tensor(math.pi * 0.25)))  # cos, k=0, x
    assert positional_encoding(x, 0) is x
    sigma, colour = TinyNeRF(3, 16)(torch.randn(7, 5, 3))
    assert sigma.shape == (7, 5) and (sigma >= 0).all() and colour.shape == (7, 5, 3)
    assert ((colour >= 0) & (colour <= 1)).all()


def test_stratified_depths_fall_one_in_each_bin() -> None:
    t = stratified_depths(100, 2.0, 6.0, 8, torch.Generator().manual_seed(0))
    bins = torch.floor((t - 2.0) / 0.5)
    assert (bins == torch.arange(8.0)).all()
    torch.testing.assert_close(stratified_depths(1, 2.0, 6.0, 8, None)[0], torch.arange(8.0) * 0.5 + 2.25)


def test_cameras_look_at_the_origin_and_views_show_objects_on_the_background() -> None:
    cameras = orbit_cameras(4, 3.2, np.random.default_rng(0))
    np.testing.assert_allclose(np.linalg.norm(cameras, axis=1), 3.2, rtol=1e-6)
    for camera in cameras:
        rotation = look_at(camera)
        np.testing.assert_allclose(rotation.T @ rotation, np.eye(3), atol=1e-6)
        np.testing.assert_allclose(camera + 3.2 * rotation[:, 2], 0, atol=1e-5)  # forward hits the origin
        assert rotation[1, 1] > 0  # the image's up points up in the world
    views = render_views(cameras, 16, seed=0)
    assert views.images.shape == views.directions.shape == views.origins.shape == (4, 16, 16, 3)
    np.testing.assert_allclose(np.linalg.norm(views.directions, axis=-1), 1, rtol=1e-5)
    background = (views.images == BACKGROUND).all(-1).mean()
    assert 0.2 < background < 0.95  # objects in the middle, background around them


def test_training_on_views_raises_held_out_psnr() -> None:
    cameras = orbit_cameras(6, 3.2, np.random.default_rng(0))
    views = render_views(cameras, 8, seed=0)
    arrays = [torch.from_numpy(a) for a in (views.origins, views.directions, views.images)]
    train = tuple(a[:5].reshape(-1, 3) for a in arrays)
    held_out = tuple(a[5:] for a in arrays)
    settings = RaySettings(1.6, 4.8, 8, BACKGROUND)
    torch.manual_seed(0)
    model = TinyNeRF(2, 32)
    before = psnr(render_image(model, held_out[0][0], held_out[1][0], settings), held_out[2][0])
    curve = train_nerf(model, train, held_out, settings, 60, 128, 1e-2, 30, seed=0)
    assert [step for step, _ in curve] == [30, 60]
    assert curve[-1][1] > before + 1
