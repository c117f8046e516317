"""models/federated.py: FedAvg with one full-batch step on every client is centralised full-batch gradient
descent, the server's average against NumPy's weighted average, and the three ways to split the data."""

from __future__ import annotations

import copy

import numpy as np
import torch

from dlpractice.models.federated import (
    MLP,
    Client,
    average_weights,
    dirichlet_split,
    federated_round,
    iid_split,
    label_histogram,
    shard_split,
    train_centralised,
    train_federated,
)


def toy_data(n: int = 90, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 12, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_fedavg_with_one_full_batch_step_on_every_client_is_centralised_gradient_descent() -> None:
    x, y = toy_data()
    sizes = [10, 25, 40, 15]  # unequal clients: only the size-weighted average matches
    bounds = np.cumsum([0, *sizes])
    clients = [Client(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    torch.manual_seed(0)
    federated = MLP(hidden=16, n_in=12)
    central = copy.deepcopy(federated)
    optimizer = torch.optim.SGD(central.parameters(), lr=0.3)
    generator = torch.Generator().manual_seed(0)
    for _ in range(3):
        federated_round(federated, clients, fraction=1.0, epochs=1, batch_size=0, lr=0.3, generator=generator)
        _, loss = central(x, y)  # the mean loss over all examples: one full-batch step
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for (name, a), b in zip(federated.state_dict().items(), central.state_dict().values()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=f"{name} differs")


def test_average_weights_is_the_size_weighted_mean_of_each_tensor() -> None:
    g = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(3, 2, generator=g), "b": torch.randn(2, generator=g)} for _ in range(3)]
    sizes = [5, 1, 14]
    got = average_weights(states, sizes)
    for name in ("w", "b"):
        expected = np.average(np.stack([s[name].numpy() for s in states]), axis=0, weights=sizes)
        np.testing.assert_allclose(got[name].numpy(), expected, rtol=1e-6)


def test_iid_and_shard_splits_cover_every_example_once() -> None:
    labels = np.repeat(np.arange(10), 30)
    rng = np.random.default_rng(0)
    for parts in (iid_split(labels, 5, rng), shard_split(labels, 5, rng)):
        assert sorted(np.concatenate(parts).tolist()) == list(range(300))
    shards = label_histogram(shard_split(labels, 5, rng), labels)  # 10 shards of one label each
    assert ((shards > 0).sum(1) <= 2).all() and shards.sum() == 300
    iid = label_histogram(iid_split(labels, 5, rng), labels)
    assert ((iid > 0).sum(1) >= 8).all()  # 60 random examples a client: nearly every label


def test_dirichlet_split_is_a_partition_and_small_alpha_concentrates_labels() -> None:
    labels = np.repeat(np.arange(10), 50)
    rng = np.random.default_rng(0)
    skewed, even = dirichlet_split(labels, 10, rng, 0.05), dirichlet_split(labels, 10, rng, 100.0)
    for parts in (skewed, even):
        assert len(parts) == 10 and all(len(p) for p in parts)
    assert sorted(np.concatenate(even).tolist()) == list(range(500))
    assert (label_histogram(skewed, labels) > 0).sum(1).mean() < (label_histogram(even, labels) > 0).sum(
        1
    ).mean()


def test_federated_and_centralised_training_learn_a_separable_task() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 12, generator=g)
    y = (x[:, 0] > 0).long()  # a linearly separable label
    clients = [Client(x[i::4], y[i::4]) for i in range(4)]
    fedavg = train_federated(
        clients, (x, y), rounds=10, fraction=0.5, epochs=2, batch_size=10, lr=0.2, hidden=16, seed=0
    )
    central = train_centralised(Client(x, y), (x, y), epochs=5, batch_size=10, lr=0.1, hidden=16, seed=0)
    assert len(fedavg) == 10 and fedavg[-1] > 0.85
    assert central[-1] > 0.85
    assert MLP(8, 12)(x[:3], y[:3])[1].ndim == 0
