"""One process of the two-process fit() test (tests/test_distributed.py launches it with torchrun).

Each process trains the same small regression twice: once unbroken, once stopped after CUT_AT steps by a
Ctrl-C that only the second process receives (the run must still stop everywhere after the same step).
Each process keeps its files in its own directory, OUT/<run>/rank<r>, so the test can check that only
the main one wrote, and reports what it saw in OUT/rank<r>.json. The test imports the model, data and
config from here to train the same thing in one process.
"""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import torch
from torch import nn

from dlpractice.data.batching import TensorData
from dlpractice.errors import RunInterrupted
from dlpractice.train import FitConfig, FitResult, fit

# grad_accum 2: the micro-batches that do not synchronise gradients (DDP's no_sync) are exercised too.
# restore_best with a validation split that disagrees with the training one: the best weights are the
# first evaluated ones, so the end of the run visibly restores them (and the second process, which has no
# file of them, must receive them from the first).
CFG = FitConfig(
    steps=40,
    batch_size=32,
    grad_accum=2,
    lr=1e-2,
    eval_every=10,
    log_every=5,
    ckpt_every=1000,
    restore_best=True,
)
CUT_AT = 17  # the interrupted run stops after this step (neither a log nor an eval step)


class Recorder:
    """Stands in for the MLflow tracker; remembers what it was asked to log."""

    def __init__(self) -> None:
        self.metrics: list[tuple[int, dict[str, float]]] = []

    def log_metrics(self, step: int, metrics: dict[str, float]) -> None:
        self.metrics.append((step, metrics))

    def flush(self) -> None:
        pass


class Silent:
    """Stands in for the progress bar."""

    def __call__(self, total: int, completed: int = 0) -> Silent:
        return self

    def __enter__(self) -> Silent:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def update(self, step: int, **fields: float) -> None:
        pass


class Ctx:
    """The part of RunContext that fit() uses."""

    def __init__(self, run_dir: Path, resume=None) -> None:
        self.run_dir = run_dir
        run_dir.mkdir(parents=True, exist_ok=True)
        self.checkpoint_path = run_dir / "checkpoint.safetensors"
        self.device = "cpu"
        self.seed = 0
        self.tracker = Recorder()
        self.progress = Silent()
        self.resume = resume


class Regression(nn.Module):
    """Deterministic (no dropout): its random masks would differ between one and two processes."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        out = self.net(x).squeeze(-1)  # (B,)
        return out, None if targets is None else nn.functional.mse_loss(out, targets)


def toy_data() -> TensorData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 2, generator=g)
    y = x[:, 0] * 2 - x[:, 1] + 0.05 * torch.randn(500, generator=g)
    return TensorData({"train": (x[:400], y[:400]), "val": (x[400:], -y[400:])})


def new_model() -> Regression:
    torch.manual_seed(0)
    return Regression()


def weights(model: nn.Module) -> list[float]:
    return torch.cat([p.detach().reshape(-1) for p in model.state_dict().values()]).tolist()


class CtrlCAt(TensorData):
    """The toy data, and a Ctrl-C to this process while it draws the last micro-batch of step `step`."""

    def __init__(self, step: int) -> None:
        super().__init__(toy_data().splits)
        self.draws_left = step * CFG.grad_accum

    def train_batch(self, batch_size: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
        self.draws_left -= 1
        if self.draws_left == 0:
            signal.raise_signal(signal.SIGINT)
        return super().train_batch(batch_size, generator)


def train(run_dir: Path, data: TensorData) -> tuple[nn.Module, FitResult | None, Ctx]:
    model, ctx = new_model(), Ctx(run_dir)
    try:
        return model, fit(model, data, CFG, ctx), ctx
    except RunInterrupted:
        return model, None, ctx


def main(out: Path) -> None:
    torch.set_num_threads(1)
    rank = int(os.environ["RANK"])  # set by torchrun
    model, full, ctx = train(out / "full" / f"rank{rank}", toy_data())
    world = torch.distributed.get_world_size()  # the process group fit()'s Accelerator joined
    interrupt = CtrlCAt(CUT_AT) if rank == 1 else toy_data()
    _, cut, cut_ctx = train(out / "cut" / f"rank{rank}", interrupt)
    report = {
        "world": world,
        "history": full.history,
        "targets_seen": full.targets_seen,
        "weights": weights(model),
        "logged": len(ctx.tracker.metrics),
        "cut_finished": cut is not None,
        "cut_logged": len(cut_ctx.tracker.metrics),
    }
    (out / f"rank{rank}.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
