"""V8 · Super-resolution x4: bicubic, SRCNN, EDSR-lite and an adversarial ESRGAN-lite, scored as papers do.

Inputs are made the benchmark way (data/sr.py: MATLAB's bicubic imresize, checked here by bicubic's own
Set5 score, 28.43 dB against the published 28.42). SRCNN and EDSR-lite (models/sr.py) train with fit() on
random 8-fold-augmented patches of BSD68 (or of package sample images, embedded) with an L1 loss; ESRGAN-lite
starts from EDSR-lite's weights and is fine-tuned against a small critic with perceptual and adversarial
losses. All are scored on whole Set5 and Set14 images: PSNR and SSIM on the Y channel with the scale's
4-pixel border cut (metrics/image_quality.py, checked against scikit-image in the run).
Simplified: x4 only, small models, minutes of CPU training instead of days of GPU; the perceptual loss uses
the critic's features, as no ImageNet VGG is available offline; no diffusion SR.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from dlpractice.data.sr import PatchBatches, SRImages, as_rgb, imresize, load_sr, to_image, to_tensor
from dlpractice.metrics.image_quality import psnr_y, rgb_to_y, shave, ssim_y
from dlpractice.models.saved import load_run_model
from dlpractice.models.sr import SRCNN, Discriminator, EDSRLite, adversarial_finetune
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v8", requires=("v2",), data=("sr",), metric="edsr_set5_psnr", goal="max", bar=30.5)
SCALE = 4
METHODS = ("bicubic", "srcnn", "edsr", "esrgan")


@dataclass
class Config(FitConfig):
    lr_patch: PositiveInt = 40  # low-resolution training patch side (the target is 4x larger)
    width: PositiveInt = 32  # EDSR-lite channels
    blocks: PositiveInt = 8  # EDSR-lite residual blocks
    srcnn_width: PositiveInt = 32  # SRCNN's first layer (its second has half)
    srcnn_steps: PositiveInt = 200
    gan_steps: NonNegativeInt = 150  # ESRGAN-lite fine-tuning steps (0: no ESRGAN)
    gan_batch_size: PositiveInt = 8
    gan_lr: PositiveFloat = 1e-4
    critic_width: PositiveInt = 16
    l1_weight: NonNegativeFloat = 0.01  # ESRGAN's loss weights
    perceptual_weight: NonNegativeFloat = 1.0
    adversarial_weight: NonNegativeFloat = 0.005
    crop_side: PositiveInt = 96  # high-resolution pixels of each side-by-side crop
    n_shown: PositiveInt = 4  # evaluation images in the side-by-side figure


PRESETS = {
    "smoke": {
        "lr_patch": 16,
        "width": 8,
        "blocks": 2,
        "srcnn_width": 8,
        "steps": 6,
        "srcnn_steps": 4,
        "gan_steps": 2,
        "batch_size": 4,
        "gan_batch_size": 2,
        "critic_width": 4,
        "eval_every": 3,
        "log_every": 2,
        "crop_side": 48,
        "n_shown": 2,
    },
    "quick": {
        "steps": 300,
        "srcnn_steps": 60,
        "gan_steps": 40,
        "batch_size": 16,
        "lr": 2e-3,
        "eval_every": 50,
        "log_every": 10,
    },
    "full": {
        "steps": 1800,
        "batch_size": 16,
        "lr": 2e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.01,
        "eval_every": 100,
        "log_every": 20,
    },
}


@torch.no_grad()
def upscale(model: torch.nn.Module, lr_images: list[np.ndarray]) -> list[np.ndarray]:
    """Each uint8 LR image (H, W, 3) upscaled by the model, whole, as a uint8 (4H, 4W, 3) image."""
    was_training = model.training
    model.eval()
    out = [to_image(model(to_tensor(lr)[None])[0][0]) for lr in lr_images]
    model.train(was_training)
    return out


def mean_psnr(outputs: list[np.ndarray], truths: list[np.ndarray]) -> float:
    return float(np.mean([psnr_y(o, t, SCALE) for o, t in zip(outputs, truths)]))


def psnr_tracker(model: torch.nn.Module, data: SRImages, ctx: RunContext, curve: list) -> None:
    """After each of fit()'s evaluations, also the mean validation PSNR (whole images): the PSNR curves."""
    earlier = ctx.on_eval  # a sweep's pruner, still called first

    def on_eval(step: int, val_loss: float) -> None:
        if earlier is not None:
            earlier(step, val_loss)
        psnr = mean_psnr(upscale(model, data.lr["val"]), data.hr["val"])
        curve.append((step, psnr))
        ctx.tracker.log_metrics(step, {"val_psnr": psnr})

    ctx.on_eval = on_eval


