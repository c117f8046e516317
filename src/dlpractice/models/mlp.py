"""A configurable PyTorch MLP classifier and a short training loop, shared by labs f3, f6 and f8.

`MLP` stacks Linear -> [BatchNorm | LayerNorm] -> activation -> [Dropout] blocks and follows the
project's contract `logits, loss = model(x, targets)`. `train_classifier` is the training loop those
labs sweep over many small models with (a few hundred steps each, in memory); it is the loop of
`train.fit()` without checkpoints, accelerate or logging, so one run can train dozens of models.
Simplified: AdamW (or SGD + momentum) with a constant learning rate; minibatches drawn with replacement.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "leaky_relu": lambda: nn.LeakyReLU(0.01),
    "gelu": nn.GELU,
    "swish": nn.SiLU,
}


class MLP(nn.Module):
    """in -> width x depth hidden blocks -> n_classes logits."""

    def __init__(
        self,
        n_in: int,
        n_classes: int,
        width: int = 64,
        depth: int = 2,
        activation: str = "relu",
        norm: str = "none",  # "none", "batch" or "layer"
        dropout: float = 0.0,
    ):
        super().__init__()
        blocks: list[nn.Module] = []
        size = n_in
        for _ in range(depth):
            block: list[nn.Module] = [nn.Linear(size, width)]
            if norm == "batch":
                block.append(nn.BatchNorm1d(width))
            elif norm == "layer":
                block.append(nn.LayerNorm(width))
            block.append(ACTIVATIONS[activation]())
            if dropout:
                block.append(nn.Dropout(dropout))
            blocks.append(nn.Sequential(*block))
            size = width
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(size, n_classes)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        for block in self.blocks:
            x = block(x)  # (B, width)
        logits = self.head(x)  # (B, n_classes)
        loss = None if targets is None else F.cross_entropy(logits, targets)
        return logits, loss


@dataclass
class History:
    """What train_classifier saw: minibatch losses and periodic train/val error rates."""

    losses: list[float] = field(default_factory=list)
    evals: list[dict[str, float]] = field(default_factory=list)  # {"step", "train_error", "val_error"}
    stopped_at: int | None = None  # the step early stopping stopped at


@torch.no_grad()
def error_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    was_training = model.training
    model.eval()
    logits, _ = model(x)
    model.train(was_training)
    return (logits.argmax(1) != y).float().mean().item()


def train_classifier(
    model: nn.Module,
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
    steps: int,
    batch_size: int = 64,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    optimizer: str = "adamw",  # or "sgd" (momentum 0.9): no per-parameter rescaling of the gradient
    seed: int = 0,
    eval_every: int = 0,
    patience: int = 0,
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    on_step: Callable[[int, nn.Module, float], None] | None = None,
) -> History:
    """AdamW (or SGD) on random minibatches of splits["train"].

    With `patience`, stop after that many evaluations without a better val error and restore the best
    weights. `on_step(step, model, loss)` runs after each backward (the gradients are still there).
    """
    generator = torch.Generator().manual_seed(seed)
    if optimizer == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=weight_decay)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    x_train, y_train = splits["train"]
    history, best, best_state, bad = History(), float("inf"), None, 0
    model.train()
    for step in range(steps):
        index = torch.randint(len(x_train), (batch_size,), generator=generator)
        x = x_train[index] if augment is None else augment(x_train[index], generator)
        _, loss = model(x, y_train[index])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if on_step:
            on_step(step, model, loss.item())
        opt.step()
        history.losses.append(loss.item())
        if eval_every and ((step + 1) % eval_every == 0 or step + 1 == steps):
            errors = {s: error_rate(model, *splits[s]) for s in ("train", "val")}
            history.evals.append(
                {"step": step + 1, "train_error": errors["train"], "val_error": errors["val"]}
            )
            if errors["val"] < best:
                best, bad = errors["val"], 0
                best_state = {k: v.clone() for k, v in model.state_dict().items()} if patience else None
            elif patience:
                bad += 1
                if bad >= patience:
                    history.stopped_at = step + 1
                    break
    if patience and best_state is not None:
        model.load_state_dict(best_state)
    return history


def to_torch(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """NumPy features and labels as float32 / int64 tensors."""
    return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.int64)
