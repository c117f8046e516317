"""P5 · Model maths: parameters, FLOPs and training memory predicted by formula, then measured.

Three families at several sizes: the MLP of models/mlp.py on flattened 28x28 images, the PlainCNN of
models/convnets.py on 28x28 images, and the GPT of models/gpt.py (several widths) on token ids. For each,
the formulas of metrics/model_maths.py predict, from the sizes alone: the parameters (per layer type; 12 d^2
+ 2 d per bias-free GPT block, the head tied), the forward FLOPs (2 per multiply-add; attention's T^2 terms)
and the training FLOPs (3 x forward, less the input gradient of a first layer that reads the data), the
bytes of weights, gradients and optimiser state (SGD 0, momentum 1x, Adam 2x) and of the activations saved
for backward. Each is measured on the model: sum(p.numel()), FlopCounterMode, the bytes of the tensors
autograd saves (a saved_tensors_hooks pack hook, unique storages), the .grad and optimiser tensors after a
step. Then the GPT with each block checkpointed (torch.utils.checkpoint) and in bfloat16, over sequence
lengths; its KV cache at inference; the time of an Adam step against a measured matmul peak on this CPU (one
thread), i.e. a CPU "MFU"; and a compute-optimal (Chinchilla, 20 tokens a parameter) budget table.
Data: random inputs of the right shapes (sizes are all that matter here); no dataset is read.
Simplified: activations are the tensors saved for backward, not the allocator's peak (the temporaries a
layer frees during forward, and the recomputation of one checkpointed block in backward, come on top).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

import torch
from torch import nn

from dlpractice.config import PositiveFloat, PositiveInt, require
from dlpractice.metrics import model_maths as mm
from dlpractice.metrics.model_maths_figures import flops_figure, memory_figure, mfu_figure, sequence_figure
from dlpractice.models.convnets import PlainCNN
from dlpractice.models.gpt import GPT, GPTConfig
from dlpractice.models.mlp import MLP
from dlpractice.registry import lab
from dlpractice.report import markdown_table

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("p5", requires=("l8", "v2"), metric="max_rel_error", goal="min")
SIDE, N_CLASSES = 28, 10  # MNIST-shaped images for the MLP and the CNN


@dataclass
class Config:
    batch_size: PositiveInt = 16
    seq_len: PositiveInt = 128  # tokens per sequence of the GPT
    vocab_size: PositiveInt = 65  # characters of tiny Shakespeare
    gpt_widths: tuple[PositiveInt, ...] = (64, 128, 256)  # n_embd of each GPT measured
    gpt_layers: PositiveInt = 4
    n_head: PositiveInt = 4
    mlp_width: PositiveInt = 256
    mlp_depth: PositiveInt = 2
    cnn_width: PositiveInt = 16
    cnn_hidden: PositiveInt = 128
    seq_lens: tuple[PositiveInt, ...] = (32, 64, 128, 256, 512)  # memory against T, GPT of the middle width
    timing_repeats: PositiveInt = 10  # timed Adam steps per model; the median is reported
    matmul_sizes: tuple[PositiveInt, ...] = (128, 256, 512, 1024)  # float32 square matmuls; best = peak
    budget_params: tuple[PositiveFloat, ...] = (1e6, 1e7, 1e8, 1e9, 7e10)  # compute-optimal table

    def check(self) -> None:
        require(all(w % self.n_head == 0 for w in self.gpt_widths), "gpt_widths must be multiples of n_head")


PRESETS = {
    "smoke": {
        "batch_size": 2,
        "seq_len": 16,
        "gpt_widths": (32, 64),
        "gpt_layers": 2,
        "mlp_width": 32,
        "cnn_width": 4,
        "cnn_hidden": 16,
        "seq_lens": (8, 16, 32),
        "timing_repeats": 2,
        "matmul_sizes": (64, 128),
    },
    "quick": {"gpt_widths": (64, 128), "seq_lens": (32, 64, 128, 256), "timing_repeats": 5},
    "full": {},
}


@dataclass
class Case:
    """One model, a batch for it, and what the formulas predict for it."""

    name: str
    model: nn.Module
    inputs: torch.Tensor
    targets: torch.Tensor
    params: int
    forward_flops: int
    train_flops: int
    saved: int
    tokens: int  # examples (images or tokens) per step, for 6 N D

    def loss(self) -> torch.Tensor:
        return self.model(self.inputs, self.targets)[1]


def gpt_config(cfg: Config, width: int) -> GPTConfig:
    block = max(cfg.seq_len, *cfg.seq_lens)
    return GPTConfig(
        vocab_size=cfg.vocab_size, block_size=block, n_layer=cfg.gpt_layers, n_head=cfg.n_head, n_embd=width
    )


def middle_width(cfg: Config) -> int:
    return cfg.gpt_widths[len(cfg.gpt_widths) // 2]


def token_batch(cfg: Config, seq: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Random token ids and targets, (B, T) each."""
    return tuple(torch.randint(0, cfg.vocab_size, (cfg.batch_size, seq)) for _ in range(2))


def gpt_case(cfg: Config, width: int) -> Case:
    c = gpt_config(cfg, width)
    idx, targets = token_batch(cfg, cfg.seq_len)
    forward = mm.gpt_forward_flops(c, cfg.batch_size, cfg.seq_len)
    saved = mm.gpt_saved_bytes(c, cfg.batch_size, cfg.seq_len)
    # every matmul's input needs its gradient (the first one reads an embedding): training = 3 x forward
    return Case(
        f"gpt{width}", GPT(c), idx, targets, mm.gpt_params(c), forward, 3 * forward, saved, idx.numel()
    )


def stack_case(name: str, model: nn.Module, inputs: torch.Tensor, saved: int) -> Case:
    """An MLP or a CNN: its first layer reads the data, whose gradient nobody needs, so backward skips that
    layer's input gradient (one forward's worth of that layer)."""
    forward, first = mm.stack_forward_flops(model, tuple(inputs.shape))
    targets = torch.randint(0, N_CLASSES, (len(inputs),))
    return Case(
        name, model, inputs, targets, mm.predicted_params(model), forward, 3 * forward - first, saved, 0
    )


def build_cases(cfg: Config) -> list[Case]:
    b = cfg.batch_size
    mlp = MLP(SIDE * SIDE, N_CLASSES, cfg.mlp_width, cfg.mlp_depth)
    mlp_saved = mm.mlp_saved_bytes(b, SIDE * SIDE, cfg.mlp_width, cfg.mlp_depth, N_CLASSES)
    cnn = PlainCNN(1, SIDE, N_CLASSES, width=cfg.cnn_width, hidden=cfg.cnn_hidden)
    cnn_saved = mm.plain_cnn_saved_bytes(b, 1, SIDE, cfg.cnn_width, cfg.cnn_hidden, N_CLASSES)
    return [
        stack_case("mlp", mlp, torch.rand(b, SIDE * SIDE), mlp_saved),
        stack_case("cnn", cnn, torch.rand(b, 1, SIDE, SIDE), cnn_saved),
        *(gpt_case(cfg, width) for width in cfg.gpt_widths),
    ]


def one_step(case: Case, optimiser: torch.optim.Optimizer) -> None:
    optimiser.zero_grad(set_to_none=True)
    case.loss().backward()
    optimiser.step()


def measure_memory(case: Case) -> dict[str, dict[str, dict[str, int]]]:
    """{optimiser: {"predicted"|"measured": {term: bytes}}}: weights, grads, optimiser, activations."""
    saved, _ = mm.saved_bytes(case.model, case.loss)
    memory = {}
    for name in mm.OPTIMISER_STATES:
        optimiser = mm.make_optimiser(name, case.model)
        one_step(case, optimiser)
        memory[name] = {
            "predicted": mm.training_state_bytes(case.params, name) | {"activations": case.saved},
            "measured": mm.measured_state_bytes(case.model, optimiser) | {"activations": saved},
        }
    return memory


def measure_case(case: Case, cfg: Config, peak: float) -> tuple[dict[str, float], dict]:
    """The case's metrics (prefixed by its name) and its memory terms."""
    model = case.model
    forward = mm.counted_flops(lambda: model(case.inputs))
    train = mm.counted_flops(lambda: case.loss().backward())
    model.zero_grad(set_to_none=True)
    memory = measure_memory(case)
    adam = memory["adam"]
    optimiser = mm.make_optimiser("adam", model)
    seconds = mm.median_seconds(lambda: one_step(case, optimiser), cfg.timing_repeats)
    n_params = sum(p.numel() for p in model.parameters())
    metrics = {
        "params": n_params,
        "params_rel_error": mm.rel_error(case.params, n_params),
        "forward_flops": forward,
        "forward_flops_rel_error": mm.rel_error(case.forward_flops, forward),
        "train_flops": train,
        "train_flops_rel_error": mm.rel_error(case.train_flops, train),
        "train_over_forward": train / forward,
        "activation_bytes": adam["measured"]["activations"],
        "activation_rel_error": mm.rel_error(case.saved, adam["measured"]["activations"]),
        "adam_memory_bytes": sum(adam["measured"].values()),
        "memory_rel_error": max(
            mm.rel_error(sum(m["predicted"].values()), sum(m["measured"].values())) for m in memory.values()
        ),
        "step_ms": 1000 * seconds,
        "gflops_per_s": train / seconds / 1e9,
        "mfu": train / seconds / 1e9 / peak,
    }
    if case.tokens:  # a GPT: the 6 N D rule against the count, and what the default kernel leaves uncounted
        metrics["six_nd_over_counted"] = 6 * n_params * case.tokens / train
        flash = mm.counted_flops(lambda: model(case.inputs), math_attention=False)
        metrics |= {"flash_forward_flops": flash, "flash_uncounted_fraction": 1 - flash / forward}
    return {f"{case.name}_{k}": float(v) for k, v in metrics.items()}, memory


def sequence_sweep(cfg: Config) -> dict[str, dict[str, list[int]]]:
    """The GPT of the middle width at each sequence length: activations saved for backward (float32, each
    block checkpointed, bfloat16) and the KV cache of inference, predicted and measured."""
    c = gpt_config(cfg, middle_width(cfg))
    variants: dict[str, tuple[nn.Module, dict]] = {
        "float32": (GPT(c), {}),
        "checkpointed": (mm.checkpoint_blocks(GPT(c)), {"checkpointed": True}),
        "bfloat16": (GPT(c).to(torch.bfloat16), {"value_bytes": 2}),
    }
    sweep = {name: {"predicted": [], "measured": []} for name in (*variants, "kv_cache")}
    for seq in cfg.seq_lens:
        idx, targets = token_batch(cfg, seq)
        for name, (model, options) in variants.items():
            sweep[name]["predicted"].append(mm.gpt_saved_bytes(c, cfg.batch_size, seq, **options))
            measured = mm.saved_bytes(model, partial(model, idx, targets))[0]
            sweep[name]["measured"].append(measured)
        sweep["kv_cache"]["predicted"].append(mm.kv_cache_bytes(c, cfg.batch_size, seq))
        sweep["kv_cache"]["measured"].append(mm.measured_kv_cache_bytes(variants["float32"][0], idx))
    return sweep


def bf16_state(cfg: Config) -> dict[str, dict[str, int]]:
    """The middle GPT in bfloat16 throughout, after one Adam step: every state term at 2 bytes a value."""
    case = gpt_case(cfg, middle_width(cfg))
    case.model.to(torch.bfloat16)
    optimiser = mm.make_optimiser("adam", case.model)
    one_step(case, optimiser)
    return {
        "predicted": mm.training_state_bytes(case.params, "adam", bytes_per_value=2),
        "measured": mm.measured_state_bytes(case.model, optimiser),
    }


def budget_table(cfg: Config, gflops_per_s: float) -> str:
    """Compute-optimal training (Hoffmann et al., 2022: about 20 tokens a parameter) for a few sizes: tokens,
    FLOPs by 6 N D, and how long this CPU thread would take at the GPT's measured rate."""
    rows = []
    for n in cfg.budget_params:
        tokens, flops, seconds = mm.compute_optimal(n, gflops_per_s)
        rows.append([f"{n:.0e}", f"{tokens:.1e}", f"{flops:.1e}", f"{seconds / 86400:,.3g}"])
    return markdown_table(["parameters N", "tokens D = 20 N", "FLOPs 6 N D", "days on this CPU thread"], rows)


def mib(n: float) -> str:
    return f"{n / 2**20:,.3f}"


