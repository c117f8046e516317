"""A TDNN with statistics pooling: the x-vector network (Snyder et al., 2018) for utterance classification.

Frame-level layers are dilated 1-D convolutions over time (a time-delay neural network): each sees a
wider window of frames than the one before, (5, 1), (3, 2), (3, 3) as (kernel, dilation) give every
output frame a context of 15 input frames, then two 1x1 layers mix channels per frame. Statistics
pooling turns the variable number of frames into one vector per utterance, the mean and standard
deviation of each channel over the utterance's own frames. Segment-level layers map that vector to an
embedding (the "x-vector", `embed`) and to the class logits.

    logits, loss = model(x, targets)                 x (B, T, F) features, targets (B,) class ids
    logits, _ = model(x, lengths=lengths)            padded batch: frames past lengths[b] are ignored
    vectors = model.embed(x, lengths)                (B, embed_dim)

Convolutions are unpadded ("valid", as in the paper), so output frame t sees input frames t..t+14 only:
a padded batch gives exactly the same logits as its utterances one by one. Simplified: ReLU then
BatchNorm after each layer as in Kaldi's recipe, cross-entropy instead of the paper's PLDA back-end.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.errors import DlpError

FRAME_LAYERS = ((5, 1), (3, 2), (3, 3), (1, 1))  # (kernel, dilation) of the frame layers before the last
VARIANCE_FLOOR = 1e-5  # keeps sqrt's gradient finite on a channel that is constant over an utterance


def statistics_pooling(h: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, T) frames -> (B, 2C): each channel's mean and standard deviation over the first lengths[b]
    frames of example b (all T when lengths is None). The std is sqrt(population variance + 1e-5)."""
    # BEGIN EXERCISE s2.1: mask the frames past each length, then the masked mean and std per channel
    B, _, T = h.shape
    if lengths is None:
        lengths = torch.full((B,), T, device=h.device)
    mask = (torch.arange(T, device=h.device)[None, :] < lengths[:, None]).to(h.dtype)  # (B, T)
    count = mask.sum(1, keepdim=True)  # (B, 1)
    mean = (h * mask[:, None, :]).sum(-1) / count  # (B, C)
    centred = (h - mean[..., None]) * mask[:, None, :]  # padding contributes nothing
    variance = centred.pow(2).sum(-1) / count  # (B, C)
    return torch.cat([mean, (variance + VARIANCE_FLOOR).sqrt()], dim=1)
    # END EXERCISE


class FrameLayer(nn.Module):
    """Dilated Conv1d, ReLU, BatchNorm: one TDNN layer, (B, C_in, T) -> (B, C_out, T - dilation*(k-1))."""

    def __init__(self, c_in: int, c_out: int, kernel: int, dilation: int):
        super().__init__()
        self.conv = nn.Conv1d(c_in, c_out, kernel, dilation=dilation)
        self.norm = nn.BatchNorm1d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(F.relu(self.conv(x)))


class TDNN(nn.Module):
    def __init__(
        self,
        n_features: int,
        n_classes: int,
        channels: int = 256,
        pooled_channels: int = 768,  # the last frame layer, whose statistics are pooled (1500 in the paper)
        embed_dim: int = 128,  # the x-vector (512 in the paper)
        dropout: float = 0.0,
    ):
        super().__init__()
        layers, c_in = [], n_features
        for kernel, dilation in FRAME_LAYERS:
            layers.append(FrameLayer(c_in, channels, kernel, dilation))
            c_in = channels
        layers.append(FrameLayer(channels, pooled_channels, 1, 1))
        self.frames = nn.Sequential(*layers)
        self.context = 1 + sum(d * (k - 1) for k, d in FRAME_LAYERS)  # input frames behind one output frame
        self.segment = nn.Sequential(nn.Linear(2 * pooled_channels, embed_dim))  # the x-vector: before ReLU
        self.head = nn.Sequential(
            nn.ReLU(),
            nn.BatchNorm1d(embed_dim),
            nn.Dropout(dropout),
            nn.Linear(embed_dim, embed_dim),
            nn.ReLU(),
            nn.BatchNorm1d(embed_dim),
            nn.Linear(embed_dim, n_classes),
        )

    def embed(self, x: torch.Tensor, lengths: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, F) features -> (B, embed_dim) utterance embeddings."""
        if x.shape[1] < self.context:
            raise DlpError(f"the TDNN needs at least {self.context} frames, got {x.shape[1]}")
        h = self.frames(x.transpose(1, 2))  # (B, pooled_channels, T - context + 1)
        if lengths is not None:  # valid output frames are those whose whole context is real input
            lengths = (lengths - self.context + 1).clamp_min(1)
        return self.segment(statistics_pooling(h, lengths))

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None, lengths: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        logits = self.head(self.embed(x, lengths))  # (B, n_classes)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss
