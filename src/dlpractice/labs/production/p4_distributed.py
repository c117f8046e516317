"""P4 · Distributed training: data parallel (DDP) and a pipeline split, by hand and through Accelerate,
Lightning and the HF Trainer, each measured on CPU processes that talk over gloo.

One MLP learns MNIST digits (data/mnist.py) with plain SGD on the same global batches, drawn once here:
- in this process, batch B per step (the reference), and with gradient accumulation: `processes`
  micro-batches of B / processes added up before each step;
- on `processes` processes (the lab launches them with torch.distributed.run and the gloo backend,
  recipes/parallel_worker.py), each on its DistributedSampler-style shard of every batch (B / processes
  rows): under DDP, with our own gradient all-reduce (one bucket, summed, divided by the world size),
  under Accelerate, Lightning's Trainer (strategy "ddp") and the HF Trainer. Averaging the gradients over
  equal shards gives the gradient of the whole batch, so every engine ends on the reference's weights up
  to float rounding: the LAB metric is DDP's largest weight difference from the one-process run;
- as a pipeline (model parallel): the layers cut into one stage a process, activations sent forward and
  their gradients back with send/recv; naive (the whole batch at once) and GPipe (`micro_batches`), with
  each stage's idle share of the step (the bubble) measured and drawn as a timeline.
It also times the engines per step, samples/s on 1 and on `processes` processes, and all-reduces of
growing size (the communication DDP adds per step, against the model's parameter count).
Simplified: one machine and CPU processes (on two cores two processes cannot run faster than one here);
plain SGD without momentum, clipping or schedule, so that every engine does the same arithmetic.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from safetensors.torch import load_file, save_file

from dlpractice.config import PositiveFloat, PositiveInt, Range, require
from dlpractice.data.mnist import load_mnist
from dlpractice.distributed import process_count
from dlpractice.errors import DlpError
from dlpractice.extras import needs_extra
from dlpractice.recipes.parallel import build_mlp
from dlpractice.recipes.parallel_worker import sgd_loop
from dlpractice.registry import lab
from dlpractice.report import markdown_table

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("p4", requires=("f7", "v1"), data=("mnist",), metric="ddp_max_weight_diff", goal="min")

Engine = Literal["ddp", "hand_allreduce", "accelerate", "lightning", "hf_trainer"]
PIPELINES = ("pipeline_naive", "pipeline_gpipe")
ENGINE_MODULES = {
    "lightning": ("lightning", "production"),
    "hf_trainer": ("transformers", "nlp"),
}  # (module, extra)


@dataclass
class Config:
    processes: Annotated[int, Range(ge=1, le=16)] = 2  # data-parallel replicas, and pipeline stages
    port: Annotated[int, Range(ge=0, le=65535)] = 0  # the processes' rendezvous port; 0 picks a free one
    steps: PositiveInt = 300  # SGD steps of every engine
    batch_size: PositiveInt = 64  # the global batch: every engine's step sees these rows
    lr: PositiveFloat = 0.1
    width: PositiveInt = 256  # the MLP's hidden width
    depth: PositiveInt = 3  # hidden layers; with the head, the layers the pipeline cuts into stages
    micro_batches: PositiveInt = 8  # GPipe's micro-batches per step
    engines: tuple[Engine, ...] = ("ddp", "hand_allreduce", "accelerate", "lightning", "hf_trainer")
    allreduce_sizes: tuple[PositiveInt, ...] = (1_000, 10_000, 100_000, 1_000_000, 4_000_000)  # floats
    allreduce_reps: PositiveInt = 20  # timed all-reduces of each size (the median is kept)

    def check(self) -> None:
        require(self.batch_size % self.processes == 0, "batch_size must be divisible by processes")
        require(self.batch_size % self.micro_batches == 0, "batch_size must be divisible by micro_batches")
        require(
            self.depth + 1 >= self.processes, "the pipeline needs a layer per process: depth + 1 >= processes"
        )
        require(
            "ddp" in self.engines, "engines must include ddp: the lab's metric is DDP's weight difference"
        )
        require(
            self.steps >= 3, "steps must be at least 3: the time per step is the median gap between steps"
        )


PRESETS = {
    "smoke": {
        "steps": 12,
        "batch_size": 32,
        "width": 64,
        "depth": 2,
        "micro_batches": 4,
        "allreduce_sizes": (1_000, 100_000),
        "allreduce_reps": 3,
    },
    "quick": {"steps": 100, "allreduce_reps": 10},
    "full": {"steps": 300, "batch_size": 128, "width": 1024, "depth": 3, "micro_batches": 4},
}


def global_batches(x: np.ndarray, y: np.ndarray, cfg: Config, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every step's batch, drawn once (with replacement) so that every engine trains on the same rows."""
    g = torch.Generator().manual_seed(seed)
    index = torch.randint(len(x), (cfg.steps, cfg.batch_size), generator=g)  # (S, B)
    return torch.from_numpy(x).float()[index], torch.from_numpy(y)[index]  # (S, B, 784), (S, B)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def launch(command: list[str], processes: int, port: int, log: Path) -> None:
    """Run `command` (a module and its arguments) on `processes` processes with torch.distributed.run.

    They live in a session of their own, so that an interruption of this process (Ctrl-C) ends all of
    them, however far each got; a failure is one line with the log's last line.
    """
    if port and not port_is_free(port):
        raise DlpError(f"port {port} is in use: pick another with --set port=N, or port=0 for a free one")
    where = ["--master-addr", "127.0.0.1", f"--master-port={port}"] if port else ["--standalone"]
    argv = [sys.executable, "-m", "torch.distributed.run", *where, f"--nproc-per-node={processes}", *command]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "DLP_THREADS": "1"}
    with log.open("w") as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        try:
            code = proc.wait()
        except BaseException:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
    if code != 0:  # torchrun's log ends on a summary: the line that says why is the last error
        lines = [line.strip() for line in log.read_text().splitlines() if line.strip()]
        errors = [line for line in lines if "Error:" in line] or lines or [f"exit {code}"]
        raise DlpError(f"the {processes} processes failed ({errors[0]}); see {log}")


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max((a[k] - b[k]).abs().max().item() for k in b)


