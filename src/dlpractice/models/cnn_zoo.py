"""Seven classic CNN architectures, each shrunk to 28x28 grey digits and 10 classes (lab v2).

LeNet-5 (LeCun et al., 1998), an AlexNet-style net (Krizhevsky et al., 2012), a VGG-style net (Simonyan &
Zisserman, 2015), a ResNet of basic blocks (He et al., 2016), an Inception net (Szegedy et al., 2015), a
DenseNet (Huang et al., 2017) and a MobileNet of depthwise-separable blocks (Howard et al., 2017). Each
keeps its family's defining idea and drops what only matters at 224x224 on ImageNet: the widths are
divided by 4 to 16, stages are fewer, and there is no local response normalisation, auxiliary classifier
or width multiplier. Every model follows the project's contract, `logits, loss = model(x, targets)`, with
x a (B, 1, 28, 28) batch of pixels in [0, 1].

Every layer that costs arithmetic is a module (nn.ReLU, not F.relu), so metrics/flops.py can count it per
layer with forward hooks; only the additions of residual connections go uncounted.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.nn import functional as F

N_CLASSES = 10


class Classifier(nn.Module):
    """A stack of layers from (B, 1, 28, 28) pixels to (B, 10) logits, with the cross-entropy loss."""

    def __init__(self, layers: nn.Sequential):
        super().__init__()
        self.layers = layers

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.layers(x)  # (B, 10)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


def conv_bn_relu(c_in: int, c_out: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    """The unit of every modern CNN: a convolution without bias (BatchNorm's shift replaces it), BN, ReLU."""
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )


def he_init(model: Classifier) -> Classifier:
    """He (Kaiming) normal weights for a ReLU net, as torchvision initialises its CNNs: each layer keeps the
    variance of its input. PyTorch's default (uniform, a third of that variance) starves the deep plain
    stacks: the AlexNet-style net barely moved in 40 steps with it."""
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


def pooled_head(c_in: int) -> nn.Sequential:
    """Global average pooling then one linear layer: no large fully connected layer (since NiN, 2014)."""
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, N_CLASSES))


# ---- LeNet-5, AlexNet and VGG: plain stacks -----------------------------------------------------------


def lenet5() -> Classifier:
    """LeNet-5: two 5x5 convolutions with tanh and average pooling, then three fully connected layers.
    The input is padded to 32x32 as in the paper, so the layer sizes are the original ones."""
    return Classifier(
        nn.Sequential(
            nn.Conv2d(1, 6, 5, padding=2),  # (B, 6, 28, 28)
            nn.Tanh(),
            nn.AvgPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # (B, 16, 10, 10)
            nn.Tanh(),
            nn.AvgPool2d(2),  # (B, 16, 5, 5)
            nn.Flatten(),
            nn.Linear(16 * 5 * 5, 120),
            nn.Tanh(),
            nn.Linear(120, 84),
            nn.Tanh(),
            nn.Linear(84, N_CLASSES),
        )
    )


