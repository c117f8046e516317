"""The Frechet distance by hand (metrics/fid.py) against torchmetrics' FrechetInceptionDistance, both
given the same small feature network and the same images."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance

from dlpractice.metrics.fid import class_entropy, fid, frechet_distance, gaussian_stats


def feature_net() -> nn.Module:
    """A fixed random conv net from (N, 1, 28, 28) images to (N, 12) features, with a dead (all-zero) unit."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 5, stride=3), nn.Tanh(), nn.Flatten(), nn.Linear(6 * 8 * 8, 12))
    with torch.no_grad():
        net[-1].weight[3].zero_()
        net[-1].bias[3].zero_()  # a feature that never varies: a singular covariance
    net.num_features = 12  # else torchmetrics probes the net with an RGB 299x299 image
    return net.eval()


def images(n: int, seed: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(n, 1, 28, 28, generator=gen) * 2 - 1) * 0.8 + shift


@pytest.mark.parametrize("shift", [0.0, 0.3])
def test_fid_matches_torchmetrics_with_the_same_feature_network(shift: float) -> None:
    net = feature_net()
    real, fake = images(300, 1), images(200, 2, shift)
    reference = FrechetInceptionDistance(feature=net)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    with torch.no_grad():
        ours = fid(net(real).numpy(), net(fake).numpy())
    assert ours == pytest.approx(float(reference.compute()), rel=1e-4, abs=1e-6)


def test_distance_is_zero_for_one_gaussian_and_adds_the_squared_mean_shift() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(size=(500, 4)) @ rng.normal(size=(4, 4))
    mu, sigma = gaussian_stats(a)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0, abs=1e-8)
    shift = np.array([1.0, -2.0, 0.0, 0.5])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift)
    # isotropic Gaussians N(0, I) and N(0, 4 I) in 4-D: Tr(I + 4I - 2 * 2I) = 4
    assert frechet_distance(np.zeros(4), np.eye(4), np.zeros(4), 4 * np.eye(4)) == pytest.approx(4)


def test_bad_features_are_one_line_errors() -> None:
    with pytest.raises(ValueError, match="N >= 2"):
        gaussian_stats(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        gaussian_stats(np.array([[0.0, np.nan], [1.0, 2.0]]))


def test_class_entropy_is_ln_k_for_an_even_spread_and_zero_for_a_collapse() -> None:
    assert class_entropy(np.arange(100) % 10, 10) == pytest.approx(math.log(10))
    assert class_entropy(np.full(50, 7), 10) == 0
    assert class_entropy(np.array([0, 0, 1, 1]), 10) == pytest.approx(math.log(2))
