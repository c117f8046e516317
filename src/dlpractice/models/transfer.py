"""Transfer learning's pieces: a pretrained torchvision backbone under a new head, and a short training loop
whose optimiser takes parameter groups (a lower learning rate for the backbone, or a frozen one).

Every model here has `features` (the backbone) and `head` (the classifier) and follows the project's
contract `logits, loss = model(x, targets)`, like models/attribution.py's SmallCNN. A torchvision ResNet
(`resnet18`, `resnet34`, ...) takes the labs' 1-channel 28x28 images by repeating the channel three times,
resizing to `image_size` and normalising with ImageNet's statistics. Its ImageNet weights are read from the
torch hub cache ($TORCH_HOME/hub/checkpoints, where torchvision keeps them) when they are there;
otherwise they are downloaded by torchvision, or, offline (DLP_OFFLINE=1), a one-line error says where to
put the file. `weights="none"` builds the same network with random weights (what the tests use).
Simplified: ResNets only (their classifier is `fc`); no test-time augmentation; plain minibatches.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.errors import DlpError

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class ToImageNet(nn.Module):
    """(B, 1, H, W) pixels in [0, 1] -> (B, 3, S, S) normalised as ImageNet models were trained."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x.expand(-1, 3, -1, -1), size=(self.size, self.size), mode="bilinear")
        return (x - self.mean) / self.std


class BackboneClassifier(nn.Module):
    """A backbone (images -> (B, D) features) and a new linear head to `n_classes`."""

    def __init__(self, features: nn.Module, n_features: int, n_classes: int):
        super().__init__()
        self.features = features
        self.head = nn.Linear(n_features, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.head(self.features(x))  # (B, K)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


def hub_checkpoint(name: str) -> tuple[Path, str]:
    """Where torchvision keeps `name`'s default ImageNet weights (the hub cache) and their URL."""
    from torchvision.models import get_model_weights

    url = get_model_weights(name).DEFAULT.url
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url), url


def imagenet_weights(name: str) -> dict[str, torch.Tensor]:
    """The ImageNet state dict of torchvision model `name`: from the hub cache, else downloaded (online)."""
    path, url = hub_checkpoint(name)
    if not path.is_file():
        if os.environ.get("DLP_OFFLINE") == "1":
            raise DlpError(
                f"{name}'s ImageNet weights are not in the torch hub cache and DLP_OFFLINE=1; "
                f"put {url} at {path} (or use backbone_weights=none)"
            )
        torch.hub.download_url_to_file(url, str(path))
    try:
        return torch.load(path, map_location="cpu", weights_only=True)  # tensors only: nothing can run
    except (RuntimeError, OSError, ValueError) as err:
        raise DlpError(f"{path} is unreadable (truncated or damaged?): {err}") from None


def torchvision_classifier(name: str, n_classes: int, weights: str = "imagenet", image_size: int = 64):
    """ResNet `name` from torchvision, ImageNet weights (or random with weights="none"), a new head."""
    from torchvision.models import get_model, list_models

    if name not in list_models() or not name.startswith(("resnet", "resnext", "wide_resnet")):
        resnets = [m for m in list_models() if m.startswith("resnet")]
        raise DlpError(
            f"backbone {name!r} is not a torchvision ResNet; use small or one of {', '.join(resnets)}"
        )
    net = get_model(name, weights=None)  # the architecture; the weights come next, from the cache
    if weights == "imagenet":
        net.load_state_dict(imagenet_weights(name))
    n_features = net.fc.in_features
    net.fc = nn.Identity()  # the backbone ends at the pooled features
    return BackboneClassifier(nn.Sequential(ToImageNet(image_size), net), n_features, n_classes)


def train_groups(
    model: nn.Module,
    groups: list[dict],
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor],
    steps: int,
    batch_size: int,
    eval_every: int,
    seed: int,
    frozen_backbone: bool = False,
) -> list[tuple[int, float]]:
    """AdamW over `groups` (each with its own lr) on random minibatches of `train`; the validation accuracy
    every `eval_every` steps (and at step 0) as (step, accuracy). A frozen backbone stays in eval mode, so
    its BatchNorm statistics are the pretrained ones, not the few new images'."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(groups, weight_decay=0.0)
    x, y = train
    curve = [(0, accuracy(model, *val))]
    for step in range(1, steps + 1):
        model.train()
        if frozen_backbone:
            model.features.eval()
        index = torch.randint(len(x), (min(batch_size, len(x)),), generator=generator)
        _, loss = model(x[index], y[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % eval_every == 0 or step == steps:
            curve.append((step, accuracy(model, *val)))
    return curve


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
    model.eval()
    right = sum(
        int((model(x[i : i + batch_size])[0].argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    return right / len(x)
