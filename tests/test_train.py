"""fit(): it learns, its schedule is right, it stops early, it accumulates, and it resumes exactly."""

import math
import signal
from pathlib import Path

import pytest
import torch
from torch import nn

from dlpractice.checkpoint import read_checkpoint
from dlpractice.data.batching import TensorData
from dlpractice.errors import RunInterrupted
from dlpractice.runner import Progress
from dlpractice.train import FitConfig, count_targets, evaluate, fit, lr_factor


class Recorder:
    """Stands in for the MLflow tracker."""

    def __init__(self):
        self.metrics = []

    def log_metrics(self, step, metrics):
        self.metrics.append((step, metrics))

    def flush(self):
        pass


class Ctx:
    def __init__(self, run_dir: Path, resume=None):
        self.run_dir = run_dir
        self.checkpoint_path = run_dir / "checkpoint.safetensors"
        self.device = "cpu"
        self.seed = 0
        self.tracker = Recorder()
        self.progress = Progress(False, "test")
        self.resume = resume


class Regression(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 16), nn.Dropout(0.1), nn.Tanh(), nn.Linear(16, 1))

    def forward(self, x, targets=None):
        out = self.net(x).squeeze(-1)
        return out, None if targets is None else nn.functional.mse_loss(out, targets)


def toy_data() -> TensorData:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 2, generator=g)
    y = x[:, 0] * 2 - x[:, 1] + 0.05 * torch.randn(600, generator=g)
    return TensorData(
        {"train": (x[:400], y[:400]), "val": (x[400:500], y[400:500]), "test": (x[500:], y[500:])}
    )


def train(tmp_path: Path, cfg: FitConfig, resume=None):
    torch.manual_seed(0)
    model = Regression()
    ctx = Ctx(tmp_path, resume)
    return model, fit(model, toy_data(), cfg, ctx), ctx


def test_fit_learns(tmp_path):
    cfg = FitConfig(steps=300, batch_size=32, lr=1e-2, eval_every=100, log_every=10)
    model, result, ctx = train(tmp_path, cfg)
    assert evaluate(model, toy_data(), "test") < 0.1 < result.history[0]["train_loss"]
    assert (tmp_path / "model.safetensors").exists() and read_checkpoint(ctx.checkpoint_path).step == 300
    assert [s for s, m in ctx.tracker.metrics if "val_loss" in m] == [100, 200, 300]
    assert result.targets_seen == 300 * 32 and result.targets_per_second > 0


def test_padding_targets_are_not_counted():
    assert int(count_targets(torch.tensor([[3, 1, -1], [2, -1, -1]]))) == 3
    assert int(count_targets(torch.tensor([[0, 5, -100]]))) == 2
    assert int(count_targets(torch.zeros(4, 2))) == 8


def test_beta2_reaches_adamw():
    from dlpractice.train import make_optimizer

    optimizer = make_optimizer(nn.Linear(2, 2), FitConfig(beta2=0.99))
    assert optimizer.param_groups[0]["betas"] == (0.9, 0.99)


def test_schedule_warms_up_then_decays():
    cfg = FitConfig(steps=100, warmup_steps=10, schedule="cosine", min_lr_ratio=0.1)
    assert lr_factor(0, cfg) == pytest.approx(0.1)
    assert lr_factor(9, cfg) == pytest.approx(1.0)
    assert lr_factor(55, cfg) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_factor(100, cfg) == pytest.approx(0.1)
    assert lr_factor(50, FitConfig(steps=100, schedule="linear", min_lr_ratio=0.0)) == pytest.approx(0.5)


def test_early_stopping(tmp_path):
    cfg = FitConfig(steps=1000, lr=0.0, eval_every=10, patience=2)  # lr 0: val never improves after the first
    _, result, _ = train(tmp_path, cfg)
    assert result.stopped_early and result.step == 30


def test_restore_best_ends_with_the_best_validation_weights(tmp_path):
    cfg = FitConfig(steps=200, lr=0.3, schedule="constant", eval_every=10, restore_best=True)  # lr 0.3: noisy
    model, result, _ = train(tmp_path, cfg)
    val_losses = [h["val_loss"] for h in result.history if "val_loss" in h]
    assert val_losses[-1] > result.best_val == min(val_losses)  # the last weights were not the best ...
    assert evaluate(model, toy_data(), "val") == pytest.approx(result.best_val)  # ... and are gone


def test_gradient_accumulation_matches_one_big_batch(tmp_path):
    """Two micro-batches of 16 give the same update as one batch of 32 (same examples, no dropout)."""
    x, y = torch.randn(32, 2), torch.randn(32)

    class Fixed(TensorData):
        def train_batch(self, batch_size, generator):
            start = self.calls % (32 // batch_size) * batch_size
            self.calls += 1
            return x[start : start + batch_size], y[start : start + batch_size]

    weights = []
    for accum in (1, 2):
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(2, 1))
        model.forward = lambda inp, t, m=model: (
            m[0](inp).squeeze(-1),
            nn.functional.mse_loss(m[0](inp).squeeze(-1), t),
        )
        data = Fixed({"train": (x, y), "val": (x, y)})
        data.calls = 0
        fit(
            model,
            data,
            FitConfig(steps=1, batch_size=32, grad_accum=accum, lr=0.1, grad_clip=0),
            Ctx(tmp_path),
        )
        weights.append(model[0].weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_ctrl_c_saves_and_resume_continues_exactly(tmp_path):
    """A real SIGINT at step 120 saves a checkpoint; resuming gives the very losses of an unbroken run."""
    cfg = FitConfig(steps=300, batch_size=32, lr=1e-2, eval_every=50, log_every=1, ckpt_every=1000)
    _, unbroken, _ = train(tmp_path / "a", cfg)

    class CtrlCAt120(Recorder):
        def log_metrics(self, step, metrics):
            super().log_metrics(step, metrics)
            if step == 120 and "train_loss" in metrics:
                signal.raise_signal(signal.SIGINT)

    torch.manual_seed(0)
    ctx = Ctx(tmp_path / "b")
    ctx.tracker = CtrlCAt120()
    with pytest.raises(RunInterrupted, match="interrupted at step 120"):
        fit(Regression(), toy_data(), cfg, ctx)
    state = read_checkpoint(ctx.checkpoint_path)
    assert state.step == 120
    _, resumed, _ = train(tmp_path / "b", cfg, resume=state)
    assert resumed.history == unbroken.history
