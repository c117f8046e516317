"""Self-supervised pre-training (SimCLR, Chen et al., 2020) and the ways to judge what it learned.

SimCLR turns each unlabelled image into two random views and trains an encoder so that the two views of one
image are each other's nearest neighbours among all the views of the batch (the NT-Xent loss). What the
encoder learned is then judged without training it further: a linear probe (logistic regression on frozen
features) and a k-nearest-neighbour vote, both with few labels.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def random_views(x: torch.Tensor, generator: torch.Generator | None, strength: float = 1.0) -> torch.Tensor:
    """A random view of each image (B, 1, H, W): its own rotation, scale, shear and shift (one affine
    warp), a cut-out square and a little noise. At strength 0 the view is the image itself.

    Digits are not photos: colour jitter and flips (SimCLR's strongest augmentations) mean nothing or change
    the class (a flipped 2 is no digit), so geometry and occlusion carry the task here."""
    b = x.shape[0]

    def uniform(low: float, high: float) -> torch.Tensor:
        return low + (high - low) * torch.rand(b, generator=generator)

    angle = uniform(-0.35, 0.35) * strength  # radians, about ±20°
    scale = 1 + uniform(-0.25, 0.15) * strength
    shear = uniform(-0.3, 0.3) * strength
    shift = torch.stack([uniform(-0.15, 0.15), uniform(-0.15, 0.15)], 1) * strength  # (B, 2)
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack(
        [torch.stack([cos, -sin + shear, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)  # (B, H, W, 2)
    views = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
    return cut_out(views, generator, strength) + 0.05 * strength * torch.randn(
        views.shape, generator=generator
    )


def cut_out(x: torch.Tensor, generator: torch.Generator | None, strength: float) -> torch.Tensor:
    """Each image with one square (a quarter of its side at strength 1) set to zero at a random place."""
    b, _, h, w = x.shape
    side = int(round(h * 0.25 * strength))
    if side == 0:
        return x
    top = torch.randint(0, h - side + 1, (b,), generator=generator)
    left = torch.randint(0, w - side + 1, (b,), generator=generator)
    rows, cols = torch.arange(h), torch.arange(w)
    inside_rows = (rows >= top[:, None]) & (rows < top[:, None] + side)  # (B, H)
    inside_cols = (cols >= left[:, None]) & (cols < left[:, None] + side)  # (B, W)
    keep = ~(inside_rows[:, :, None] & inside_cols[:, None, :])  # (B, H, W)
    return x * keep[:, None]


def nt_xent(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> torch.Tensor:
    """NT-Xent: the mean cross-entropy of finding each view's partner (the other view of its image) among
    the 2B - 1 other views, by cosine similarity over `temperature`. z1, z2: (B, D), row i of each are the
    two views of image i."""
    # BEGIN EXERCISE v10.1: normalise, all 2B x 2B similarities, mask self-pairs, cross-entropy to the partner
    z = F.normalize(torch.cat([z1, z2]), dim=1)  # (2B, D) on the unit sphere
    logits = z @ z.T / temperature  # (2B, 2B)
    logits = logits.masked_fill(
        torch.eye(len(z), dtype=torch.bool), float("-inf")
    )  # a view is not its own pair
    b = len(z1)
    partner = torch.cat([torch.arange(b, 2 * b), torch.arange(b)])  # view i's partner is i + B, and back
    return F.cross_entropy(logits, partner)
    # END EXERCISE


class SimCLR(nn.Module):
    """An encoder (conv features, global average pooling) and a projection MLP; the loss is NT-Xent between
    two random views of each image. The probe and the k-NN read the encoder's features, not the projection:
    the projection learns to forget what the views change, and the features keep more (Chen et al., 2020)."""

    def __init__(
        self, encoder: nn.Module, feature_dim: int, projection_dim: int = 64, temperature: float = 0.2
    ):
        super().__init__()
        self.encoder = nn.Sequential(encoder, nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.projector = nn.Sequential(
            nn.Linear(feature_dim, feature_dim), nn.ReLU(), nn.Linear(feature_dim, projection_dim)
        )
        self.temperature = temperature
        self.strength = 1.0

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        """x: (B, 1, H, W); no labels (targets are ignored). The first views' projections, and the loss."""
        # training views come from the global RNG, which a checkpoint saves (a resumed run draws the same
        # views); evaluation draws the same views every time, so validation losses compare
        generator = None if self.training else torch.Generator().manual_seed(1234)
        z1 = self.projector(self.encoder(random_views(x, generator, self.strength)))  # (B, P)
        z2 = self.projector(self.encoder(random_views(x, generator, self.strength)))  # (B, P)
        return z1, nt_xent(z1, z2, self.temperature)


@torch.no_grad()
def features(encoder: nn.Module, x: torch.Tensor, batch_size: int = 1024) -> np.ndarray:
    """The encoder's features of every image, (N, C) float32, in eval mode."""
    encoder.eval()
    return torch.cat([encoder(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]).numpy()


def knn_predict(train_f: np.ndarray, train_y: np.ndarray, test_f: np.ndarray, k: int) -> np.ndarray:
    """Each test feature's class by a majority vote of its k most cosine-similar training features (ties go
    to the smaller class index)."""

    # BEGIN EXERCISE v10.2: cosine similarity to every training feature, the k largest, a majority vote
    def unit(f: np.ndarray) -> np.ndarray:
        return f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)

    similarity = unit(test_f) @ unit(train_f).T  # (N_test, N_train)
    nearest = np.argsort(-similarity, axis=1, kind="stable")[:, :k]  # (N_test, k)
    votes = np.zeros((len(test_f), int(train_y.max()) + 1), np.int64)
    np.add.at(votes, (np.arange(len(test_f))[:, None], train_y[nearest]), 1)
    return votes.argmax(1)
    # END EXERCISE


def fit_probe(train_f: np.ndarray, train_y: np.ndarray, seed: int = 0):
    """A linear probe: logistic regression on frozen, standardised features (a fitted sklearn Pipeline)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    probe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, random_state=seed))
    return probe.fit(train_f, train_y)


def probe_as_linear(probe) -> nn.Linear:
    """The fitted probe as one torch layer, exactly: standardising then a linear map is a linear map,
    W' = W / scale and b' = b - W' @ mean."""
    scaler, regression = probe[0], probe[-1]
    weight = regression.coef_ / scaler.scale_  # (K, C)
    bias = regression.intercept_ - weight @ scaler.mean_  # (K,)
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(torch.as_tensor(weight))
        layer.bias.copy_(torch.as_tensor(bias))
    return layer
