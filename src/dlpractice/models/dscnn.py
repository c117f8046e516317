"""DS-CNN keyword spotter (Zhang et al. 2017, "Hello Edge"): a strided convolution over the log-mel
image, then depthwise-separable blocks (a 3x3 filter per channel, then a 1x1 mix of channels), average
pooling and a linear layer. Separable blocks cost about 1/9 of full 3x3 convolutions of the same width,
which is what lets a wake-word model run all the time on a small device."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SeparableBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, padding=1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:  # (B, C, T', F') -> same
        h = F.relu(self.bn1(self.depthwise(h)))
        return F.relu(self.bn2(self.pointwise(h)))


class DSCNN(nn.Module):
    """x (B, T, n_mels) log-mel frames -> logits (B, n_classes); embed() gives the pooled (B, C) vector."""

    def __init__(
        self, n_mels: int = 40, n_classes: int = 2, channels: int = 64, blocks: int = 4, dropout: float = 0.1
    ):
        super().__init__()
        self.stem = nn.Conv2d(1, channels, (10, 4), stride=2, padding=(5, 1), bias=False)  # time x frequency
        self.bn = nn.BatchNorm2d(channels)
        self.blocks = nn.Sequential(*(SeparableBlock(channels) for _ in range(blocks)))
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(channels, n_classes)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, n_mels) -> (B, C, T // 2 + 1, n_mels // 2); fully convolutional: any length T."""
        return self.blocks(F.relu(self.bn(self.stem(x[:, None]))))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.feature_map(x).mean(dim=(2, 3))  # (B, C)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.dropout(self.embed(x)))
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss
