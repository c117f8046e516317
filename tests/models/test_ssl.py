"""models/ssl.py: NT-Xent against pytorch-metric-learning's, the k-NN vote against scikit-learn's, the probe
as one torch layer, and the random views."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.models.attribution import SmallCNN
from dlpractice.models.ssl import SimCLR, fit_probe, knn_predict, nt_xent, probe_as_linear, random_views


@pytest.mark.parametrize("temperature", [0.1, 0.5, 1.0])
def test_nt_xent_equals_pytorch_metric_learning(temperature: float) -> None:
    from pytorch_metric_learning.losses import NTXentLoss

    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(16, 8, generator=generator), torch.randn(16, 8, generator=generator)
    labels = torch.arange(16).repeat(2)  # view i and view i + 16 are one image's
    reference = NTXentLoss(temperature=temperature)(torch.cat([z1, z2]), labels)
    assert float(nt_xent(z1, z2, temperature)) == pytest.approx(float(reference), rel=1e-5)


def test_knn_equals_scikit_learn_cosine_neighbours() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(1)
    train_f, test_f, train_y = rng.normal(size=(200, 16)), rng.normal(size=(80, 16)), rng.integers(0, 10, 200)
    for k in (1, 10, 25):
        reference = KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(train_f, train_y)
        assert (knn_predict(train_f, train_y, test_f, k) == reference.predict(test_f)).all()


def test_the_probe_as_one_linear_layer_gives_the_same_scores() -> None:
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(120, 6)) * [1, 10, 0.1, 3, 1, 5] + 2, rng.integers(0, 3, 120)
    probe = fit_probe(x, y)
    layer = probe_as_linear(probe)
    with torch.no_grad():
        scores = layer(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    assert np.allclose(scores, probe.decision_function(x), atol=1e-4)


def test_views_at_strength_zero_are_the_images_and_differ_otherwise() -> None:
    x = torch.rand(4, 1, 28, 28)
    assert torch.allclose(random_views(x, torch.Generator().manual_seed(0), 0.0), x, atol=1e-5)
    a = random_views(x, torch.Generator().manual_seed(0), 1.0)
    b = random_views(x, torch.Generator().manual_seed(1), 1.0)
    assert a.shape == x.shape and not torch.allclose(a, b)
    assert torch.equal(a, random_views(x, torch.Generator().manual_seed(0), 1.0))  # seeded


def test_simclr_evaluates_the_same_views_every_time_and_trains_on_new_ones() -> None:
    torch.manual_seed(0)
    model = SimCLR(SmallCNN(widths=(4, 6, 8)).features, 8, projection_dim=5)
    x = torch.rand(6, 1, 28, 28)
    model.eval()
    with torch.no_grad():
        assert float(model(x)[1]) == float(model(x)[1])
        model.train()
        assert float(model(x)[1]) != float(model(x)[1])
    z, _ = model(x)
    assert z.shape == (6, 5)
