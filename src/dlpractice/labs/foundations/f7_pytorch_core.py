"""F7 · PyTorch core: tensors, autograd, nn.Module, Dataset, DataLoader, collate, transforms, the loop.

Each idea is exercised on generated data and checked, and the checks go into the report's table:
tensors (broadcasting, views that share storage, dtypes), autograd (a derivative against the formula
and a finite difference, `no_grad`), an `nn.Module` (parameter count, state_dict round trip), a custom
`Dataset` of three interleaved spirals with a transform (random rotation + jitter, train split only),
a `collate_fn` that pads variable-length sequences into one batch with their lengths, and finally the
training loop written out by hand (no fit()): epochs, `model.train()`/`eval()`, zero_grad, backward,
step. Simplified: CPU only, one worker, no samplers beyond shuffling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset

from dlpractice.config import NonNegativeFloat, PositiveFloat, PositiveInt, Range
from dlpractice.registry import lab

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f7", requires=("f1",), data=("generated",), metric="test_accuracy", goal="max")


@dataclass
class Config:
    n_per_class: Annotated[int, Range(ge=2)] = 300  # spiral points per class (train); test has half as many
    noise: NonNegativeFloat = 0.15
    hidden: PositiveInt = 64
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-3
    augment: bool = True  # random rotation + jitter on training examples


PRESETS = {"smoke": {"n_per_class": 60, "epochs": 3}, "quick": {}, "full": {"epochs": 100}}


class Spirals(Dataset):
    """Three interleaved spiral arms in 2-D; item i is (point (2,), class index), transformed on access."""

    def __init__(self, n_per_class: int, noise: float, seed: int, transform=None):
        g = torch.Generator().manual_seed(seed)
        radius = torch.linspace(0.05, 1, n_per_class).repeat(3)  # (3n,)
        label = torch.arange(3).repeat_interleave(n_per_class)  # (3n,)
        angle = radius * 4 + label * 2 * math.pi / 3 + noise * torch.randn(3 * n_per_class, generator=g)
        self.x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], 1)  # (3n, 2)
        self.y = label
        self.transform = transform

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        return (self.transform(x) if self.transform else x), self.y[i]


class RandomRotateJitter:
    """A transform: rotate a point by a small random angle and add Gaussian jitter."""

    def __init__(self, max_angle: float = 0.1, jitter: float = 0.01, seed: int = 0):
        self.max_angle, self.jitter = max_angle, jitter
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        a = (torch.rand((), generator=self.generator) * 2 - 1) * self.max_angle
        rotation = torch.stack([torch.stack([a.cos(), -a.sin()]), torch.stack([a.sin(), a.cos()])])
        return rotation @ x + self.jitter * torch.randn(2, generator=self.generator)


def pad_collate(batch: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """[(sequence (L_i,), label)] -> padded (B, max L) with zeros, lengths (B,), labels (B,)."""
    # BEGIN EXERCISE f7.1: pad every sequence to the longest one; keep the true lengths
    lengths = torch.tensor([len(seq) for seq, _ in batch])
    padded = torch.zeros(len(batch), int(lengths.max()))
    for row, (seq, _) in enumerate(batch):
        padded[row, : len(seq)] = seq
    labels = torch.tensor([label for _, label in batch])
    return padded, lengths, labels
    # END EXERCISE


class Classifier(nn.Module):
    """2 -> hidden -> hidden -> 3, ReLU; the project's contract `logits, loss = model(x, targets)`."""

    def __init__(self, hidden: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(2, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 3)
        )

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.net(x)  # (B, 3)
        return logits, None if targets is None else F.cross_entropy(logits, targets)


def train_epoch(model: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer) -> float:
    """One pass over the loader; returns the mean training loss."""
    # BEGIN EXERCISE f7.2: the training loop: train mode, then forward, zero_grad, backward, step per batch
    model.train()
    total, count = 0.0, 0
    for x, y in loader:
        _, loss = model(x, y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        total += loss.item() * len(y)
        count += len(y)
    return total / count
    # END EXERCISE


@torch.no_grad()
def accuracy(model: nn.Module, loader: DataLoader) -> float:
    model.eval()
    hits = sum((model(x)[0].argmax(1) == y).sum().item() for x, y in loader)
    return hits / len(loader.dataset)


def basics_checks(cfg: Config) -> list[tuple[str, bool]]:
    """Tensors, autograd and modules, each with the fact it demonstrates."""
    a, b = torch.ones(3, 1), torch.arange(4.0)
    x = torch.arange(12.0)
    view = x.view(3, 4)
    view[0, 0] = 100.0  # a view shares storage with x
    copy = x.reshape(3, 4).clone()
    copy[0, 1] = -1.0  # a clone does not
    t = torch.tensor(2.0, requires_grad=True)
    (t**3 + 2 * t).backward()  # d/dt = 3t^2 + 2 = 14 at t = 2
    eps = 1e-3
    finite = ((2 + eps) ** 3 + 2 * (2 + eps) - (2 - eps) ** 3 - 2 * (2 - eps)) / (2 * eps)
    with torch.no_grad():
        frozen = t * 3
    model = Classifier(cfg.hidden)
    twin = Classifier(cfg.hidden)
    twin.load_state_dict(model.state_dict())
    probe = torch.randn(5, 2)
    expected = 2 * cfg.hidden + cfg.hidden + cfg.hidden * cfg.hidden + cfg.hidden + cfg.hidden * 3 + 3
    return [
        ("broadcasting (3, 1) + (4,) gives (3, 4)", (a + b).shape == (3, 4)),
        ("view() shares storage with its base", x[0].item() == 100.0),
        ("clone() does not", x[1].item() == 1.0),
        (
            "integer / integer tensors promote to float",
            (torch.tensor([3]) / torch.tensor([2])).dtype == torch.float32,
        ),
        ("autograd: d(t^3 + 2t)/dt at 2 is 14", t.grad.item() == 14.0),
        ("autograd agrees with a finite difference", abs(t.grad.item() - finite) < 1e-4),
        ("no_grad() builds no graph", not frozen.requires_grad),
        ("parameter count of Classifier", sum(p.numel() for p in model.parameters()) == expected),
        ("state_dict round trip gives the same outputs", torch.equal(model(probe)[0], twin(probe)[0])),
    ]


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    origin = f"generated: 3 spirals, {cfg.n_per_class}/class train, noise {cfg.noise}"
    ctx.record_data({"data_source": "embedded", "data_origin": origin, "seed": ctx.seed})
    checks = basics_checks(cfg)

    transform = RandomRotateJitter(seed=ctx.seed) if cfg.augment else None
    train_set = Spirals(cfg.n_per_class, cfg.noise, ctx.seed, transform)
    test_set = Spirals(cfg.n_per_class // 2, cfg.noise, ctx.seed + 1)
    loader = DataLoader(
        train_set, cfg.batch_size, shuffle=True, generator=torch.Generator().manual_seed(ctx.seed)
    )
    test_loader = DataLoader(test_set, batch_size=256)
    first = next(iter(loader))
    checks.append(
        (
            "a DataLoader batch stacks items: x (B, 2), y (B,)",
            first[0].shape == (cfg.batch_size, 2) and first[1].shape == (cfg.batch_size,),
        )
    )
    sequences = [(torch.arange(1.0, n + 1), n % 2) for n in (3, 5, 2)]
    padded, lengths, labels = next(iter(DataLoader(sequences, batch_size=3, collate_fn=pad_collate)))
    checks.append(
        (
            "pad_collate pads to the longest sequence and keeps lengths",
            padded.shape == (3, 5) and lengths.tolist() == [3, 5, 2] and padded[2, 2:].eq(0).all().item(),
        )
    )

    torch.manual_seed(ctx.seed)
    model = Classifier(cfg.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    history = []
    with ctx.progress(total=cfg.epochs) as bar:
        for epoch in range(cfg.epochs):
            loss = train_epoch(model, loader, optimizer)
            acc = accuracy(model, test_loader)
            history.append({"step": epoch + 1, "train_loss": loss})
            ctx.tracker.log_metrics(epoch, {"train_loss": loss, "test_accuracy": acc})
            bar.update(epoch + 1, loss=loss, val=acc)
    test_accuracy = accuracy(model, test_loader)
    checks.append(
        (
            "the hand-written loop lowers the training loss",
            history[-1]["train_loss"] < history[0]["train_loss"],
        )
    )

    fig, ax = plt.subplots(figsize=(5, 4.5))
    grid = torch.stack(
        torch.meshgrid(torch.linspace(-1.2, 1.2, 200), torch.linspace(-1.2, 1.2, 200), indexing="xy")
    )
    with torch.no_grad():
        regions = model(grid.reshape(2, -1).T)[0].argmax(1).reshape(200, 200)
    ax.contourf(grid[0], grid[1], regions, alpha=0.25, levels=[-0.5, 0.5, 1.5, 2.5], cmap="brg")
    ax.scatter(*test_set.x.T, c=test_set.y, s=6, cmap="brg")
    ax.set(title=f"spirals: test accuracy {test_accuracy:.3f}")
    ctx.figure("spirals", fig, "The trained classifier's regions and the test points")
    ctx.loss_figure(
        history,
        title="Training loss per epoch (the hand-written loop)",
        xlabel="epoch",
        ylabel="cross-entropy (nats/example)",
    )
    ctx.section(
        "Checks",
        "| check | passed |\n|---|---|\n"
        + "\n".join(f"| {c} | {'yes' if ok else 'NO'} |" for c, ok in checks),
    )
    return {
        "test_accuracy": test_accuracy,
        "checks_passed": float(sum(ok for _, ok in checks)),
        "checks_total": float(len(checks)),
        "final_train_loss": history[-1]["train_loss"],
    }
