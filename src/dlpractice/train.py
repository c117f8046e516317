"""fit(): the one explicit training loop every lab uses, on Accelerate.

Read it top to bottom: draw a batch, forward (bf16 autocast on GPU), backward, clip, step the optimiser
and the LR schedule, log, evaluate now and then, checkpoint now and then. Models follow one contract,
`logits, loss = model(*inputs, targets)`. Ctrl-C (or SIGTERM) finishes the current step, saves a
checkpoint and stops; `--resume` continues from it and reaches the same losses as an unbroken run.

Several processes (`torchrun` / `accelerate launch`, DDP): `batch_size` stays the GLOBAL batch. Every process
draws the same batch from the same generator and trains on its own slice of it, so N processes follow the
same loss curve as one (up to float rounding) and a checkpoint moves between process counts. The logged
loss is the mean over processes; only the main process logs, writes checkpoints and weights.
"""

from __future__ import annotations

import math
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch
from accelerate import Accelerator

from dlpractice.checkpoint import (
    TrainState,
    capture_rng,
    load_weights,
    restore_rng,
    save_checkpoint,
    save_weights,
)
from dlpractice.config import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    UnitInterval,
)
from dlpractice.data.batching import Batches
from dlpractice.device import pick_device
from dlpractice.errors import DlpError, RunInterrupted

if TYPE_CHECKING:
    from dlpractice.runner import RunContext


@dataclass
class FitConfig:
    """The knobs of fit(). A lab's Config inherits these and adds its own."""

    steps: PositiveInt = 1000  # optimiser updates
    batch_size: PositiveInt = 32  # examples per update (split over grad_accum micro-batches)
    grad_accum: PositiveInt = 1
    optimizer: Literal["adamw", "sgd"] = "adamw"
    lr: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    momentum: UnitInterval = 0.9  # sgd only
    beta2: Probability = 0.999  # adamw's second-moment decay; nanoGPT uses 0.99 for its small models
    schedule: Literal["cosine", "linear", "constant"] = "cosine"
    warmup_steps: NonNegativeInt = 0
    min_lr_ratio: UnitInterval = 0.1  # the schedule ends at lr * min_lr_ratio
    grad_clip: NonNegativeFloat = 1.0  # max global grad norm; 0 disables
    eval_every: PositiveInt = 500
    log_every: PositiveInt = 50
    patience: NonNegativeInt = 0  # stop after this many evaluations without improvement; 0 never stops early
    # end with the weights of the best validation loss (kept in run_dir/best.safetensors and written to
    # model.safetensors); checkpoint.safetensors keeps the last weights, which a resumed run goes on from
    restore_best: bool = False
    ckpt_every: PositiveInt = 1000


@dataclass
class FitResult:
    step: int
    history: list[dict[str, float]] = field(
        default_factory=list
    )  # {"step", "train_loss"} and {"step", "val_loss"}
    best_val: float = math.inf
    stopped_early: bool = False
    seconds: float = 0.0  # training time of the whole run (a resumed run adds the time before its checkpoint)
    targets_seen: int = 0  # predictions trained on in the whole run (padding excluded)

    @property
    def targets_per_second(self) -> float:
        """Training throughput: tokens/s for a language model, examples/s for a classifier."""
        return self.targets_seen / max(self.seconds, 1e-9)


def count_targets(targets: torch.Tensor) -> torch.Tensor:
    """Predictions a batch trains: class ids below 0 are padding (ignore_index); real values all count.

    A 0-d tensor on the targets' device, so counting never waits for the accelerator.
    """
    if targets.is_floating_point():
        return torch.tensor(targets.numel(), device=targets.device)
    return (targets >= 0).sum()


def lr_factor(step: int, cfg: FitConfig) -> float:
    """Multiplier of cfg.lr at `step`: linear warm-up, then cosine/linear decay to min_lr_ratio."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    if cfg.schedule == "constant":
        return 1.0
    decay = 0.5 * (1 + math.cos(math.pi * progress)) if cfg.schedule == "cosine" else 1 - progress
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * decay


def make_optimizer(model: torch.nn.Module, cfg: FitConfig) -> torch.optim.Optimizer:
    """AdamW or SGD; weight decay only on matrices (not biases, norms or gains), as in nanoGPT."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": cfg.weight_decay},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, cfg.beta2))


