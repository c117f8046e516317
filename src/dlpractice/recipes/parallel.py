"""Data and model parallelism written by hand, for lab p4: what DDP, DistributedSampler and a pipeline do.

- Data parallel: every process holds the whole model, runs its shard of the batch, and the gradients are
  averaged over processes before the step (`average_gradients`: one flat bucket, one all-reduce, divided
  by the world size, as DDP does per bucket). `shard_indices` is DistributedSampler's split of a dataset.
- Model (pipeline) parallel: the MLP's layers are cut into one stage per process; activations go forward
  with send/recv and their gradients come back the same way (`stage_forward`, `stage_backward`). GPipe
  cuts the batch into micro-batches so that the stages work at the same time; with one micro-batch
  (naive model parallel) all stages but one are idle at any moment.
Communication goes through a `Wire` so that the exercises' checks run in one process with a fake one.
Simplified: no overlap of all-reduce with backward (DDP starts a bucket's all-reduce as soon as its
gradients are ready); the pipeline runs all forwards, then all backwards (GPipe), not 1F1B.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.errors import DlpError
from dlpractice.models.mlp import MLP

AllReduce = Callable[[torch.Tensor], object]  # sums a tensor in place over all processes


def average_gradients(parameters: Iterable[nn.Parameter], world_size: int, all_reduce: AllReduce) -> None:
    """Replace every gradient by its mean over the processes, with ONE all-reduce of a flat bucket."""
    grads = [p.grad for p in parameters if p.grad is not None]
    # BEGIN EXERCISE p4.1: one flat bucket of the gradients, all-reduced once, over world_size, copied back
    bucket = torch.cat([g.reshape(-1) for g in grads])  # (P,) every gradient, one message
    all_reduce(bucket)  # sum over processes
    bucket /= world_size
    offset = 0
    for g in grads:
        g.copy_(bucket[offset : offset + g.numel()].view_as(g))
        offset += g.numel()
    # END EXERCISE


def shard_indices(n: int, rank: int, world_size: int, shuffle: bool = False, seed: int = 0) -> list[int]:
    """The dataset indices process `rank` reads, as torch's DistributedSampler gives them (drop_last False).

    Every process gets ceil(n / world_size) indices: the (shuffled) order is padded by repeating its
    start until it divides evenly, then process r takes every world_size-th index from position r.
    """
    # BEGIN EXERCISE p4.2: the (seeded randperm) order, padded by repeating its start, then rank::world_size
    if shuffle:
        order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    else:
        order = list(range(n))
    total = math.ceil(n / world_size) * world_size
    order = (order * math.ceil(total / n))[:total]  # padding repeats the start (several times if n is tiny)
    return order[rank:total:world_size]
    # END EXERCISE


class Wire(Protocol):
    """Point-to-point messages between pipeline stages."""

    def send(self, tensor: torch.Tensor, to: int) -> None: ...

    def recv(self, shape: Sequence[int], sender: int) -> torch.Tensor: ...


class TorchWire:
    """torch.distributed's isend/recv; the sends are waited for at the end of the step (`flush`)."""

    def __init__(self) -> None:
        self.pending: list[torch.distributed.Work] = []

    def send(self, tensor: torch.Tensor, to: int) -> None:
        self.pending.append(torch.distributed.isend(tensor.contiguous(), to))

    def recv(self, shape: Sequence[int], sender: int) -> torch.Tensor:
        buffer = torch.empty(tuple(shape))
        torch.distributed.recv(buffer, sender)
        return buffer

    def flush(self) -> None:
        for work in self.pending:
            work.wait()
        self.pending.clear()


@dataclass
class Timeline:
    """What a stage computed and when (seconds on the monotonic clock, which all processes here share)."""

    events: list[tuple[str, int, float, float]] = field(default_factory=list)  # (F|B, micro, start, end)

    def busy(self) -> float:
        return sum(end - start for _, _, start, end in self.events)


