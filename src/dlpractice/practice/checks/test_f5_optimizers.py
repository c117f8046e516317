"""Checks of lab f5: Adam's update against torch.optim for 100 steps, and the warm-up cosine schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close
from dlpractice.scratch import Tensor

STEPS = 100

ADAMS = {
    "adam": ("Adam", torch.optim.Adam, {"lr": 0.01}),
    "adam l2 amsgrad": ("Adam", torch.optim.Adam, {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
    "adamw": ("AdamW", torch.optim.AdamW, {"lr": 0.01}),
    "adamw strong decay": (
        "AdamW",
        torch.optim.AdamW,
        {"lr": 0.01, "weight_decay": 0.5, "betas": (0.8, 0.99)},
    ),
}


def tiny_mlp_problem(seed: int = 0) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """Initial weights of a 4-5-2 tanh MLP, and a batch to regress."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal((4, 5)) * 0.5, np.zeros(5), rng.standard_normal((5, 2)) * 0.5, np.zeros(2)]
    return params, rng.standard_normal((8, 4)), rng.standard_normal((8, 2))


def mlp_loss(params, x, y):
    """The same expression for both engines: mean squared error of tanh(x W1 + b1) W2 + b2."""
    w1, b1, w2, b2 = params
    prediction = (x @ w1 + b1).tanh() @ w2 + b2
    return ((prediction - y) ** 2).mean()


def assert_same_trajectory(ours_cls, torch_cls, kwargs) -> None:
    """Both optimisers from the same start on the same problem: the same parameters after every step."""
    init, x, y = tiny_mlp_problem()
    ours = [Tensor(p.copy(), requires_grad=True) for p in init]
    theirs = [torch.tensor(p, requires_grad=True) for p in init]
    ours_opt, torch_opt = ours_cls(ours, **kwargs), torch_cls(theirs, **kwargs)
    for step in range(STEPS):
        ours_opt.zero_grad()
        mlp_loss(ours, Tensor(x), Tensor(y)).backward()
        ours_opt.step()
        torch_opt.zero_grad()
        mlp_loss(theirs, torch.tensor(x), torch.tensor(y)).backward()
        torch_opt.step()
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            assert_close(
                a.data,
                b.detach().numpy(),
                f"after step {step + 1}, parameter {i} should equal torch.optim.{torch_cls.__name__}'s "
                f"with {kwargs} (moments, bias correction, then the step)",
                atol=1e-6,
            )


@pytest.mark.exercise("f5.1")
@pytest.mark.parametrize("name", ADAMS)
def test_adam_family_matches_torch_for_100_steps(impl, name):
    """Adam, AMSGrad with L2 and AdamW follow torch.optim's parameters for 100 steps."""
    ours_name, torch_cls, kwargs = ADAMS[name]
    assert_same_trajectory(getattr(impl, ours_name), torch_cls, kwargs)


@pytest.mark.exercise("f5.2")
def test_warmup_cosine_shape(impl) -> None:
    """A linear rise over `warmup` steps to the peak, then a cosine decay to zero at `total`."""
    lrs = [impl.warmup_cosine(t, 0.1, warmup=10, total=100) for t in range(101)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1), (
        f"with warmup 10 and peak 0.1, step 0 should give 0.01 and step 9 the peak 0.1; "
        f"got {lrs[0]:.4g} and {lrs[9]:.4g}"
    )
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10])), "the rate should rise at every warm-up step"
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:])), "after the warm-up the rate should only fall"
    assert lrs[55] == pytest.approx(0.05, abs=1e-3) and lrs[100] == pytest.approx(0.0, abs=1e-12), (
        f"half-way through the decay the rate should be half the peak (0.05), and 0 at the end; "
        f"got {lrs[55]:.4g} and {lrs[100]:.4g}"
    )