def curve_gap(a: list[float], b: list[float]) -> float:
    return max(abs(u - v) for u, v in zip(a, b, strict=True))


def loss_figure(curves: dict[str, list[float]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 4))
    for i, (name, losses) in enumerate(curves.items()):
        ax.plot(losses, label=name, lw=1.5, ls=("-", "--", ":", "-.")[i % 4])
    ax.set(
        xlabel="step", ylabel="training loss (mean over the global batch)", title="Every engine, one curve"
    )
    ax.legend()
    return fig


def timeline_figure(pipelines: dict[str, dict]) -> plt.Figure:
    """Gantt chart of the last step: each stage's forward (F) and backward (B) per micro-batch."""
    fig, axes = plt.subplots(len(pipelines), 1, figsize=(8, 1.4 + 1.2 * len(pipelines)), squeeze=False)
    for ax, (name, got) in zip(axes[:, 0], pipelines.items(), strict=True):
        for stage, events in enumerate(got["timeline"]):
            for kind, micro, start, end in events:
                ax.barh(
                    stage,
                    (end - start) * 1e3,
                    left=start * 1e3,
                    color="C0" if kind == "F" else "C1",
                    edgecolor="k",
                    lw=0.5,
                )
                ax.text((start + end) * 500, stage, f"{kind}{micro}", ha="center", va="center", fontsize=6)
        ax.set(
            yticks=range(len(got["timeline"])),
            ylabel="stage",
            xlabel="ms into the step",
            title=f"{name}: idle {got['idle_fraction']:.0%} of the step",
        )
        ax.invert_yaxis()
    fig.tight_layout()
    return fig


