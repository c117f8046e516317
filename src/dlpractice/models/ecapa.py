"""ECAPA-TDNN (Desplanques et al., 2020): speaker embeddings from SE-Res2 blocks and attentive statistics.

Against the x-vector TDNN (models/tdnn.py) it changes three things. Each frame block is a Res2Net block
(the channels split into `scale` groups, each group's dilated convolution also reading the previous
group's output, so one block sees several context widths) with squeeze-excitation (channel weights from
the utterance's mean activation). The outputs of all blocks are concatenated before pooling (multi-layer
feature aggregation). And the pooling is attentive: each channel weights the frames by a learned
softmax over time, computed from the frame and the utterance's global mean and std, before its mean and
std are taken, so a frame of silence or a click counts for less.

    logits, loss = model(x, targets)       x (B, T, F) features, targets (B,) speaker ids
    vectors = model.embed(x)               (B, embed_dim)

Training loss: additive-margin softmax (CosFace): logits are s * cos(embedding, class centre), and the
true class's cosine is lowered by `margin` during training, so a speaker's embeddings must gather closer
to their centre than plain softmax asks: what cosine scoring and clustering need. Simplified: CosFace's
additive margin instead of the paper's angular one (AAM), far fewer channels (CPU budget), no
augmentation with real noise or room impulses.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

VARIANCE_FLOOR = 1e-5  # keeps sqrt's gradient finite on a channel that is constant over an utterance


def attentive_statistics_pooling(h: torch.Tensor, attention: torch.Tensor) -> torch.Tensor:
    """(B, C, T) frames and (B, C, T) attention logits -> (B, 2C): per channel, the mean and standard
    deviation of the frames weighted by softmax(attention) over time; std = sqrt(variance + 1e-5)."""
    # BEGIN EXERCISE s3.1: softmax weights over time per channel, then the weighted mean and std
    weights = attention.softmax(dim=-1)  # (B, C, T), each channel's weights sum to 1 over time
    mean = (weights * h).sum(-1)  # (B, C)
    variance = (weights * h.pow(2)).sum(-1) - mean.pow(2)  # E_w[h^2] - E_w[h]^2
    return torch.cat([mean, (variance.clamp_min(0) + VARIANCE_FLOOR).sqrt()], dim=1)
    # END EXERCISE


class ConvBlock(nn.Sequential):
    """Conv1d ('same' length), ReLU, BatchNorm: (B, C_in, T) -> (B, C_out, T)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 1, dilation: int = 1):
        super().__init__(
            nn.Conv1d(c_in, c_out, kernel, dilation=dilation, padding=dilation * (kernel - 1) // 2),
            nn.ReLU(),
            nn.BatchNorm1d(c_out),
        )


class Res2Conv(nn.Module):
    """Res2Net's hierarchy: channels in `scale` groups; group 1 passes through, group i > 1 is convolved
    after adding group i-1's output, so later groups see wider and wider contexts."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int):
        super().__init__()
        self.scale, width = scale, channels // scale
        self.convs = nn.ModuleList(ConvBlock(width, width, kernel, dilation) for _ in range(scale - 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        groups = x.chunk(self.scale, dim=1)  # scale x (B, C / scale, T)
        out, previous = [groups[0]], None
        for conv, group in zip(self.convs, groups[1:]):
            previous = conv(group if previous is None else group + previous)
            out.append(previous)
        return torch.cat(out, dim=1)


class SqueezeExcitation(nn.Module):
    """Channel gates in (0, 1) from the mean over time: (B, C, T) -> (B, C, T)."""

    def __init__(self, channels: int, bottleneck: int = 64):
        super().__init__()
        self.gate = nn.Sequential(
            nn.Linear(channels, bottleneck), nn.ReLU(), nn.Linear(bottleneck, channels), nn.Sigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x.mean(-1))[..., None]


class SERes2Block(nn.Module):
    """1x1 conv, Res2 dilated conv, 1x1 conv, squeeze-excitation, plus the input (a residual block)."""

    def __init__(self, channels: int, kernel: int, dilation: int, scale: int):
        super().__init__()
        self.body = nn.Sequential(
            ConvBlock(channels, channels),
            Res2Conv(channels, kernel, dilation, scale),
            ConvBlock(channels, channels),
            SqueezeExcitation(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class AttentivePooling(nn.Module):
    """Attention logits per channel and frame from [frame, global mean, global std] (B, 3C, T), then
    attentive statistics: (B, C, T) -> (B, 2C)."""

    def __init__(self, channels: int, bottleneck: int = 64):
        super().__init__()
        self.attention = nn.Sequential(
            nn.Conv1d(3 * channels, bottleneck, 1), nn.Tanh(), nn.Conv1d(bottleneck, channels, 1)
        )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        T = h.shape[-1]
        mean = h.mean(-1, keepdim=True).expand(-1, -1, T)  # (B, C, T)
        std = (h.var(-1, unbiased=False, keepdim=True) + VARIANCE_FLOOR).sqrt().expand(-1, -1, T)
        return attentive_statistics_pooling(h, self.attention(torch.cat([h, mean, std], dim=1)))


class ECAPA(nn.Module):
    def __init__(
        self,
        n_features: int,
        n_classes: int,
        channels: int = 256,  # 512 or 1024 in the paper
        embed_dim: int = 192,
        scale: int = 8,  # Res2 groups; channels must divide by it
        margin: float = 0.2,  # CosFace's additive margin on the true class's cosine
        logit_scale: float = 30.0,
    ):
        super().__init__()
        self.stem = ConvBlock(n_features, channels, kernel=5)
        self.blocks = nn.ModuleList(SERes2Block(channels, 3, dilation, scale) for dilation in (2, 3, 4))
        self.aggregate = ConvBlock(3 * channels, 3 * channels)  # multi-layer feature aggregation
        self.pool = AttentivePooling(3 * channels)
        self.segment = nn.Sequential(nn.BatchNorm1d(6 * channels), nn.Linear(6 * channels, embed_dim))
        self.centres = nn.Parameter(torch.randn(n_classes, embed_dim) * 0.01)  # one per training speaker
        self.margin, self.logit_scale = margin, logit_scale

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, F) features -> (B, embed_dim) speaker embeddings."""
        h = self.stem(x.transpose(1, 2))  # (B, C, T)
        outputs = []
        for block in self.blocks:
            h = block(h)
            outputs.append(h)
        pooled = self.pool(self.aggregate(torch.cat(outputs, dim=1)))  # (B, 6C)
        return self.segment(pooled)

    def head(self, vectors: torch.Tensor) -> torch.Tensor:
        """(B, E) embeddings -> (B, n_classes) logits: scaled cosine to each speaker's centre."""
        return self.logit_scale * F.normalize(vectors, dim=-1) @ F.normalize(self.centres, dim=-1).T

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.head(self.embed(x))  # (B, n_classes)
        if targets is None:
            return logits, None
        penalty = F.one_hot(targets, logits.shape[-1]) * (self.logit_scale * self.margin)
        return logits, F.cross_entropy(logits - penalty, targets)
