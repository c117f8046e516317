"""Few-shot classification: prototypical networks (Snell et al., 2017) and the baselines they are judged by.

A test *episode* draws N classes never seen in training, K labelled *support* images of each and Q
*query* images to classify. A prototypical network embeds every image with a small CNN (four blocks of
conv 3x3, BatchNorm, ReLU and 2x2 max-pooling: the "Conv-4" of the paper), takes each class's mean support
embedding as its prototype and scores a query by its negative squared Euclidean distance to each prototype:
a softmax over those scores is the prediction, its cross-entropy the training loss. It is trained on
episodes drawn from the training classes only, so it learns an embedding in which class means separate.
Baselines on the same test episodes: 1-nearest-neighbour on raw pixels, and the same CNN pretrained as an
ordinary classifier of all training classes whose features are then used with the nearest class mean.
Accuracy is averaged over test episodes with a 95 % normal confidence interval (1.96 standard errors).
Simplified: no data augmentation by rotation, no validation-based early stopping, one episode a step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def conv_block(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)
    )


class ConvEncoder(nn.Module):
    """(B, 1, 28, 28) images -> (B, width * 1 * 1) embeddings: four conv blocks, 28 -> 14 -> 7 -> 3 -> 1."""

    def __init__(self, width: int = 64, blocks: int = 4):
        super().__init__()
        self.net = nn.Sequential(*(conv_block(1 if i == 0 else width, width) for i in range(blocks)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


def prototypical_loss(
    support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor, query_y: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Support embeddings (S, D) labelled 0..N-1 (every class present), query embeddings (Q, D) ->
    (logits (Q, N), loss): each class's prototype is the mean of its support embeddings, a query's logit for
    class n is minus its squared Euclidean distance to prototype n, the loss the mean cross-entropy."""
    # BEGIN EXERCISE r3.1: class means of the support, minus squared distances as logits, cross-entropy
    n_classes = int(support_y.max()) + 1
    one_hot = F.one_hot(support_y, n_classes).to(support.dtype)  # (S, N)
    prototypes = one_hot.T @ support / one_hot.sum(0)[:, None]  # (N, D)
    logits = -((query[:, None, :] - prototypes[None]) ** 2).sum(-1)  # (Q, N)
    return logits, F.cross_entropy(logits, query_y)
    # END EXERCISE


@dataclass
class Episode:
    """One N-way K-shot task: support (N*K, 1, 28, 28) with labels 0..N-1, queries (N*Q, 1, 28, 28)."""

    support: torch.Tensor
    support_y: torch.Tensor
    query: torch.Tensor
    query_y: torch.Tensor


def sample_episode(
    by_class: list[torch.Tensor], ways: int, shots: int, queries: int, rng: np.random.Generator
) -> Episode:
    """N random classes of `by_class` (each a (M, 1, 28, 28) stack of images), K + Q random images of each:
    the first K are the support, the rest the queries; labels are the classes' places in this episode."""
    classes = rng.choice(len(by_class), ways, replace=False)
    support, query = [], []
    for images in (by_class[c] for c in classes):
        picked = images[torch.as_tensor(rng.choice(len(images), shots + queries, replace=False))]
        support.append(picked[:shots])
        query.append(picked[shots:])
    labels = torch.arange(ways)
    return Episode(
        torch.cat(support),
        labels.repeat_interleave(shots),
        torch.cat(query),
        labels.repeat_interleave(queries),
    )


def train_protonet(
    encoder: nn.Module,
    by_class: list[torch.Tensor],
    ways: int,
    shots: int,
    queries: int,
    steps: int,
    lr: float,
    seed: int,
) -> list[float]:
    """Adam on one training episode a step, the learning rate halved every quarter of the steps (the paper
    halves it every 2,000 episodes); the loss of each step."""
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.Adam(encoder.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.StepLR(optimizer, max(1, steps // 4), gamma=0.5)
    losses = []
    encoder.train()
    for _ in range(steps):
        episode = sample_episode(by_class, ways, shots, queries, rng)
        embedded = encoder(torch.cat([episode.support, episode.query]))  # (S + Q, D)
        n_support = len(episode.support)
        _, loss = prototypical_loss(
            embedded[:n_support], episode.support_y, embedded[n_support:], episode.query_y
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(float(loss.detach()))
    return losses


class PretrainedClassifier(nn.Module):
    """The baseline's network: the same encoder and a linear layer over all training classes."""

    def __init__(self, encoder: nn.Module, width: int, n_classes: int):
        super().__init__()
        self.encoder, self.head = encoder, nn.Linear(width, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.encoder(x))
        return logits, None if targets is None else F.cross_entropy(logits, targets)


@torch.no_grad()
def nearest_mean_predict(support: torch.Tensor, support_y: torch.Tensor, query: torch.Tensor) -> torch.Tensor:
    """(Q,) the class of the nearest class mean of the support features (what a prototype is)."""
    unknown = torch.zeros(len(query), dtype=torch.long)  # the queries' labels are not needed, only the logits
    logits, _ = prototypical_loss(support, support_y, query, unknown)
    return logits.argmax(1)


@torch.no_grad()
def pixel_nearest_neighbour(episode: Episode) -> torch.Tensor:
    """(Q,) the label of each query's nearest support image in raw pixels (Euclidean)."""
    distances = torch.cdist(episode.query.flatten(1), episode.support.flatten(1))  # (Q, S)
    return episode.support_y[distances.argmin(1)]


@torch.no_grad()
def episode_accuracy(method: Callable[[Episode], torch.Tensor], episode: Episode) -> float:
    """The share of an episode's queries that `method(episode) -> (Q,) labels` gets right."""
    return float((method(episode) == episode.query_y).float().mean())


def embedding_method(encoder: nn.Module) -> Callable[[Episode], torch.Tensor]:
    """A method for episode_accuracy: embed support and queries with a frozen encoder, nearest class mean."""

    @torch.no_grad()
    def predict(episode: Episode) -> torch.Tensor:
        encoder.eval()
        return nearest_mean_predict(encoder(episode.support), episode.support_y, encoder(episode.query))

    return predict


def mean_and_interval(accuracies: list[float]) -> tuple[float, float]:
    """The mean accuracy over episodes and the half-width of its 95 % confidence interval."""
    values = np.asarray(accuracies, dtype=np.float64)
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values)) if len(values) > 1 else float("nan")
    return float(values.mean()), float(half)


def labelled_split(sets: list[torch.Tensor], val_fraction: float) -> tuple[tuple, tuple]:
    """Per-class image stacks -> ((images, labels) to train on, (images, labels) to validate on): the first
    `val_fraction` of each class (at least one image) validates, class c is labelled c."""
    cut = [max(1, round(val_fraction * len(s))) for s in sets]
    train = torch.cat([s[k:] for s, k in zip(sets, cut)])
    train_y = torch.cat([torch.full((len(s) - k,), c) for c, (s, k) in enumerate(zip(sets, cut))])
    val = torch.cat([s[:k] for s, k in zip(sets, cut)])
    val_y = torch.cat([torch.full((k,), c) for c, k in enumerate(cut)])
    return (train, train_y), (val, val_y)
