"""Optimisers, learning-rate schedules and an LR finder for the `Tensor` engine (lab f5).

The update rules are torch.optim's, written out with the same defaults, so both follow the same
trajectory (tests check 100 steps to 1e-6). Simplified: one parameter group with one `lr`
attribute; no `maximize`, `foreach`, `fused` or `capturable`; no state_dict. Schedules are plain
functions of the step number, and `LRScheduler` writes one into `optimizer.lr` at every step.
`one_cycle_lr` anneals only the learning rate: torch's OneCycleLR also cycles momentum by default
(`cycle_momentum=True`), which matches ours only with `cycle_momentum=False`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np

from dlpractice.scratch.tensor import Tensor


class Optimizer:
    def __init__(self, params: Sequence[Tensor], lr: float):
        self.params = list(params)
        self.lr = lr

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        for i, p in enumerate(self.params):
            if p.grad is not None:
                self._update(i, p, p.grad)

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        """Change p.data in place given its gradient; `i` indexes the per-parameter state."""
        raise NotImplementedError


class SGD(Optimizer):
    """p -= lr * g, with optional L2 weight decay, (Nesterov) momentum and dampening, as torch.optim.SGD."""

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-3,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        super().__init__(params, lr)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        self.momentum, self.dampening, self.nesterov = momentum, dampening, nesterov
        self.weight_decay = weight_decay
        self.velocity: list[np.ndarray | None] = [None] * len(self.params)

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        if self.momentum:
            if self.velocity[i] is None:
                self.velocity[i] = grad.copy()  # torch starts the buffer at the first gradient, undamped
            else:
                self.velocity[i] = self.momentum * self.velocity[i] + (1 - self.dampening) * grad
            grad = grad + self.momentum * self.velocity[i] if self.nesterov else self.velocity[i]
        p.data -= self.lr * grad


class RMSprop(Optimizer):
    """Divide by a running root-mean-square of the gradient, as torch.optim.RMSprop."""

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-2,
        alpha: float = 0.99,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        momentum: float = 0.0,
        centered: bool = False,
    ):
        super().__init__(params, lr)
        self.alpha, self.eps, self.weight_decay = alpha, eps, weight_decay
        self.momentum, self.centered = momentum, centered
        self.square_avg = [np.zeros_like(p.data) for p in self.params]
        self.grad_avg = [np.zeros_like(p.data) for p in self.params] if centered else []
        self.velocity = [np.zeros_like(p.data) for p in self.params] if momentum else []

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        self.square_avg[i] = self.alpha * self.square_avg[i] + (1 - self.alpha) * grad * grad
        mean_square = self.square_avg[i]
        if self.centered:  # use the variance instead of the raw second moment
            self.grad_avg[i] = self.alpha * self.grad_avg[i] + (1 - self.alpha) * grad
            mean_square = mean_square - self.grad_avg[i] ** 2
        step = grad / (np.sqrt(mean_square) + self.eps)
        if self.momentum:
            self.velocity[i] = self.momentum * self.velocity[i] + step
            step = self.velocity[i]
        p.data -= self.lr * step


class Adagrad(Optimizer):
    """Divide by the root of the sum of all past squared gradients, as torch.optim.Adagrad."""

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-2,
        lr_decay: float = 0.0,
        weight_decay: float = 0.0,
        initial_accumulator_value: float = 0.0,
        eps: float = 1e-10,
    ):
        super().__init__(params, lr)
        self.lr_decay, self.weight_decay, self.eps = lr_decay, weight_decay, eps
        self.sum_squares = [np.full_like(p.data, initial_accumulator_value) for p in self.params]
        self.steps = [0] * len(self.params)

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        self.steps[i] += 1
        if self.weight_decay:
            grad = grad + self.weight_decay * p.data
        lr = self.lr / (1 + (self.steps[i] - 1) * self.lr_decay)
        self.sum_squares[i] += grad * grad
        p.data -= lr * grad / (np.sqrt(self.sum_squares[i]) + self.eps)


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) as torch.optim.Adam; weight_decay here is L2 added to the gradient."""

    decoupled_weight_decay = False

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay, self.amsgrad = betas, eps, weight_decay, amsgrad
        self.m = [np.zeros_like(p.data) for p in self.params]  # first moment
        self.v = [np.zeros_like(p.data) for p in self.params]  # second moment
        self.v_max = [np.zeros_like(p.data) for p in self.params] if amsgrad else []
        self.steps = [0] * len(self.params)

    def _update(self, i: int, p: Tensor, grad: np.ndarray) -> None:
        beta1, beta2 = self.betas
        self.steps[i] += 1
        t = self.steps[i]
        if self.decoupled_weight_decay:
            p.data *= 1 - self.lr * self.weight_decay
        elif self.weight_decay:
            grad = grad + self.weight_decay * p.data
        # BEGIN EXERCISE f5.1: update both moments in place, correct their bias, and step p.data
        m, v = self.m[i], self.v[i]
        m *= beta1  # in place: no new arrays for the moments at every step
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if self.amsgrad:
            np.maximum(self.v_max[i], v, out=self.v_max[i])
            v = self.v_max[i]
        denom = np.sqrt(v) * (1 / math.sqrt(1 - beta2**t)) + self.eps
        p.data -= (self.lr / (1 - beta1**t)) * m / denom
        # END EXERCISE


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019): p *= 1 - lr * wd before the step."""

    decoupled_weight_decay = True

    def __init__(
        self,
        params: Sequence[Tensor],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
    ):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ----- learning-rate schedules: the learning rate as a function of the step number -----


def step_lr(step: int, base_lr: float, step_size: int, gamma: float = 0.1) -> float:
    """Multiply by gamma every step_size steps (torch's StepLR)."""
    return base_lr * gamma ** (step // step_size)


def cosine_lr(step: int, base_lr: float, total_steps: int, min_lr: float = 0.0) -> float:
    """Half a cosine from base_lr down to min_lr over total_steps (torch's CosineAnnealingLR)."""
    return min_lr + (base_lr - min_lr) * (1 + math.cos(math.pi * step / total_steps)) / 2


def linear_warmup_lr(step: int, base_lr: float, warmup_steps: int, start_factor: float = 1 / 3) -> float:
    """Rise linearly from start_factor * base_lr to base_lr, then stay (torch's LinearLR)."""
    progress = min(step, warmup_steps) / warmup_steps
    return base_lr * (start_factor + (1 - start_factor) * progress)


def one_cycle_lr(
    step: int,
    max_lr: float,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
) -> float:
    """Cosine up from max_lr/div_factor to max_lr, then down to a tiny lr (torch's OneCycleLR, lr only)."""
    start_lr = max_lr / div_factor
    final_lr = start_lr / final_div_factor
    peak_step = pct_start * total_steps - 1  # torch's phase boundary, kept exactly

    def anneal(start: float, end: float, fraction: float) -> float:
        return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)

    if step <= peak_step:
        return anneal(start_lr, max_lr, step / peak_step)
    return anneal(max_lr, final_lr, (step - peak_step) / (total_steps - 1 - peak_step))


class LRScheduler:
    """Set optimizer.lr = schedule(step) now and after every step(): torch's scheduler classes in one.

    Example: `LRScheduler(opt, lambda t: cosine_lr(t, base_lr=0.1, total_steps=1000))`.
    """

    def __init__(self, optimizer: Optimizer, schedule: Callable[[int], float]):
        self.optimizer, self.schedule = optimizer, schedule
        self.last_step = 0
        optimizer.lr = schedule(0)

    def step(self) -> None:
        self.last_step += 1
        self.optimizer.lr = self.schedule(self.last_step)


def lr_finder(
    optimizer: Optimizer,
    train_step: Callable[[], float],
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    smoothing: float = 0.98,
    diverge_factor: float = 4.0,
) -> dict[str, list[float] | float]:
    """Smith's LR range test: raise the lr exponentially each step and watch the loss.

    `train_step()` does one forward, backward and `optimizer.step()` and returns the loss. The loss is
    smoothed by an exponential moving average (bias-corrected); the run stops once it exceeds
    diverge_factor times its best. The suggested lr is where the smoothed loss falls fastest per
    unit of log(lr). The model is trained along the way: re-initialise it afterwards.
    Returns {"lrs": [...], "losses": [... smoothed ...], "suggested_lr": lr}.
    """
    growth = (end_lr / start_lr) ** (1 / max(num_steps - 1, 1))
    lrs: list[float] = []
    losses: list[float] = []
    average = 0.0
    best = math.inf
    for i in range(num_steps):
        optimizer.lr = start_lr * growth**i
        average = smoothing * average + (1 - smoothing) * train_step()
        smoothed = average / (1 - smoothing ** (i + 1))
        if not math.isfinite(smoothed):
            break
        lrs.append(optimizer.lr)
        losses.append(smoothed)
        best = min(best, smoothed)
        if smoothed > diverge_factor * best:
            break
    if not losses:
        raise ValueError(f"the loss was not finite at the first step (lr={start_lr:g})")
    slopes = np.gradient(np.array(losses), np.log(lrs)) if len(losses) > 1 else np.zeros(1)
    return {"lrs": lrs, "losses": losses, "suggested_lr": lrs[int(np.argmin(slopes))]}
