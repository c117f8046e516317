"""One process of lab p4: `python -m torch.distributed.run --nproc-per-node N -m
dlpractice.recipes.parallel_worker JOB.json` (the lab launches it).

Every process joins one gloo process group, then trains the same MLP on the same global batches (the lab
wrote them to JOB's data file) once per engine: DDP, our hand-written gradient all-reduce, Accelerate,
Lightning's Trainer and the HF Trainer (data parallel, each process on its DistributedSampler-style shard
of every batch), then the naive and GPipe pipelines (model parallel, one stage a process), then times
all-reduces of growing sizes. The main process writes each engine's final weights (safetensors), the loss
per step (mean over processes) and seconds per step, the pipelines' timelines and the all-reduce times to
JOB's folder; the lab compares them with its one-process run.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from torch import nn

from dlpractice.models.mlp import MLP
from dlpractice.recipes.parallel import (
    Timeline,
    TorchWire,
    average_gradients,
    build_mlp,
    pipeline_step,
    shard_indices,
    stage_layers,
    stage_module,
    stage_state,
)

Batches = tuple[torch.Tensor, torch.Tensor]  # x (S, B, 784), y (S, B): every step's global batch


class Recorder:
    """The local loss and the clock at every training step (each engine calls it from its step)."""

    def __init__(self) -> None:
        self.losses: list[float] = []
        self.times: list[float] = []

    def __call__(self, loss: torch.Tensor) -> None:
        self.losses.append(loss.item())
        self.times.append(time.perf_counter())

    def seconds_per_step(self) -> float:
        """Median gap between steps: the engine's steady pace, without its start-up."""
        return statistics.median(b - a for a, b in zip(self.times, self.times[1:], strict=False))


def local_batches(data: Batches, rank: int, world: int) -> Batches:
    """This process's shard of every global batch: DistributedSampler's rank::world split of its rows."""
    rows = shard_indices(data[0].shape[1], rank, world)
    return data[0][:, rows], data[1][:, rows]  # (S, B/world, 784), (S, B/world)


