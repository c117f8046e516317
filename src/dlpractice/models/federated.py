"""Federated averaging (McMahan et al., 2017): training one model on data that stays on many clients.

The training images are split among K clients, either IID (a random equal share each) or non-IID: each
client holds two label shards (the paper's "pathological" split: sort by label, cut into 2K shards) or a
Dirichlet(alpha) mix of labels with random sizes (small alpha: few labels a client). Each communication
round the server sends the global weights to a random fraction C of the clients; each runs E local epochs
of minibatch SGD (batch B) on its own data and sends its weights back; the server replaces the global
weights by their average weighted by the clients' sizes. FedSGD is the special case E = 1 with one
full-batch step, which makes a round one step of full-batch gradient descent over the chosen clients' data:
with C = 1 exactly centralised full-batch GD (tests/models/test_federated.py checks it).
Simplified: simulated in one process, no client dropout, secure aggregation or compression of updates.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class MLP(nn.Module):
    """(B, 784) pixels -> (B, 10) logits: the paper's "2NN" with a configurable hidden width."""

    def __init__(self, hidden: int = 200, n_in: int = 784, n_classes: int = 10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(n_in, hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.net(x)
        return logits, None if targets is None else F.cross_entropy(logits, targets)


def iid_split(labels: np.ndarray, clients: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Indices of each client's examples: a random permutation cut into `clients` equal parts."""
    return list(np.array_split(rng.permutation(len(labels)), clients))


def shard_split(
    labels: np.ndarray, clients: int, rng: np.random.Generator, shards: int = 2
) -> list[np.ndarray]:
    """Sort by label, cut into clients * shards contiguous shards, deal `shards` random ones to each client:
    most clients see only two digits."""
    by_label = np.argsort(labels, kind="stable")
    pieces = np.array_split(by_label, clients * shards)
    order = rng.permutation(len(pieces)).reshape(clients, shards)
    return [np.concatenate([pieces[p] for p in row]) for row in order]


def dirichlet_split(
    labels: np.ndarray, clients: int, rng: np.random.Generator, alpha: float
) -> list[np.ndarray]:
    """Each label's examples are shared among the clients in Dirichlet(alpha) proportions (Hsu et al., 2019);
    a client left empty gets one random example, so every client can train."""
    parts: list[list[int]] = [[] for _ in range(clients)]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        cuts = (np.cumsum(rng.dirichlet(np.full(clients, alpha)))[:-1] * len(members)).astype(int)
        for client, chunk in enumerate(np.split(members, cuts)):
            parts[client].extend(chunk.tolist())
    for part in parts:
        if not part:
            part.append(int(rng.integers(len(labels))))
    return [np.asarray(sorted(part)) for part in parts]


def average_weights(states: list[dict[str, torch.Tensor]], sizes: list[int]) -> dict[str, torch.Tensor]:
    """The server's step: each weight tensor averaged over the clients' state dicts, client k weighted by its
    share of the examples, n_k / sum(n)."""
    # BEGIN EXERCISE r3.2: every tensor's average over the clients, each weighted by its share of the data
    total = float(sum(sizes))
    return {name: sum(state[name] * (n / total) for state, n in zip(states, sizes)) for name in states[0]}
    # END EXERCISE


@dataclass
class Client:
    x: torch.Tensor  # (n_k, 784)
    y: torch.Tensor  # (n_k,)


def local_update(
    model: nn.Module, client: Client, epochs: int, batch_size: int, lr: float, generator: torch.Generator
) -> dict[str, torch.Tensor]:
    """E epochs of plain SGD on the client's data in shuffled minibatches (batch_size 0: full batch)."""
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    n = len(client.y)
    batch = n if batch_size == 0 else batch_size
    model.train()
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        for start in range(0, n, batch):
            index = order[start : start + batch]
            _, loss = model(client.x[index], client.y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return {name: value.detach().clone() for name, value in model.state_dict().items()}


def federated_round(
    global_model: nn.Module,
    clients: list[Client],
    fraction: float,
    epochs: int,
    batch_size: int,
    lr: float,
    generator: torch.Generator,
) -> None:
    """One communication round, in place on global_model: max(1, C K) random clients train a copy of it
    locally, and their weights, averaged by size, become the new global weights."""
    chosen = max(1, round(fraction * len(clients)))
    picked = torch.randperm(len(clients), generator=generator)[:chosen].tolist()
    states, sizes = [], []
    for k in picked:
        states.append(
            local_update(copy.deepcopy(global_model), clients[k], epochs, batch_size, lr, generator)
        )
        sizes.append(len(clients[k].y))
    global_model.load_state_dict(average_weights(states, sizes))


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    model.eval()
    return float((model(x)[0].argmax(1) == y).float().mean())


def train_federated(
    clients: list[Client],
    test: tuple[torch.Tensor, torch.Tensor],
    rounds: int,
    fraction: float,
    epochs: int,
    batch_size: int,
    lr: float,
    hidden: int,
    seed: int,
) -> list[float]:
    """Test accuracy after each of `rounds` rounds, starting from the same seeded initial weights."""
    torch.manual_seed(seed)
    model = MLP(hidden, clients[0].x.shape[1])
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(rounds):
        federated_round(model, clients, fraction, epochs, batch_size, lr, generator)
        curve.append(accuracy(model, *test))
    return curve


def train_centralised(
    train: Client,
    test: tuple[torch.Tensor, torch.Tensor],
    epochs: int,
    batch_size: int,
    lr: float,
    hidden: int,
    seed: int,
) -> list[float]:
    """The same model and SGD on all the data in one place: test accuracy after each epoch."""
    torch.manual_seed(seed)
    model = MLP(hidden, train.x.shape[1])
    generator = torch.Generator().manual_seed(seed)
    curve = []
    for _ in range(epochs):
        local_update(model, train, 1, batch_size, lr, generator)  # trains `model` itself
        curve.append(accuracy(model, *test))
    return curve


def label_histogram(parts: list[np.ndarray], labels: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """(K, n_classes) how many examples of each label each client holds."""
    return np.stack([np.bincount(labels[p], minlength=n_classes) for p in parts])