def make_accelerator(device: str, grad_accum: int) -> Accelerator:
    device = pick_device(device)
    bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
    return Accelerator(
        cpu=device == "cpu", mixed_precision="bf16" if bf16 else "no", gradient_accumulation_steps=grad_accum
    )


@torch.no_grad()
def evaluate(
    model: torch.nn.Module, data: Batches, split: str, accelerator: Accelerator | None = None
) -> float:
    """Mean loss over a split, weighted by batch size."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for batch in data.eval_batches(split):
        *inputs, targets = (t.to(device) for t in batch)
        with accelerator.autocast() if accelerator else _nothing():
            _, loss = model(*inputs, targets)
        total += loss.item() * len(targets)
        count += len(targets)
    model.train(was_training)
    return total / count


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class _QuietProgress:
    """The progress bar of a process that is not the main one: one bar per run, not one per process."""

    @contextmanager
    def __call__(self, total: int, completed: int = 0) -> Iterator[_QuietProgress]:
        yield self

    def update(self, step: int, **fields: float) -> None:
        pass


def shard(batch: tuple[torch.Tensor, ...], rank: int, world: int) -> tuple[torch.Tensor, ...]:
    """Process `rank`'s contiguous slice of a batch every process drew alike (rows split evenly)."""
    if world == 1:
        return batch
    size = len(batch[0]) // world
    return tuple(t[rank * size : (rank + 1) * size] for t in batch)