def train(model: torch.nn.Module, name: str, data: SRImages, batches, cfg: Config, ctx: RunContext):
    """fit() one generator with its own validation-PSNR curve; the main model in the run itself."""
    run_ctx = ctx if name == "edsr" else ctx.child(name)
    curve: list[tuple[int, float]] = []
    psnr_tracker(model, data, run_ctx, curve)
    result = fit(model, batches, cfg, run_ctx)
    model.to("cpu")
    return result, curve


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_sr(ctx.data, SCALE, ctx.data_dir)
    ctx.record_data(data.describe() | {"scale": SCALE})
    eval_sets = [split for split in data.hr if split not in ("train", "val")]
    batches = PatchBatches(data, cfg.lr_patch)
    torch.manual_seed(ctx.seed)
    srcnn = SRCNN(SCALE, (cfg.srcnn_width, cfg.srcnn_width // 2 or 1))
    srcnn_result, srcnn_curve = train(srcnn, "srcnn", data, batches, replace(cfg, steps=cfg.srcnn_steps), ctx)
    edsr = EDSRLite(SCALE, cfg.width, cfg.blocks)
    edsr_result, edsr_curve = train(edsr, "edsr", data, batches, cfg, ctx)
    ctx.loss_figure(edsr_result.history, title="EDSR-lite L1 loss", ylabel="L1 (pixel values in [0, 1])")
    models: dict[str, torch.nn.Module] = {"srcnn": srcnn, "edsr": edsr}
    seconds = {"srcnn": srcnn_result.seconds, "edsr": edsr_result.seconds}
    if cfg.gan_steps:
        models["esrgan"], seconds["esrgan"] = esrgan(edsr, batches, cfg, ctx)
    outputs = {
        split: {"bicubic": [imresize(lr, SCALE) for lr in data.lr[split]]}
        | {name: upscale(model, data.lr[split]) for name, model in models.items()}
        for split in eval_sets
    }
    curves = {"srcnn": srcnn_curve, "edsr": edsr_curve}
    bicubic_val = mean_psnr([imresize(lr, SCALE) for lr in data.lr["val"]], data.hr["val"])
    ctx.figure("psnr_curves", curves_figure(curves, bicubic_val), "Validation PSNR while training")
    first = eval_sets[0]
    shown = range(min(cfg.n_shown, len(data.hr[first])))
    ctx.figure("crops", crops_figure(data, outputs[first], first, shown, cfg.crop_side), f"{first}: crops")
    params = {name: float(sum(p.numel() for p in m.parameters())) for name, m in models.items()}
    return (
        report(data, outputs, ctx)
        | {f"{n}_params": v for n, v in params.items()}
        | {f"{n}_train_seconds": s for n, s in seconds.items()}
    )


def esrgan(edsr: EDSRLite, batches: PatchBatches, cfg: Config, ctx: RunContext) -> tuple[EDSRLite, float]:
    """A copy of the PSNR-trained EDSR-lite fine-tuned adversarially; its losses go to a child run."""
    child = ctx.child("esrgan")
    generator = EDSRLite(SCALE, cfg.width, cfg.blocks)
    generator.load_state_dict(edsr.state_dict())
    critic = Discriminator(cfg.critic_width)
    weights = (cfg.l1_weight, cfg.perceptual_weight, cfg.adversarial_weight)
    rng = torch.Generator().manual_seed(ctx.seed + 1)
    started = time.perf_counter()
    history = adversarial_finetune(
        generator, critic, batches, cfg.gan_steps, cfg.gan_batch_size, cfg.gan_lr, weights, rng
    )
    for record in history:
        child.tracker.log_metrics(record["step"], {k: v for k, v in record.items() if k != "step"})
    return generator, time.perf_counter() - started


def report(
    data: SRImages, outputs: dict[str, dict[str, list[np.ndarray]]], ctx: RunContext
) -> dict[str, float]:
    """PSNR / SSIM per method and evaluation set (table and metrics), scikit-image agreement, failures."""
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    metrics, rows = {}, []
    for split, by_method in outputs.items():
        truths = data.hr[split]
        for name, images in by_method.items():
            psnr = mean_psnr(images, truths)
            ssim = float(np.mean([ssim_y(o, t, SCALE) for o, t in zip(images, truths)]))
            metrics |= {f"{name}_{split}_psnr": psnr, f"{name}_{split}_ssim": ssim}
            rows.append([split, name, f"{psnr:.2f}", f"{ssim:.4f}"])
    ctx.section(
        "x4 scores (Y channel, 4-pixel border cut)",
        markdown_table(["set", "method", "PSNR (dB)", "SSIM"], rows),
    )
    first = next(iter(outputs))
    output, truth = outputs[first]["edsr"][0], data.hr[first][0]
    y_out, y_truth = shave(rgb_to_y(output), SCALE), shave(rgb_to_y(truth), SCALE)
    reference_psnr = peak_signal_noise_ratio(y_truth, y_out, data_range=255)
    reference_ssim = structural_similarity(
        y_truth, y_out, data_range=255, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    metrics["skimage_psnr_diff"] = abs(psnr_y(output, truth, SCALE) - reference_psnr)
    metrics["skimage_ssim_diff"] = abs(ssim_y(output, truth, SCALE) - reference_ssim)
    ctx.save_json(FAILURES, failure_records(data, outputs[first], first))
    return metrics


def failure_records(
    data: SRImages, by_method: dict[str, list[np.ndarray]], split: str
) -> list[dict[str, Any]]:
    """The evaluation images EDSR-lite improves least over bicubic, worst first; the gain is the score."""
    truths = data.hr[split]
    gains = [
        psnr_y(e, t, SCALE) - psnr_y(b, t, SCALE)
        for e, b, t in zip(by_method["edsr"], by_method["bicubic"], truths)
    ]
    return [
        {
            "input": png_data_uri(data.lr[split][i]),
            "label": data.names[split][i],
            "prediction": f"+{gains[i]:.2f} dB over bicubic",
            "confidence": round(float(gains[i]), 4),
        }
        for i in np.argsort(gains, kind="stable")
    ]


def curves_figure(curves: dict[str, list[tuple[int, float]]], bicubic: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.6, 3.4))
    for name, points in curves.items():
        steps, psnrs = zip(*points)
        ax.plot(steps, psnrs, marker="o", markersize=3, label=name)
    ax.axhline(bicubic, color="grey", linestyle="--", label="bicubic")
    ax.set(xlabel="training step", ylabel="validation PSNR (dB, Y)")
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def crops_figure(data: SRImages, by_method, split: str, shown, side: int) -> plt.Figure:
    """One row per image: the same centre crop of each method's output and of the truth, with its PSNR."""
    columns = [*by_method, "truth"]
    fig, axes = plt.subplots(
        len(shown), len(columns), figsize=(1.9 * len(columns), 2.0 * len(shown)), squeeze=False
    )
    for row, i in enumerate(shown):
        truth = data.hr[split][i]
        h, w = truth.shape[:2]
        top, left = max(0, (h - side) // 2), max(0, (w - side) // 2)
        for col, name in enumerate(columns):
            image = truth if name == "truth" else by_method[name][i]
            ax = axes[row][col]
            ax.imshow(image[top : top + side, left : left + side], interpolation="nearest")
            title = name if name == "truth" else f"{name} {psnr_y(image, truth, SCALE):.2f} dB"
            ax.set_title(title, fontsize=7)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row][0].set_ylabel(data.names[split][i], fontsize=8)
    return fig


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: an uploaded picture upscaled x4 by the run's EDSR-lite."""
    model = load_run_model(run_dir, EDSRLite(SCALE, cfg.width, cfg.blocks))

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # pictures differ in size, so each is upscaled on its own
        upscaled = upscale(model, [as_rgb(item["image"]) for item in batch])
        return [{"image": png_data_uri(image), "values": {"scale": SCALE}} for image in upscaled]

    return Predictor(predict)


# a 256-pixel picture becomes 1024 pixels wide in about a second on one CPU thread
SERVING = ServingSpec(input="image", output="image", load=serve, max_side=256)
