"""Image classifiers from a linear model to a small ViT, all `logits, loss = model(x, targets)` on images.

The ladder of lab v1, each sized for 28x28 (they take any square side the layers divide):
- LogisticRegression: one linear layer on the flattened pixels.
- ImageMLP: the flattened pixels through models/mlp.MLP.
- PlainCNN: two VGG-like stages of (3x3 conv, BatchNorm, ReLU) x 2 and a max-pool, then a small MLP head.
- SmallResNet: He et al. (2016) basic blocks (two 3x3 convs and an identity or 1x1 shortcut), three stages,
  global average pooling.
- SmallViT: Dosovitskiy et al. (2021): non-overlapping patches, a linear embedding, a class token and
  learned positions, pre-LayerNorm transformer blocks, the class token's output classifies.
The three from-scratch pieces a learner writes (practice mode) sit at the top: the output size of a
convolution, a convolution written as a sum of shifted slices (no im2col, no unfold), and patchify.
Simplified: no stochastic depth, no mixup, no label smoothing, no EMA of weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.models.mlp import MLP

KINDS = ("logreg", "mlp", "cnn", "resnet", "vit")


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Side of a convolution's (or pooling's) output along one axis, as torch.nn.Conv2d computes it."""
    # BEGIN EXERCISE v1.1: the output side of a convolution with this kernel, stride, padding and dilation
    span = dilation * (kernel - 1) + 1  # the input pixels one output pixel sees
    return (size + 2 * padding - span) // stride + 1
    # END EXERCISE


def conv2d_shifted(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None, stride: int = 1, padding: int = 0
) -> torch.Tensor:
    """F.conv2d without im2col: x (B, Cin, H, W), weight (Cout, Cin, K, K) -> (B, Cout, Ho, Wo).

    For every kernel offset (i, j), the input pixels that offset sees form one strided slice of the padded
    input; the output is the sum over offsets of that slice mixed across channels by weight[:, :, i, j]."""
    # BEGIN EXERCISE v1.2: sum, over the K*K kernel offsets, each shifted strided slice times its weights
    k = weight.shape[-1]
    x = F.pad(x, (padding, padding, padding, padding))  # (B, Cin, H + 2p, W + 2p)
    ho = conv_output_size(x.shape[2], k, stride)
    wo = conv_output_size(x.shape[3], k, stride)
    out = x.new_zeros(x.shape[0], weight.shape[0], ho, wo)  # (B, Cout, Ho, Wo)
    for i in range(k):
        for j in range(k):
            window = x[:, :, i : i + stride * (ho - 1) + 1 : stride, j : j + stride * (wo - 1) + 1 : stride]
            out += torch.einsum("bchw,oc->bohw", window, weight[:, :, i, j])  # (B, Cout, Ho, Wo)
    if bias is not None:
        out += bias[None, :, None, None]
    return out
    # END EXERCISE


def patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C * patch * patch): non-overlapping patches in row-major order, each flattened
    channel first, then patch row, then patch column (the order of a Conv2d weight, and of F.unfold)."""
    # BEGIN EXERCISE v1.3: cut the image into patch x patch squares and flatten each (C, P, P) square
    b, c, h, w = x.shape
    grid = x.reshape(b, c, h // patch, patch, w // patch, patch)  # (B, C, Gh, P, Gw, P)
    patches = grid.permute(0, 2, 4, 1, 3, 5)  # (B, Gh, Gw, C, P, P)
    return patches.reshape(b, (h // patch) * (w // patch), c * patch * patch)
    # END EXERCISE


def classify(logits: torch.Tensor, targets: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None]:
    return logits, None if targets is None else F.cross_entropy(logits, targets)


class LogisticRegression(nn.Module):
    """Softmax regression on the pixels: one weight per pixel and class."""

    def __init__(self, channels: int, side: int, n_classes: int):
        super().__init__()
        self.linear = nn.Linear(channels * side * side, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        return classify(self.linear(x.flatten(1)), targets)  # (B, n_classes)


class ImageMLP(nn.Module):
    """models/mlp.MLP on the flattened pixels: it sees no neighbourhoods, only a vector."""

    def __init__(
        self, channels: int, side: int, n_classes: int, width: int = 256, depth: int = 2, dropout=0.2
    ):
        super().__init__()
        self.mlp = MLP(channels * side * side, n_classes, width, depth, dropout=dropout)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        return self.mlp(x.flatten(1), targets)


def conv_bn_relu(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()
    )


class PlainCNN(nn.Module):
    """[conv-BN-ReLU x 2, max-pool] x 2 (side 28 -> 14 -> 7), then dropout, a hidden layer, the logits."""

    def __init__(
        self, channels: int, side: int, n_classes: int, width: int = 16, hidden: int = 128, dropout=0.3
    ):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn_relu(channels, width),
            conv_bn_relu(width, width),
            nn.MaxPool2d(2),
            conv_bn_relu(width, 2 * width),
            conv_bn_relu(2 * width, 2 * width),
            nn.MaxPool2d(2),
        )
        pooled = conv_output_size(conv_output_size(side, 2, 2), 2, 2)  # each 3x3 conv keeps the side
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(2 * width * pooled * pooled, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_classes),
        )

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        return classify(self.head(self.features(x)), targets)  # features (B, 2W, S/4, S/4)


class BasicBlock(nn.Module):
    """out = ReLU(BN(conv(ReLU(BN(conv(x))))) + shortcut(x)); a 1x1 conv shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn_relu(c_in, c_out, stride)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        nn.init.zeros_(self.bn2.weight)  # each block starts as the identity (Goyal et al., 2017)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn2(self.conv2(self.conv1(x))) + self.shortcut(x))


class SmallResNet(nn.Module):
    """A 3x3 stem, three stages of `blocks` basic blocks (width, 2 width, 4 width; the last two halve the
    side), global average pooling and a linear layer."""

    def __init__(self, channels: int, side: int, n_classes: int, width: int = 16, blocks: int = 1):
        super().__init__()
        layers: list[nn.Module] = [conv_bn_relu(channels, width)]
        c_in = width
        for stage, c_out in enumerate((width, 2 * width, 4 * width)):
            for block in range(blocks):
                stride = 2 if stage > 0 and block == 0 else 1
                layers.append(BasicBlock(c_in, c_out, stride))
                c_in = c_out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(c_in, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        features = self.features(x)  # (B, 4W, S/4, S/4)
        return classify(self.head(features.mean((2, 3))), targets)


class SmallViT(nn.Module):
    """Patches -> linear embedding; [class token, patches] + learned positions; pre-LN encoder blocks;
    LayerNorm of the class token's output -> logits."""

    def __init__(
        self,
        channels: int,
        side: int,
        n_classes: int,
        patch: int = 4,
        dim: int = 64,
        depth: int = 4,
        heads: int = 4,
        dropout: float = 0.1,
    ):
        super().__init__()
        if side % patch:
            raise ValueError(f"the image side {side} is not a multiple of the patch size {patch}")
        self.patch = patch
        n_patches = (side // patch) ** 2
        self.embed = nn.Linear(channels * patch * patch, dim)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.positions = nn.Parameter(0.02 * torch.randn(1, n_patches + 1, dim))
        block = nn.TransformerEncoderLayer(
            dim, heads, 2 * dim, dropout, activation="gelu", batch_first=True, norm_first=True
        )
        self.encoder = nn.TransformerEncoder(block, depth, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        tokens = self.embed(patchify(x, self.patch))  # (B, N, D)
        cls = self.cls_token.expand(len(x), -1, -1)  # (B, 1, D)
        tokens = torch.cat([cls, tokens], dim=1) + self.positions  # (B, N + 1, D)
        out = self.norm(self.encoder(tokens)[:, 0])  # (B, D): the class token
        return classify(self.head(out), targets)


def build_classifier(kind: str, channels: int, side: int, n_classes: int, **sizes) -> nn.Module:
    """One of KINDS; `sizes` are that class's own keyword arguments (width, depth, patch, ...)."""
    classes = {
        "logreg": LogisticRegression,
        "mlp": ImageMLP,
        "cnn": PlainCNN,
        "resnet": SmallResNet,
        "vit": SmallViT,
    }
    if kind not in classes:
        raise ValueError(f"unknown classifier {kind!r}; choose from {', '.join(KINDS)}")
    return classes[kind](channels, side, n_classes, **sizes)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