def sgd_loop(
    model: nn.Module, data: Batches, lr: float, after_backward: Any = None, accumulate: int = 1
) -> Recorder:
    """Plain SGD over the batches, in order; `after_backward(model)` may change the gradients.

    With `accumulate` > 1 every batch is cut into that many micro-batches whose gradients add up (each
    loss divided by their number, so the sum is the batch mean) before the one step.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    recorder = Recorder()
    for x, y in zip(*data, strict=True):
        optimizer.zero_grad(set_to_none=True)
        loss = torch.zeros(())
        for xm, ym in zip(x.chunk(accumulate), y.chunk(accumulate), strict=True):
            _, micro_loss = model(xm, ym)
            (micro_loss / accumulate).backward()
            loss += micro_loss.detach() / accumulate
        if after_backward is not None:
            after_backward(model)
        optimizer.step()
        recorder(loss)
    return recorder


def train_ddp(job: dict, data: Batches, rank: int, world: int) -> tuple[MLP, Recorder]:
    model = build_mlp(job["width"], job["depth"], job["seed"])
    ddp = nn.parallel.DistributedDataParallel(model)  # averages gradients in backward
    return model, sgd_loop(ddp, local_batches(data, rank, world), job["lr"])


def train_hand(job: dict, data: Batches, rank: int, world: int) -> tuple[MLP, Recorder]:
    model = build_mlp(job["width"], job["depth"], job["seed"])

    def average(m: nn.Module) -> None:
        average_gradients(m.parameters(), world, dist.all_reduce)

    return model, sgd_loop(model, local_batches(data, rank, world), job["lr"], average)


def train_accelerate(job: dict, data: Batches, rank: int, world: int) -> tuple[MLP, Recorder]:
    from accelerate import Accelerator

    accelerator = Accelerator(cpu=True)
    model = build_mlp(job["width"], job["depth"], job["seed"])
    wrapped, optimizer = accelerator.prepare(model, torch.optim.SGD(model.parameters(), lr=job["lr"]))
    recorder = Recorder()
    for x, y in zip(*local_batches(data, rank, world), strict=True):
        _, loss = wrapped(x, y)
        optimizer.zero_grad(set_to_none=True)
        accelerator.backward(loss)
        optimizer.step()
        recorder(loss)
    return model, recorder


def ordered_items(data: Batches) -> torch.utils.data.TensorDataset:
    """The global batches one after the other: a sequential DistributedSampler over them gives process r
    rows r, r + world, ... of each batch in turn, as local_batches does."""
    return torch.utils.data.TensorDataset(data[0].flatten(0, 1), data[1].flatten(0, 1))


def train_lightning(job: dict, data: Batches, rank: int, world: int) -> tuple[MLP, Recorder]:
    import lightning as L

    class Module(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.model = build_mlp(job["width"], job["depth"], job["seed"])
            self.recorder = Recorder()

        def training_step(self, batch: list[torch.Tensor], index: int) -> torch.Tensor:
            _, loss = self.model(*batch)
            self.recorder(loss)
            return loss

        def configure_optimizers(self) -> torch.optim.Optimizer:
            return torch.optim.SGD(self.parameters(), lr=job["lr"])

    module = Module()
    batch = data[0].shape[1] // world
    # Lightning injects a SHUFFLING DistributedSampler into a training loader whatever `shuffle` says;
    # a loader that already has a DistributedSampler keeps it, so every engine sees the same order
    items = ordered_items(data)
    sampler = torch.utils.data.DistributedSampler(items, world, rank, shuffle=False)
    loader = torch.utils.data.DataLoader(items, batch_size=batch, sampler=sampler)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=world,
        strategy="ddp",
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        default_root_dir=job["out"],
    )
    trainer.fit(module, loader)
    return module.model, module.recorder


class _LabelledMLP(nn.Module):
    """The MLP as the HF Trainer calls it: keyword inputs, a dict with the loss."""

    def __init__(self, model: MLP, recorder: Recorder) -> None:
        super().__init__()
        self.model, self.recorder = model, recorder

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> dict[str, torch.Tensor]:
        logits, loss = self.model(x, labels)
        self.recorder(loss)
        return {"loss": loss, "logits": logits}


def train_hf(job: dict, data: Batches, rank: int, world: int) -> tuple[MLP, Recorder]:
    from transformers import Trainer, TrainingArguments

    model, recorder = build_mlp(job["width"], job["depth"], job["seed"]), Recorder()
    args = TrainingArguments(
        output_dir=str(Path(job["out"]) / "hf"),
        per_device_train_batch_size=data[0].shape[1] // world,
        max_steps=data[0].shape[0],
        learning_rate=job["lr"],
        optim="sgd",
        lr_scheduler_type="constant",
        weight_decay=0.0,
        max_grad_norm=0.0,  # no clipping, as the other engines
        train_sampling_strategy="sequential",
        logging_strategy="no",
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        ddp_backend="gloo",
        ddp_find_unused_parameters=False,  # as DDP's default (True costs a graph traversal a step)
        disable_tqdm=True,
        seed=job["seed"],
    )

    def collate(items: list[tuple[torch.Tensor, torch.Tensor]]) -> dict[str, torch.Tensor]:
        x, y = zip(*items, strict=True)
        return {"x": torch.stack(x), "labels": torch.stack(y)}

    trainer = Trainer(
        model=_LabelledMLP(model, recorder),
        args=args,
        train_dataset=ordered_items(data),
        data_collator=collate,
    )
    trainer.train()
    return model, recorder


def train_pipeline(job: dict, data: Batches, rank: int, world: int, micro_batches: int) -> dict:
    """GPipe over `world` stages (naive model parallel with one micro-batch); the main process gets all."""
    model = build_mlp(job["width"], job["depth"], job["seed"])
    layers = stage_layers(model, rank, world)
    stage = stage_module(model, layers)
    optimizer = torch.optim.SGD(stage.parameters(), lr=job["lr"])
    wire, losses, walls, timelines = TorchWire(), [], [], []
    for x, y in zip(*data, strict=True):
        timeline = Timeline()
        dist.barrier()  # every stage starts the step together, so its wall time is the step's
        start = time.monotonic()
        optimizer.zero_grad(set_to_none=True)
        loss = pipeline_step(stage, x, y, micro_batches, job["width"], rank, world, wire, timeline)
        optimizer.step()
        dist.barrier()
        walls.append(time.monotonic() - start)
        timelines.append((start, timeline))
        losses.append(loss)
    idle = [1 - t.busy() / wall for (_, t), wall in zip(timelines, walls, strict=True)]
    start, last = timelines[-1]
    mine = {
        "state": stage_state(model, layers),
        "losses": losses,
        "idle": statistics.mean(idle),
        "start": start,
        "events": last.events,
    }
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    origin = min(got["start"] for got in everyone)  # the monotonic clock is the machine's, not the process's
    return {
        "state": {k: v for got in everyone for k, v in got["state"].items()},
        "losses": everyone[-1]["losses"],
        "seconds_per_step": statistics.median(walls),
        "idle_fraction": statistics.mean(got["idle"] for got in everyone),
        # per stage: (F|B, micro, start, end), seconds from the first stage's start of the last step
        "timeline": [[(k, m, a - origin, b - origin) for k, m, a, b in got["events"]] for got in everyone],
    }


def allreduce_seconds(sizes: list[int], reps: int) -> list[float]:
    """Median seconds of one all-reduce of a float32 tensor of each size."""
    seconds = []
    for size in sizes:
        tensor = torch.ones(size)
        times = []
        for _ in range(reps + 2):  # two warm-up rounds
            dist.barrier()
            start = time.perf_counter()
            dist.all_reduce(tensor)
            times.append(time.perf_counter() - start)
        seconds.append(statistics.median(times[2:]))
    return seconds


ENGINES = {
    "ddp": train_ddp,
    "hand_allreduce": train_hand,
    "accelerate": train_accelerate,
    "lightning": train_lightning,
    "hf_trainer": train_hf,
}


def mean_over_processes(values: list[float]) -> list[float]:
    tensor = torch.tensor(values, dtype=torch.float64)
    dist.all_reduce(tensor)
    return (tensor / dist.get_world_size()).tolist()


def main() -> None:
    job_path = Path(sys.argv[1])
    job = json.loads(job_path.read_text())
    out = job_path.parent
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")  # the engines' advice on data-loader workers, logging and the like
    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    batches = load_file(job["data"])
    data = (batches["x"], batches["y"])
    results: dict[str, Any] = {"world": world}
    for name in job["engines"]:
        model, recorder = ENGINES[name](job, data, rank, world)
        losses, pace = mean_over_processes(recorder.losses), recorder.seconds_per_step()
        results[name] = {"losses": losses, "seconds_per_step": max(mean_over_processes([pace]))}
        if rank == 0:
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, out / f"{name}.safetensors")
    for name, micro in (("pipeline_naive", 1), ("pipeline_gpipe", job["micro_batches"])):
        got = train_pipeline(job, data, rank, world, micro)
        if rank == 0:
            save_file(got.pop("state"), out / f"{name}.safetensors")
        results[name] = got
    results["allreduce_seconds"] = allreduce_seconds(job["allreduce_sizes"], job["allreduce_reps"])
    if rank == 0:
        (out / "results.json").write_text(json.dumps(results))
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