def micro_batch_size(cfg: FitConfig, processes: int) -> int:
    """Examples per micro-batch over all processes; each process must get the same number of them."""
    micro_batch = max(1, cfg.batch_size // cfg.grad_accum)
    if micro_batch % processes:
        raise DlpError(
            f"batch_size {cfg.batch_size} over grad_accum {cfg.grad_accum} gives {micro_batch} examples per "
            f"micro-batch, which {processes} processes cannot share evenly; use a batch_size divisible by "
            f"{cfg.grad_accum * processes}"
        )
    return micro_batch


def stop_agreed(requested: bool, accelerator: Accelerator) -> bool:
    """Whether any process was asked to stop.

    A signal reaches the processes at different steps; unless all of them stop after the same one, the
    main process waits in the checkpoint's barrier while the others wait in the next gradient all-reduce.
    """
    if accelerator.num_processes == 1:
        return requested
    flag = torch.tensor(int(requested), device=accelerator.device)
    return bool(accelerator.reduce(flag, "max"))


class StopFlag:
    """Turns the first Ctrl-C / SIGTERM into a polite request to stop at the next step boundary.

    A second Ctrl-C interrupts at once. Handlers are installed only in the main thread.
    """

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: object) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True

    def __enter__(self) -> StopFlag:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def fit(model: torch.nn.Module, data: Batches, cfg: FitConfig, ctx: RunContext) -> FitResult:
    """Train `model` on `data` for cfg.steps updates; resumes from ctx.resume when given."""
    accelerator = make_accelerator(ctx.device, cfg.grad_accum)
    optimizer = make_optimizer(model, cfg)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step, cfg))
    # minibatch order: one stream shared by every process (each trains on its slice of the same batch)
    generator = torch.Generator().manual_seed(ctx.seed)
    rank, world = accelerator.process_index, accelerator.num_processes
    micro_batch = micro_batch_size(cfg, world)
    result = FitResult(step=0)
    if ctx.resume is not None:
        result = _restore(ctx.resume, model, optimizer, scheduler, generator)
    model, optimizer = accelerator.prepare(model, optimizer)
    model.train()
    main = accelerator.is_main_process
    tracker_log = ctx.tracker.log_metrics if main else lambda step, metrics: None
    bad_evals = int(ctx.resume.extra.get("bad_evals", 0)) if ctx.resume else 0
    started = time.perf_counter() - result.seconds  # a resumed run goes on counting from its checkpoint
    seen_before = result.targets_seen
    seen = torch.zeros((), dtype=torch.long, device=accelerator.device)  # this process, this session
    best_path = ctx.run_dir / "best.safetensors"  # on disk, so that a resumed run still has it

    def checkpoint() -> None:
        targets_seen = seen_before + int(accelerator.reduce(seen, "sum"))  # every process takes part
        if accelerator.is_main_process:
            ctx.tracker.flush()
            extra = {"history": result.history, "best_val": result.best_val, "bad_evals": bad_evals}
            extra |= {"seconds": time.perf_counter() - started, "targets_seen": targets_seen}
            state = TrainState(
                step=result.step,
                model=accelerator.unwrap_model(model).state_dict(),
                optimizer=optimizer.state_dict(),
                scheduler=scheduler.state_dict(),
                batch_rng=generator.get_state(),
                rng=capture_rng(),
                extra=extra,
            )
            save_checkpoint(ctx.checkpoint_path, state)
        accelerator.wait_for_everyone()

    bar = ctx.progress if main else _QuietProgress()
    with StopFlag() as stop, bar(total=cfg.steps, completed=result.step) as progress:
        while result.step < cfg.steps:
            # one optimiser update = grad_accum micro-batches
            for _ in range(cfg.grad_accum):
                batch = shard(data.train_batch(micro_batch, generator), rank, world)
                *inputs, targets = (t.to(accelerator.device) for t in batch)
                seen += count_targets(targets)
                with accelerator.accumulate(model), accelerator.autocast():
                    _, loss = model(*inputs, targets)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and cfg.grad_clip > 0:
                        accelerator.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
            scheduler.step()
            result.step += 1
            step = result.step

            if step % cfg.log_every == 0 or step == cfg.steps:
                # the last micro-batch's loss, averaged over processes: the loss of that global micro-batch
                train_loss = accelerator.reduce(loss.detach(), "mean").item()
                result.history.append({"step": step, "train_loss": train_loss})
                tracker_log(step, {"train_loss": train_loss, "lr": scheduler.get_last_lr()[0]})
                progress.update(step, loss=train_loss)
            if step % cfg.eval_every == 0 or step == cfg.steps:
                # every process evaluates the whole split on the same weights, so all agree on early stopping
                val_loss = evaluate(accelerator.unwrap_model(model), data, "val", accelerator)
                result.history.append({"step": step, "val_loss": val_loss})
                tracker_log(step, {"val_loss": val_loss})
                progress.update(step, val=val_loss)
                on_eval = getattr(ctx, "on_eval", None)  # a sweep's pruner, which may stop the run here
                if on_eval is not None:
                    on_eval(step, val_loss)
                if val_loss < result.best_val:
                    result.best_val, bad_evals = val_loss, 0
                    if cfg.restore_best and main:
                        save_weights(best_path, accelerator.unwrap_model(model))
                else:
                    bad_evals += 1
                if cfg.patience and bad_evals >= cfg.patience:
                    result.stopped_early = True
                    break
            if stop_agreed(stop.requested, accelerator):
                checkpoint()
                raise RunInterrupted(f"interrupted at step {step}/{cfg.steps}; checkpoint saved")
            if step % cfg.ckpt_every == 0:
                checkpoint()
    checkpoint()
    if cfg.restore_best:
        restore_best_weights(best_path, accelerator.unwrap_model(model), accelerator)
    if main:
        save_weights(ctx.run_dir / "model.safetensors", accelerator.unwrap_model(model))
    result.seconds = time.perf_counter() - started
    result.targets_seen = seen_before + int(accelerator.reduce(seen, "sum"))
    return result


def restore_best_weights(path: Path, model: torch.nn.Module, accelerator: Accelerator) -> None:
    """The main process reads the best weights it wrote and sends them to the others (whose disks differ)."""
    if accelerator.is_main_process:
        load_weights(path, model)
    if accelerator.num_processes > 1:
        for tensor in model.state_dict().values():
            torch.distributed.broadcast(tensor, src=0)


def _restore(state: TrainState, model, optimizer, scheduler, generator) -> FitResult:
    """Put model, optimiser, schedule and every RNG back exactly as they were at the checkpoint."""
    model.load_state_dict(state.model)
    optimizer.load_state_dict(state.optimizer)
    scheduler.load_state_dict(state.scheduler)
    generator.set_state(state.batch_rng)
    restore_rng(state.rng)
    return FitResult(
        step=state.step,
        history=list(state.extra.get("history", [])),
        best_val=state.extra.get("best_val", math.inf),
        seconds=state.extra.get("seconds", 0.0),
        targets_seen=state.extra.get("targets_seen", 0),
    )
