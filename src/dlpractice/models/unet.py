"""A small U-Net (Ronneberger et al., 2015) for per-pixel classification.

An encoder of `depth` stages (two 3x3 conv-BN-ReLU, then 2x2 max-pool, channels doubling), a bottleneck, and
a decoder that upsamples (2x2 transposed convolution), concatenates the encoder's features of the same size
(the skip connections that give back the detail pooling threw away) and convolves again. A 1x1 convolution
gives (B, C, H, W) logits; the loss is cross-entropy averaged over pixels. Simplified: "same" padding (the
paper crops), BatchNorm (the paper has none), few channels for a CPU. H and W must divide by 2**depth.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def double_conv(c_in: int, c_out: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
        nn.Conv2d(c_out, c_out, 3, padding=1, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    def __init__(self, n_classes: int, in_channels: int = 3, width: int = 16, depth: int = 3):
        super().__init__()
        widths = [width * 2**i for i in range(depth + 1)]  # e.g. 16, 32, 64, 128
        self.down = nn.ModuleList(double_conv(a, b) for a, b in zip([in_channels, *widths[:-2]], widths[:-1]))
        self.bottleneck = double_conv(widths[-2], widths[-1])
        self.up = nn.ModuleList(nn.ConvTranspose2d(w * 2, w, 2, stride=2) for w in reversed(widths[:-1]))
        self.merge = nn.ModuleList(double_conv(w * 2, w) for w in reversed(widths[:-1]))
        self.head = nn.Conv2d(widths[0], n_classes, 1)
        self.depth = depth

    def forward(
        self, x: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """x (B, 3, H, W), targets (B, H, W) class ids -> logits (B, C, H, W), mean per-pixel loss."""
        side = 2**self.depth
        if x.shape[-1] % side or x.shape[-2] % side:
            raise ValueError(f"height and width must divide by {side}, got {tuple(x.shape[-2:])}")
        skips = []
        for block in self.down:
            x = block(x)  # (B, w, h, w')
            skips.append(x)
            x = F.max_pool2d(x, 2)  # halves the side
        x = self.bottleneck(x)
        for up, merge, skip in zip(self.up, self.merge, reversed(skips)):
            x = merge(torch.cat([up(x), skip], dim=1))  # (B, 2w, h, w') -> (B, w, h, w')
        logits = self.head(x)  # (B, C, H, W)
        loss = F.cross_entropy(logits, targets) if targets is not None else None
        return logits, loss
