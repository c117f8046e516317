"""Optimisers follow torch.optim step by step; schedules give torch.optim.lr_scheduler's rates."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.test_f5_optimizers import ADAMS, assert_same_trajectory
from dlpractice.scratch import Tensor, optim

# (our class, torch class, keyword arguments shared by both)
OPTIMIZERS = {
    "sgd": (optim.SGD, torch.optim.SGD, {"lr": 0.1}),
    "sgd weight decay": (optim.SGD, torch.optim.SGD, {"lr": 0.1, "weight_decay": 0.05}),
    "sgd momentum": (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9}),
    "sgd nesterov": (optim.SGD, torch.optim.SGD, {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    "sgd dampening": (
        optim.SGD,
        torch.optim.SGD,
        {"lr": 0.05, "momentum": 0.8, "dampening": 0.3, "weight_decay": 0.01},
    ),
    "rmsprop": (optim.RMSprop, torch.optim.RMSprop, {}),
    "rmsprop centered": (
        optim.RMSprop,
        torch.optim.RMSprop,
        {"lr": 0.005, "centered": True, "momentum": 0.5, "weight_decay": 0.01},
    ),
    "adagrad": (optim.Adagrad, torch.optim.Adagrad, {"lr": 0.1}),
    "adagrad decay": (
        optim.Adagrad,
        torch.optim.Adagrad,
        {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01, "initial_accumulator_value": 0.1},
    ),
    # Adam and AdamW: the f5 check's cases (which name our class, as the learner's file has it)
    **{name: (getattr(optim, ours), torch_cls, kwargs) for name, (ours, torch_cls, kwargs) in ADAMS.items()},
}


@pytest.mark.parametrize("name", [n for n in OPTIMIZERS if not n.startswith("adam")])
def test_optimizer_matches_torch_for_100_steps(name):
    assert_same_trajectory(*OPTIMIZERS[name])


def test_optimizers_use_torch_defaults():
    params = [Tensor(np.zeros(1), requires_grad=True)]
    for ours_cls, torch_cls, _ in OPTIMIZERS.values():
        assert ours_cls(params).lr == torch_cls([torch.zeros(1, requires_grad=True)]).defaults["lr"]
    assert optim.AdamW(params).weight_decay == 1e-2


def test_nesterov_needs_momentum():
    with pytest.raises(ValueError, match="Nesterov"):
        optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=0.1, nesterov=True)


def test_float32_parameters_stay_float32():
    p = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    (p * p).sum().backward()
    opt.step()
    assert p.data.dtype == np.float32


# ----- schedules -----


def torch_lrs(make_scheduler, steps: int, lr: float = 0.1) -> list[float]:
    """The lr torch's scheduler gives at steps 0..steps-1."""
    opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=lr)
    scheduler = make_scheduler(opt)
    lrs = []
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    return lrs


SCHEDULES = {
    "step": (
        lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=7, gamma=0.5),
        lambda t: optim.step_lr(t, 0.1, step_size=7, gamma=0.5),
        40,
    ),
    "cosine": (
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=0.001),
        lambda t: optim.cosine_lr(t, 0.1, total_steps=30, min_lr=0.001),
        31,
    ),
    "linear warm-up": (
        lambda opt: torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=10),
        lambda t: optim.linear_warmup_lr(t, 0.1, warmup_steps=10, start_factor=0.25),
        20,
    ),
    "one-cycle": (
        lambda opt: torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.1, total_steps=50, cycle_momentum=False
        ),
        lambda t: optim.one_cycle_lr(t, 0.1, total_steps=50),
        50,
    ),
}


@pytest.mark.parametrize("name", SCHEDULES)
def test_schedule_matches_torch_scheduler(name):
    make_torch_scheduler, schedule, steps = SCHEDULES[name]
    ours = [schedule(t) for t in range(steps)]
    np.testing.assert_allclose(ours, torch_lrs(make_torch_scheduler, steps), rtol=1e-9, atol=1e-12)


def test_scheduler_sets_the_optimizer_lr():
    opt = optim.SGD([Tensor(np.zeros(1), requires_grad=True)], lr=1.0)
    scheduler = optim.LRScheduler(opt, lambda t: optim.cosine_lr(t, 0.1, total_steps=10))
    assert opt.lr == pytest.approx(0.1)
    for _ in range(10):
        scheduler.step()
    assert opt.lr == pytest.approx(0.0)


def test_lr_finder_sweeps_up_and_stops_when_the_loss_explodes():
    w = Tensor(np.array([5.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.0)

    def train_step() -> float:
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        opt.step()
        return loss.item()

    result = optim.lr_finder(opt, train_step, start_lr=1e-4, end_lr=10.0, num_steps=100)
    lrs = result["lrs"]
    assert lrs[0] == pytest.approx(1e-4) and all(b > a for a, b in zip(lrs, lrs[1:], strict=False))
    assert len(lrs) < 100  # lr > 1 makes w*w diverge, which ends the sweep
    assert 1e-4 < result["suggested_lr"] < 1.0
    assert math.isfinite(min(result["losses"]))