def report(
    ctx: RunContext, cfg: Config, cases: list[Case], metrics: dict[str, float], sweep: dict, bf16: dict
) -> None:
    header = ["model", "params", "fwd GFLOP", "train / fwd", "activations MiB", "Adam total MiB", "step ms"]
    rows = []
    for case in cases:
        m = {k.removeprefix(f"{case.name}_"): v for k, v in metrics.items() if k.startswith(f"{case.name}_")}
        rows.append(
            [
                case.name,
                f"{m['params']:,.0f}",
                f"{m['forward_flops'] / 1e9:.4f}",
                f"{m['train_over_forward']:.3f}",
            ]
            + [mib(m["activation_bytes"]), mib(m["adam_memory_bytes"]), f"{m['step_ms']:.1f}"]
            + [f"{m['gflops_per_s']:.2f}", f"{m['mfu']:.1%}"]
        )
    ctx.section(
        "Measured per model (one Adam step, one thread)", markdown_table([*header, "GFLOP/s", "MFU"], rows)
    )
    names = ("float32", "checkpointed", "bfloat16", "kv_cache")
    seq_rows = [[t] + [mib(sweep[n]["measured"][i]) for n in names] for i, t in enumerate(cfg.seq_lens)]
    ctx.section(
        "Saved activations and KV cache against sequence length (MiB, measured)",
        markdown_table(["T", "float32", "checkpointed", "bfloat16", "KV cache (float32)"], seq_rows),
    )
    terms = [[k, mib(bf16["predicted"][k]), mib(bf16["measured"][k])] for k in bf16["predicted"]]
    ctx.section(
        "GPT in bfloat16, Adam: state (MiB)", markdown_table(["term", "predicted", "measured"], terms)
    )
    rate = metrics[f"{cases[-1].name}_gflops_per_s"]
    ctx.section(f"Compute-optimal budgets at {rate:.2f} GFLOP/s", budget_table(cfg, rate))


def sweep_errors(sweep: dict) -> dict[str, float]:
    """The largest relative error over the sequence lengths, per variant."""
    return {
        f"seq_{name}_rel_error": max(
            mm.rel_error(p, m) for p, m in zip(v["predicted"], v["measured"], strict=True)
        )
        for name, v in sweep.items()
    }


def flop_points(cases: list[Case], metrics: dict[str, float]) -> dict[str, dict[str, tuple[float, float]]]:
    """(predicted, counted) per model: forward, training, and (GPTs) forward on the default CPU kernel."""
    points = {}
    for c in cases:
        counted = {k.removeprefix(f"{c.name}_"): v for k, v in metrics.items() if k.startswith(f"{c.name}_")}
        points[c.name] = {
            "forward": (c.forward_flops, counted["forward_flops"]),
            "training": (c.train_flops, counted["train_flops"]),
        }
        if c.tokens:
            points[c.name]["forward, CPU flash attention"] = (c.forward_flops, counted["flash_forward_flops"])
    return points


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    torch.manual_seed(ctx.seed)
    ctx.record_data(
        {"data_source": "embedded", "data_origin": "generated: random inputs of the right shapes"}
    )
    speeds = {n: mm.matmul_gflops(n, cfg.timing_repeats) for n in cfg.matmul_sizes}
    peak = max(speeds.values())
    metrics = {"matmul_peak_gflops": peak} | {f"matmul{n}_gflops": v for n, v in speeds.items()}
    cases, memories = build_cases(cfg), {}
    for case in cases:
        case_metrics, memories[case.name] = measure_case(case, cfg, peak)
        metrics |= case_metrics
    sweep, bf16 = sequence_sweep(cfg), bf16_state(cfg)
    metrics |= sweep_errors(sweep)
    ckpt = gpt_case(cfg, middle_width(cfg))  # training with each block checkpointed: the FLOPs it adds
    mm.checkpoint_blocks(ckpt.model)
    counted = mm.counted_flops(lambda: ckpt.loss().backward())
    predicted = mm.gpt_checkpointed_train_flops(ckpt.model.config, cfg.batch_size, cfg.seq_len)
    metrics["checkpointed_train_over_forward"] = counted / ckpt.forward_flops
    metrics["checkpointed_train_flops_rel_error"] = mm.rel_error(predicted, counted)
    metrics["bf16_state_rel_error"] = mm.rel_error(
        sum(bf16["predicted"].values()), sum(bf16["measured"].values())
    )
    errors = {k: v for k, v in metrics.items() if k.endswith("rel_error")}
    metrics["max_flops_rel_error"] = max(v for k, v in errors.items() if "flops" in k)
    metrics["max_rel_error"] = max(errors.values())
    ctx.figure(
        "memory", memory_figure(memories), "Training memory per model and optimiser, predicted vs measured"
    )
    ctx.figure("flops", flops_figure(flop_points(cases, metrics)), "FLOPs: formula against FlopCounterMode")
    ctx.figure("sequence", sequence_figure(cfg.seq_lens, sweep), "GPT memory against sequence length")
    achieved = [metrics[f"{c.name}_gflops_per_s"] for c in cases]
    ctx.figure(
        "mfu", mfu_figure([c.name for c in cases], achieved, peak), "Achieved GFLOP/s and CPU MFU per model"
    )
    report(ctx, cfg, cases, metrics, sweep, bf16)
    return metrics
