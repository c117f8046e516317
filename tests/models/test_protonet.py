"""models/protonet.py: the prototypical loss against torch's cdist and cross-entropy, the nearest class
mean and the 1-NN on pixels against scikit-learn's, episodes, the confidence interval against SciPy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlpractice.models.protonet import (
    ConvEncoder,
    Episode,
    episode_accuracy,
    labelled_split,
    mean_and_interval,
    nearest_mean_predict,
    pixel_nearest_neighbour,
    prototypical_loss,
    sample_episode,
    train_protonet,
)


def test_prototypical_loss_is_cross_entropy_of_squared_distances_to_class_means() -> None:
    g = torch.Generator().manual_seed(0)
    support, query = torch.randn(12, 6, generator=g), torch.randn(7, 6, generator=g)
    support_y = torch.tensor([0, 1, 2] * 4)
    query_y = torch.tensor([2, 0, 1, 1, 0, 2, 2])
    prototypes = torch.stack([support[support_y == c].mean(0) for c in range(3)])
    expected_logits = -(torch.cdist(query, prototypes) ** 2)
    logits, loss = prototypical_loss(support, support_y, query, query_y)
    torch.testing.assert_close(logits, expected_logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(loss, F.cross_entropy(expected_logits, query_y), atol=1e-5, rtol=1e-5)


def test_nearest_class_mean_equals_scikit_learn_nearest_centroid() -> None:
    from sklearn.neighbors import NearestCentroid

    rng = np.random.default_rng(0)
    support, query = rng.normal(size=(25, 8)), rng.normal(size=(40, 8))
    support_y = np.repeat(np.arange(5), 5)
    expected = NearestCentroid().fit(support, support_y).predict(query)
    got = nearest_mean_predict(torch.tensor(support), torch.tensor(support_y), torch.tensor(query))
    assert (got.numpy() == expected).all()


def test_pixel_nearest_neighbour_equals_scikit_learn_one_nn() -> None:
    from sklearn.neighbors import KNeighborsClassifier

    g = torch.Generator().manual_seed(1)
    episode = Episode(
        torch.rand(10, 1, 28, 28, generator=g),
        torch.arange(5).repeat_interleave(2),
        torch.rand(15, 1, 28, 28, generator=g),
        torch.arange(5).repeat_interleave(3),
    )
    reference = KNeighborsClassifier(1).fit(episode.support.flatten(1).numpy(), episode.support_y.numpy())
    expected = reference.predict(episode.query.flatten(1).numpy())
    assert (pixel_nearest_neighbour(episode).numpy() == expected).all()
    assert episode_accuracy(pixel_nearest_neighbour, episode) == pytest.approx(
        (expected == episode.query_y.numpy()).mean()
    )


def test_episode_draws_disjoint_support_and_queries_of_n_classes() -> None:
    by_class = [
        torch.full((10, 1, 28, 28), float(c)) + torch.arange(10.0)[:, None, None, None] / 100
        for c in range(8)
    ]
    episode = sample_episode(by_class, ways=5, shots=2, queries=3, rng=np.random.default_rng(0))
    assert episode.support.shape == (10, 1, 28, 28) and episode.query.shape == (15, 1, 28, 28)
    assert episode.support_y.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4]
    support_class = episode.support[:, 0, 0, 0].floor()
    query_class = episode.query[:, 0, 0, 0].floor()
    for label in range(5):  # one source class per episode label, the same for support and queries
        assert support_class[episode.support_y == label].unique().numel() == 1
        assert set(query_class[episode.query_y == label].tolist()) == set(
            support_class[episode.support_y == label].tolist()
        )
    assert support_class.unique().numel() == 5
    seen = set(episode.support[:, 0, 0, 0].tolist())
    assert not seen & set(episode.query[:, 0, 0, 0].tolist())  # no image is both support and query


def test_interval_is_the_normal_95_percent_interval_of_the_mean() -> None:
    from scipy import stats

    values = np.random.default_rng(0).uniform(size=200)
    mean, half = mean_and_interval(list(values))
    low, high = stats.norm.interval(0.95, loc=values.mean(), scale=stats.sem(values))
    assert mean == pytest.approx(values.mean())
    assert half == pytest.approx((high - low) / 2, rel=1e-3)  # 1.96 against the exact 1.95996


def test_labelled_split_keeps_a_share_of_every_class_for_validation() -> None:
    sets = [torch.full((10, 1, 2, 2), float(c)) for c in range(3)]
    (train, train_y), (val, val_y) = labelled_split(sets, 0.2)
    assert len(train) == 24 and len(val) == 6
    assert (train[:, 0, 0, 0] == train_y).all() and (val[:, 0, 0, 0] == val_y).all()


def test_a_few_episodes_of_training_lower_the_loss() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(6, 1, 28, 28, generator=g)
    by_class = [centres[c] + 0.3 * torch.randn(12, 1, 28, 28, generator=g) for c in range(6)]
    losses = train_protonet(ConvEncoder(8), by_class, ways=3, shots=2, queries=4, steps=30, lr=1e-2, seed=0)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])
    assert ConvEncoder(8)(torch.zeros(2, 1, 28, 28)).shape == (2, 8)