def alexnet(dropout: float = 0.5) -> Classifier:
    """AlexNet's shape: a large first kernel, five ReLU convolutions with three max-pools, then two wide
    fully connected layers with dropout, which hold most of the parameters."""
    return he_init(
        Classifier(
            nn.Sequential(
                nn.Conv2d(1, 24, 5, padding=2),  # (B, 24, 28, 28)
                nn.ReLU(),
                nn.MaxPool2d(2),  # (B, 24, 14, 14)
                nn.Conv2d(24, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # (B, 32, 7, 7)
                nn.Conv2d(32, 48, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(48, 48, 3, padding=1),
                nn.ReLU(),
                nn.Conv2d(48, 32, 3, padding=1),
                nn.ReLU(),
                nn.MaxPool2d(2),  # (B, 32, 3, 3)
                nn.Flatten(),
                nn.Dropout(dropout),
                nn.Linear(32 * 3 * 3, 256),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(256, 256),
                nn.ReLU(),
                nn.Linear(256, N_CLASSES),
            )
        )
    )


def vgg(widths: tuple[int, ...] = (12, 24, 48)) -> Classifier:
    """VGG's recipe: only 3x3 convolutions, two per stage, the width doubling as a max-pool halves the
    map (two 3x3 layers see 5x5 with fewer weights than one 5x5). BatchNorm added, as in VGG-BN."""
    stages, c_in = [], 1
    for width in widths:  # 28 -> 14 -> 7 -> 3
        stages += [conv_bn_relu(c_in, width), conv_bn_relu(width, width), nn.MaxPool2d(2)]
        c_in = width
    side = 28 >> len(widths)
    head = [nn.Flatten(), nn.Linear(c_in * side * side, 128), nn.ReLU(), nn.Linear(128, N_CLASSES)]
    return he_init(Classifier(nn.Sequential(*stages, *head)))


# ---- ResNet: the basic block --------------------------------------------------------------------------


class BasicBlock(nn.Module):
    """ResNet's basic block: two 3x3 conv-BN layers and a shortcut, added before the last ReLU.

    The layers are named as in torchvision.models.resnet.BasicBlock (`shortcut` is its `downsample`), so
    the same weights load into both. The shortcut is the identity, or a strided 1x1 conv and BN where the
    block changes the width or the size of the map (He et al.'s option B)."""

    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, c_in, H, W) -> (B, c_out, H / stride, W / stride)."""
        # BEGIN EXERCISE v2.1: conv1, bn1, ReLU, conv2, bn2, add the shortcut of x, then ReLU
        out = self.relu(self.bn1(self.conv1(x)))  # (B, c_out, H', W')
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))
        # END EXERCISE


def resnet(widths: tuple[int, ...] = (16, 32, 64), blocks: int = 1) -> Classifier:
    """A ResNet for small images: a 3x3 stem and a max-pool (ImageNet ResNet's stem, gentler), then one
    stage per width of `blocks` basic blocks; every stage after the first halves the map (14 -> 7 -> 4)."""
    layers: list[nn.Module] = [conv_bn_relu(1, widths[0]), nn.MaxPool2d(2)]  # (B, w0, 14, 14)
    c_in = widths[0]
    for stage, width in enumerate(widths):
        for block in range(blocks):
            stride = 2 if stage > 0 and block == 0 else 1
            layers.append(BasicBlock(c_in, width, stride))
            c_in = width
    return he_init(Classifier(nn.Sequential(*layers, pooled_head(c_in))))


# ---- Inception: parallel branches of several kernel sizes ---------------------------------------------


class InceptionBlock(nn.Module):
    """Four branches side by side, concatenated on channels: 1x1; 1x1 then 3x3; 1x1 then 5x5; 3x3 max-pool
    then 1x1. The 1x1 convolutions first shrink the channels, so the large kernels stay cheap."""

    def __init__(self, c_in: int, c1: int, c3: tuple[int, int], c5: tuple[int, int], c_pool: int):
        super().__init__()
        self.branch1 = conv_bn_relu(c_in, c1, 1)
        self.branch3 = nn.Sequential(conv_bn_relu(c_in, c3[0], 1), conv_bn_relu(c3[0], c3[1], 3))
        self.branch5 = nn.Sequential(conv_bn_relu(c_in, c5[0], 1), conv_bn_relu(c5[0], c5[1], 5))
        self.branch_pool = nn.Sequential(nn.MaxPool2d(3, 1, padding=1), conv_bn_relu(c_in, c_pool, 1))
        self.c_out = c1 + c3[1] + c5[1] + c_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch1, self.branch3, self.branch5, self.branch_pool)
        return torch.cat([branch(x) for branch in branches], dim=1)  # (B, c_out, H, W)


def inception() -> Classifier:
    """A stem, then two Inception blocks at 14x14 and two at 7x7 (GoogLeNet's 3a-3b and 4a-4b, narrower)."""
    a = InceptionBlock(16, 8, (12, 16), (4, 8), 8)  # 40 channels out
    b = InceptionBlock(a.c_out, 16, (16, 24), (4, 8), 8)  # 56
    c = InceptionBlock(b.c_out, 24, (16, 32), (4, 8), 8)  # 72
    d = InceptionBlock(c.c_out, 24, (24, 32), (6, 12), 12)  # 80
    stem = [conv_bn_relu(1, 16), nn.MaxPool2d(2)]  # (B, 16, 14, 14)
    return he_init(Classifier(nn.Sequential(*stem, a, b, nn.MaxPool2d(2), c, d, pooled_head(d.c_out))))


# ---- DenseNet: every layer sees all the earlier ones --------------------------------------------------


class DenseLayer(nn.Module):
    """BN, ReLU, 3x3 conv to `growth` new channels, concatenated to its input (pre-activation order)."""

    def __init__(self, c_in: int, growth: int):
        super().__init__()
        self.new = nn.Sequential(
            nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, growth, 3, padding=1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.new(x)], dim=1)  # (B, c_in + growth, H, W)


def dense_block(c_in: int, n_layers: int, growth: int) -> tuple[nn.Sequential, int]:
    """n_layers dense layers: the channels grow by `growth` each. Returns the block and its width."""
    layers = [DenseLayer(c_in + i * growth, growth) for i in range(n_layers)]
    return nn.Sequential(*layers), c_in + n_layers * growth


def transition(c_in: int, c_out: int) -> nn.Sequential:
    """Between dense blocks: BN, ReLU, a 1x1 conv that compresses the channels, 2x2 average pooling."""
    return nn.Sequential(
        nn.BatchNorm2d(c_in), nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.AvgPool2d(2)
    )


def densenet(growth: int = 12, n_layers: int = 4) -> Classifier:
    """A stem to 14x14, a dense block, a transition (half the channels, 7x7), a second dense block."""
    stem = [nn.Conv2d(1, 2 * growth, 3, padding=1, bias=False), nn.MaxPool2d(2)]  # (B, 2k, 14, 14)
    block1, c = dense_block(2 * growth, n_layers, growth)
    down = transition(c, c // 2)
    block2, c = dense_block(c // 2, n_layers, growth)
    end = [nn.BatchNorm2d(c), nn.ReLU(), pooled_head(c)]
    return he_init(Classifier(nn.Sequential(*stem, block1, down, block2, *end)))


# ---- MobileNet: depthwise-separable convolutions ------------------------------------------------------


def depthwise_separable(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    """MobileNet's block: a 3x3 depthwise conv (one filter per channel, groups=c_in), BN, ReLU, then a 1x1
    pointwise conv mixing the channels, BN, ReLU. Convolutions without bias (BN shifts). It costs
    9·c_in + c_in·c_out multiply-adds per output pixel, against 9·c_in·c_out for a full 3x3 conv."""
    # BEGIN EXERCISE v2.2: depthwise 3x3 conv (groups=c_in, stride, padding 1), BN, ReLU; 1x1 conv, BN, ReLU
    return nn.Sequential(
        nn.Conv2d(c_in, c_in, 3, stride, padding=1, groups=c_in, bias=False),  # (B, c_in, H', W')
        nn.BatchNorm2d(c_in),
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, 1, bias=False),  # (B, c_out, H', W')
        nn.BatchNorm2d(c_out),
        nn.ReLU(),
    )
    # END EXERCISE


def mobilenet(
    widths: tuple[tuple[int, int], ...] = ((32, 2), (64, 1), (64, 2), (128, 1), (128, 1)),
) -> Classifier:
    """A full 3x3 conv stem, then depthwise-separable blocks given as (width, stride): 28 -> 14 -> 7."""
    layers: list[nn.Module] = [conv_bn_relu(1, 16)]
    c_in = 16
    for width, stride in widths:
        layers.append(depthwise_separable(c_in, width, stride))
        c_in = width
    return he_init(Classifier(nn.Sequential(*layers, pooled_head(c_in))))


ZOO: dict[str, Callable[[], Classifier]] = {
    "lenet5": lenet5,
    "alexnet": alexnet,
    "vgg": vgg,
    "resnet": resnet,
    "inception": inception,
    "densenet": densenet,
    "mobilenet": mobilenet,
}
NAMES = {
    "lenet5": "LeNet-5",
    "alexnet": "AlexNet-style",
    "vgg": "VGG-style",
    "resnet": "ResNet (basic blocks)",
    "inception": "Inception",
    "densenet": "DenseNet",
    "mobilenet": "MobileNet",
}


def build(name: str) -> Classifier:
    """One architecture of the zoo by name, with its default (28x28) sizes."""
    return ZOO[name]()