def stage_forward(
    stage: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor | None,
    in_shape: Sequence[int],
    rank: int,
    world_size: int,
    wire: Wire,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One micro-batch through this process's stage: (the stage's input, its output).

    The first stage reads `x`; the others receive their input from the previous stage, as a leaf that
    needs a gradient so that stage_backward can send that gradient back. All but the last stage send
    their output on (without its graph: the graph stays here for the backward).
    """
    # BEGIN EXERCISE p4.3: receive the input unless first (a leaf needing grad), run, send unless last
    if rank > 0:
        x = wire.recv(in_shape, rank - 1).requires_grad_()
    out = stage(x)
    if rank < world_size - 1:
        wire.send(out.detach(), rank + 1)
    return x, out
    # END EXERCISE


def stage_backward(
    x: torch.Tensor,
    out: torch.Tensor,
    rank: int,
    world_size: int,
    wire: Wire,
    timeline: Timeline | None = None,
    micro: int = 0,
) -> None:
    """The backward of one micro-batch: the last stage's `out` is the loss; the others receive d out."""
    grad = None if rank == world_size - 1 else wire.recv(out.shape, rank + 1)
    start = time.monotonic()
    out.backward(grad)
    if timeline is not None:
        timeline.events.append(("B", micro, start, time.monotonic()))
    if rank > 0:
        wire.send(x.grad, rank - 1)


def build_mlp(width: int, depth: int, seed: int) -> MLP:
    """The lab's model, built alike in every process from the same seed."""
    torch.manual_seed(seed)
    return MLP(784, 10, width=width, depth=depth)


def stage_layers(model: MLP, rank: int, world_size: int) -> list[int]:
    """Which of the model's layers (its blocks, then its head) process `rank` holds: contiguous groups."""
    n_layers = len(model.blocks) + 1
    if n_layers < world_size:
        raise DlpError(f"a model of {n_layers} layers cannot be cut into {world_size} pipeline stages")
    bounds = [round(i * n_layers / world_size) for i in range(world_size + 1)]
    return list(range(bounds[rank], bounds[rank + 1]))


def stage_module(model: MLP, layers: list[int]) -> nn.Sequential:
    every = [*model.blocks, model.head]
    return nn.Sequential(*(every[i] for i in layers))


def stage_state(model: MLP, layers: list[int]) -> dict[str, torch.Tensor]:
    """The stage's weights under the whole model's names, so the stages' files join into one state."""
    prefixes = tuple(f"blocks.{i}." if i < len(model.blocks) else "head." for i in layers)
    return {k: v for k, v in model.state_dict().items() if k.startswith(prefixes)}


def pipeline_step(
    stage: nn.Module,
    x: torch.Tensor,  # (B, 784) every stage gets the batch; only the first reads it
    y: torch.Tensor,  # (B,) only the last stage reads it
    micro_batches: int,
    width: int,
    rank: int,
    world_size: int,
    wire: TorchWire,
    timeline: Timeline,
) -> float | None:
    """One GPipe step: every micro-batch forward, then every one backward (gradients add up over them).

    Returns the batch's loss on the last stage (None elsewhere); the stage's compute goes on `timeline`.
    """
    last = rank == world_size - 1
    kept, loss = [], 0.0
    for m, (xm, ym) in enumerate(zip(x.chunk(micro_batches), y.chunk(micro_batches), strict=True)):

        def run(h: torch.Tensor, ym: torch.Tensor = ym, m: int = m) -> torch.Tensor:
            start = time.monotonic()
            out = stage(h)  # (b, width), or (b, 10) on the last stage
            out = F.cross_entropy(out, ym) / micro_batches if last else out  # the sum is the batch mean
            timeline.events.append(("F", m, start, time.monotonic()))
            return out

        kept.append(stage_forward(run, xm, (len(xm), width), rank, world_size, wire))
        loss += kept[-1][1].item() if last else 0.0
    for m in reversed(range(micro_batches)):
        stage_backward(*kept[m], rank, world_size, wire, timeline, m)
    wire.flush()
    return loss if last else None