def allreduce_figure(sizes: tuple[int, ...], seconds: list[float], n_params: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.loglog(sizes, np.array(seconds) * 1e3, "o-")
    ax.axvline(n_params, color="C3", ls="--", label=f"the MLP's gradients ({n_params:,} floats)")
    ax.set(xlabel="floats all-reduced", ylabel="ms (median)", title="All-reduce time against size (gloo)")
    ax.legend()
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if process_count() > 1:
        raise DlpError("lab p4 launches its own processes: run it as `dlp run p4`, not under torchrun")
    for engine, (module, extra) in ENGINE_MODULES.items():
        if engine in cfg.engines and importlib.util.find_spec(module) is None:
            raise needs_extra(f"lab p4's {engine} engine", extra, module)
    splits = load_mnist(ctx.data, ctx.data_dir)
    ctx.record_data(splits.describe())
    x, y = global_batches(splits.x_train, splits.y_train, cfg, ctx.seed)
    work = ctx.run_dir / "processes"
    work.mkdir(exist_ok=True)
    save_file({"x": x, "y": y}, work / "data.safetensors")
    job = {**asdict(cfg), "data": str(work / "data.safetensors"), "out": str(work), "seed": ctx.seed}
    (work / "job.json").write_text(json.dumps(job))

    reference = build_mlp(cfg.width, cfg.depth, ctx.seed)
    single = sgd_loop(reference, (x, y), cfg.lr)
    accumulated_model = build_mlp(cfg.width, cfg.depth, ctx.seed)
    accumulated = sgd_loop(accumulated_model, (x, y), cfg.lr, accumulate=cfg.processes)
    module = ["-m", "dlpractice.recipes.parallel_worker", str(work / "job.json")]
    launch(module, cfg.processes, cfg.port, work / "log.txt")
    results = json.loads((work / "results.json").read_text())

    ref = reference.state_dict()
    weights = {name: load_file(work / f"{name}.safetensors") for name in (*cfg.engines, *PIPELINES)}
    runs: dict[str, dict[str, float]] = {"single": row(single.losses, single.seconds_per_step(), cfg)}
    runs["accumulation"] = row(accumulated.losses, accumulated.seconds_per_step(), cfg)
    runs["accumulation"]["max_weight_diff"] = max_diff(accumulated_model.state_dict(), ref)
    for name in (*cfg.engines, *PIPELINES):
        runs[name] = row(results[name]["losses"], results[name]["seconds_per_step"], cfg)
        runs[name]["max_weight_diff"] = max_diff(weights[name], ref)
        runs[name]["max_loss_gap"] = curve_gap(results[name]["losses"], single.losses)
    test_x, test_y = torch.from_numpy(splits.x_test).float(), torch.from_numpy(splits.y_test)
    with torch.no_grad():
        accuracy = (reference(test_x)[0].argmax(1) == test_y).float().mean().item()
    for path in work.glob("*.safetensors"):  # the batches and every engine's weights: tens of MB, and
        path.unlink()  # the same seed makes them again

    curves = {"single": single.losses, **{n: results[n]["losses"] for n in cfg.engines}}
    ctx.figure("loss", loss_figure(curves), "Training loss: one process and every engine")
    pipelines = {n: results[n] for n in PIPELINES}
    ctx.figure(
        "pipeline", timeline_figure(pipelines), "Pipeline timeline of the last step (F forward, B backward)"
    )
    n_params = sum(p.numel() for p in reference.parameters())
    ctx.figure(
        "allreduce",
        allreduce_figure(cfg.allreduce_sizes, results["allreduce_seconds"], n_params),
        "All-reduce time against size",
    )
    report(ctx, cfg, runs, results, n_params)
    return metrics(cfg, runs, results, weights, accuracy, n_params)


def row(losses: list[float], seconds_per_step: float, cfg: Config) -> dict[str, float]:
    return {
        "final_loss": losses[-1],
        "ms_per_step": 1e3 * seconds_per_step,
        "samples_per_s": cfg.batch_size / seconds_per_step,
    }


def report(ctx: RunContext, cfg: Config, runs: dict, results: dict, n_params: int) -> None:
    columns = ("final_loss", "max_loss_gap", "max_weight_diff", "ms_per_step", "samples_per_s")
    table = [[name, *(f"{r[c]:.3g}" if c in r else "-" for c in columns)] for name, r in runs.items()]
    ctx.section(
        f"Engines ({cfg.processes} processes, batch {cfg.batch_size}, {cfg.steps} steps)",
        markdown_table(["engine", *columns], table),
    )
    sweep = [
        [f"{s:,}", f"{t * 1e3:.3f}", f"{4 * s / t / 1e6:.0f}"]
        for s, t in zip(cfg.allreduce_sizes, results["allreduce_seconds"], strict=True)
    ]
    ctx.section(
        f"All-reduce (the MLP has {n_params:,} parameters)", markdown_table(["floats", "ms", "MB/s"], sweep)
    )


def metrics(
    cfg: Config, runs: dict, results: dict, weights: dict, accuracy: float, n_params: int
) -> dict[str, float]:
    out = {
        "ddp_max_weight_diff": runs["ddp"]["max_weight_diff"],
        "accumulation_max_weight_diff": runs["accumulation"]["max_weight_diff"],
        "single_test_accuracy": accuracy,
        "single_samples_per_s": runs["single"]["samples_per_s"],
        "n_params": float(n_params),
    }
    if {"ddp", "hand_allreduce"} <= weights.keys():
        out["hand_vs_ddp_max_weight_diff"] = max_diff(weights["hand_allreduce"], weights["ddp"])
    out["ddp_samples_per_s"] = runs["ddp"]["samples_per_s"]
    out["ddp_speedup"] = runs["ddp"]["samples_per_s"] / runs["single"]["samples_per_s"]
    for name in (*cfg.engines, *PIPELINES):
        out |= {
            f"{name}_{k}": v
            for k, v in runs[name].items()
            if k in ("max_weight_diff", "final_loss", "ms_per_step")
        }
    for name in PIPELINES:
        out[f"{name}_idle_fraction"] = results[name]["idle_fraction"]
    out["single_ms_per_step"] = runs["single"]["ms_per_step"]
    out["single_final_loss"] = runs["single"]["final_loss"]
    for size, seconds in zip(cfg.allreduce_sizes, results["allreduce_seconds"], strict=True):
        out[f"allreduce_ms_{size}"] = seconds * 1e3
    return out
