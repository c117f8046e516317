"""V7 · Depth: a U-Net guesses depth from one picture; a learned cost volume beats block matching at stereo.

Monocular: a U-Net (models/depth.py, the one of lab v6 with a single output read as log depth) trains with
the scale-invariant loss on rendered scenes (data/render3d.py: NumPy ray casting of textured planes, boxes
and spheres, with the true depth of every pixel); scored on rendered test scenes by AbsRel, RMSE and
delta < 1.25 (metrics/depth.py, checked against torchmetrics where it has the same error). Stereo: SAD block
matching is the baseline; a learned cost-volume network (group-wise correlation, 3D hourglass, soft-argmin)
trains on rendered rectified pairs only, in a child run. Both are scored on a real pair never seen in
training: scikit-image's Middlebury `stereo_motorcycle`, scaled down by `factor` (disparities scaled the
same way) so that a CPU can take it; EPE and the share of pixels off by more than 2 pixels (the lab's metric).
Simplified: small networks, small rendered images, no real monocular data (NYUv2 is not used), no fine-tuning
on real stereo pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, UnitInterval
from dlpractice.data.batching import TensorData
from dlpractice.data.images import to_model_input
from dlpractice.data.render3d import RenderedScenes, render_batched
from dlpractice.data.stereo import motorcycle
from dlpractice.errors import DlpError
from dlpractice.metrics import depth as dm
from dlpractice.models.depth import MonoDepth, StereoNet, block_matching
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, png_data_uri, ranked_image_failures
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "v7",
    requires=("v6",),
    data=("rendered", "stereo_motorcycle"),
    metric="learned_bad2",
    goal="min",
    bar=0.15,
)
DEPTH_MAP = plt.get_cmap("magma_r")  # near is bright, far is dark
DISPARITY_MAP = plt.get_cmap("viridis").with_extremes(bad="#9e9e9e")  # grey: no true disparity
ERROR_MAP = plt.get_cmap("inferno").with_extremes(bad="#9e9e9e")


@dataclass
class Config(FitConfig):
    n_train: PositiveInt = 2000  # rendered scenes for the monocular net, per split
    n_val: PositiveInt = 200
    n_test: PositiveInt = 300
    side: PositiveInt = 64  # monocular scenes are side x side
    width: PositiveInt = 12  # the U-Net's first-stage channels
    depth: PositiveInt = 3  # its poolings
    lam: UnitInterval = 0.5  # scale-invariant loss: 1 ignores global scale, 0 is plain MSE of log depth
    stereo_train: PositiveInt = 1000  # rendered stereo pairs
    stereo_val: PositiveInt = 100
    stereo_height: PositiveInt = 64
    stereo_width: PositiveInt = 128
    max_disparity: PositiveInt = 48  # candidates of the cost volume; a multiple of 16
    features: PositiveInt = 16  # feature channels per pixel
    groups: PositiveInt = 4  # correlation groups: channels of the cost volume
    volume_width: PositiveInt = 8  # channels of the 3D hourglass at its finest scale
    stereo_steps: PositiveInt = 400
    stereo_batch_size: PositiveInt = 4
    stereo_lr: PositiveFloat = 2e-3
    factor: PositiveInt = 2  # the motorcycle pair is scaled down by this (1: 500 x 741, disparities to 60 px)
    bm_window: PositiveInt = 9  # block matching's square window, pixels (odd)
    n_shown: NonNegativeInt = 6  # rendered test scenes in the examples figure


PRESETS = {
    "smoke": {
        "n_train": 32,
        "n_val": 8,
        "n_test": 8,
        "width": 4,
        "depth": 2,
        "steps": 6,
        "batch_size": 8,
        "eval_every": 3,
        "log_every": 3,
        "stereo_train": 8,
        "stereo_val": 4,
        "stereo_height": 32,
        "stereo_width": 64,
        "features": 8,
        "volume_width": 4,
        "stereo_steps": 3,
        "stereo_batch_size": 2,
        "factor": 4,
        "n_shown": 3,
    },
    "quick": {
        "n_train": 600,
        "steps": 200,
        "batch_size": 16,
        "lr": 3e-3,
        "eval_every": 50,
        "log_every": 10,
        "stereo_train": 300,
        "stereo_steps": 120,
    },
    "full": {
        "n_train": 3000,
        "steps": 800,
        "batch_size": 16,
        "lr": 3e-3,
        "warmup_steps": 30,
        "eval_every": 100,
        "log_every": 20,
        "restore_best": True,
        "stereo_train": 1500,
        "stereo_steps": 1500,
    },
}


def check_config(cfg: Config, ctx: RunContext) -> None:
    if ctx.data == "real":
        raise DlpError(
            "v7's data is embedded (rendered scenes, scikit-image's motorcycle pair): use --data embedded"
        )
    if cfg.max_disparity % 16:
        raise DlpError(f"max_disparity must be a multiple of 16, got {cfg.max_disparity}")
    if cfg.bm_window % 2 == 0:
        raise DlpError(f"bm_window must be odd (a window centred on its pixel), got {cfg.bm_window}")


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    check_config(cfg, ctx)
    ctx.record_data(
        {
            "data_source": "embedded",
            "data_origin": "ray-cast scenes (data/render3d.py); Middlebury motorcycle pair from scikit-image",
            "split": f"{cfg.n_train}/{cfg.n_val}/{cfg.n_test} scenes",
            "stereo_split": f"{cfg.stereo_train}/{cfg.stereo_val} pairs, motorcycle scaled 1/{cfg.factor}",
        }
    )
    metrics = monocular_part(cfg, ctx)
    return metrics | stereo_part(cfg, ctx)


def monocular_part(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Train the U-Net on rendered scenes (the run's own model, the one served); test scores and figures."""
    sizes = {"train": cfg.n_train, "val": cfg.n_val, "test": cfg.n_test}
    scenes = {
        s: render_batched(n, cfg.side, cfg.side, seed=ctx.seed * 10 + i)
        for i, (s, n) in enumerate(sizes.items())
    }
    splits = {s: (torch.as_tensor(v.left), torch.as_tensor(v.depth)) for s, v in scenes.items()}
    torch.manual_seed(ctx.seed)
    model = MonoDepth(cfg.width, cfg.depth, cfg.lam)
    result = fit(model, TensorData(splits, eval_batch_size=64), cfg, ctx)
    ctx.loss_figure(result.history, title="Monocular loss (scale-invariant, log depth)", ylabel="loss")
    test = scenes["test"]
    pred = predict_depth(model.to("cpu"), splits["test"][0])
    per_scene = np.array([dm.abs_rel(p, t) for p, t in zip(pred, test.depth)])
    worst = np.argsort(-per_scene, kind="stable")
    ctx.figure(
        "depth_examples",
        depth_figure(test, pred, np.arange(min(cfg.n_shown, len(pred))), per_scene),
        "Rendered test scenes",
    )
    ctx.figure(
        "depth_worst", depth_figure(test, pred, worst[: cfg.n_shown], per_scene), "The worst test scenes"
    )
    ctx.save_json(FAILURES, failure_records(test.left, per_scene, worst))
    ctx.save_json("serving.json", {"side": cfg.side})
    return {
        "mono_abs_rel": dm.abs_rel(pred, test.depth),
        "mono_rmse": dm.rmse(pred, test.depth),
        "mono_delta1": dm.delta_accuracy(pred, test.depth),
        "mono_torchmetrics_diff": torchmetrics_gap(pred, test.depth),
        "mono_params": float(sum(p.numel() for p in model.parameters())),
        "mono_train_seconds": result.seconds,
    }


@torch.no_grad()
def predict_depth(model: MonoDepth, x: torch.Tensor, batch: int = 64) -> np.ndarray:
    """(N, H, W) depth in metres of images x (N, 3, H, W), in eval mode."""
    model.eval()
    return torch.cat([model(x[i : i + batch])[0].exp() for i in range(0, len(x), batch)]).numpy()


def torchmetrics_gap(pred: np.ndarray, true: np.ndarray) -> float:
    """The largest gap between our AbsRel and RMSE and torchmetrics' MAPE and RMSE on the same pixels."""
    from torchmetrics.functional import mean_absolute_percentage_error, mean_squared_error

    p, t = (
        torch.as_tensor(pred, dtype=torch.float64).flatten(),
        torch.as_tensor(true, dtype=torch.float64).flatten(),
    )
    return max(
        abs(dm.abs_rel(pred, true) - float(mean_absolute_percentage_error(p, t))),
        abs(dm.rmse(pred, true) - float(mean_squared_error(p, t, squared=False))),
    )


def stereo_part(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Block matching and the cost-volume net (a child run, trained on rendered pairs) on the motorcycle."""
    left, right, truth = motorcycle(cfg.factor)
    if np.nanmax(truth[np.isfinite(truth)]) >= cfg.max_disparity - 1:
        raise DlpError(
            f"the motorcycle's disparities reach max_disparity={cfg.max_disparity}: raise it or the factor"
        )
    block = block_matching(left, right, cfg.max_disparity, cfg.bm_window)
    child = ctx.child("stereo")
    torch.manual_seed(ctx.seed)
    model = StereoNet(cfg.max_disparity, cfg.features, cfg.groups, cfg.volume_width)
    # rendered nearest disparities stay a little under the candidates, so most pixels can be matched
    pairs = {
        s: render_batched(
            n, cfg.stereo_height, cfg.stereo_width, ctx.seed * 10 + 5 + i, True, 0.9 * cfg.max_disparity
        )
        for i, (s, n) in enumerate((("train", cfg.stereo_train), ("val", cfg.stereo_val)))
    }
    splits = {
        s: (torch.as_tensor(np.concatenate([p.left, p.right], 1)), torch.as_tensor(p.disparity))
        for s, p in pairs.items()
    }
    stereo_cfg = replace(cfg, steps=cfg.stereo_steps, batch_size=cfg.stereo_batch_size, lr=cfg.stereo_lr)
    result = fit(model, TensorData(splits, eval_batch_size=16), stereo_cfg, child)
    ctx.loss_figure(
        result.history, name="stereo_loss", title="Stereo loss (smooth L1, rendered pairs)", ylabel="pixels"
    )
    learned = model.to("cpu").predict(torch.as_tensor(left), torch.as_tensor(right)).numpy()
    ctx.figure(
        "motorcycle",
        disparity_figure(left, truth, {"block matching": block, "learned": learned}),
        f"Motorcycle pair (scaled 1/{cfg.factor})",
    )
    rows = [
        [name, f"{dm.end_point_error(d, truth):.2f}", f"{dm.bad_pixel_rate(d, truth):.1%}"]
        for name, d in (("block matching", block), ("learned", learned))
    ]
    ctx.section("Stereo on the motorcycle pair", markdown_table(["method", "EPE (px)", "bad > 2 px"], rows))
    return {
        "learned_bad2": dm.bad_pixel_rate(learned, truth),
        "learned_epe": dm.end_point_error(learned, truth),
        "bm_bad2": dm.bad_pixel_rate(block, truth),
        "bm_epe": dm.end_point_error(block, truth),
        "known_pixels": float(np.isfinite(truth).mean()),
        "stereo_params": float(sum(p.numel() for p in model.parameters())),
        "stereo_train_seconds": result.seconds,
    }


def depth_figure(
    scenes: RenderedScenes, pred: np.ndarray, index: np.ndarray, per_scene: np.ndarray
) -> plt.Figure:
    """One column per scene: the picture, the true depth and the predicted depth (with its AbsRel)."""
    fig, axes = plt.subplots(3, max(len(index), 1), figsize=(1.8 * max(len(index), 1), 5.6), squeeze=False)
    for col, i in enumerate(index):
        top = float(scenes.depth[i].max())
        axes[0][col].imshow(scenes.left[i].transpose(1, 2, 0))
        axes[1][col].imshow(scenes.depth[i], cmap=DEPTH_MAP, vmin=0, vmax=top)
        axes[2][col].imshow(pred[i], cmap=DEPTH_MAP, vmin=0, vmax=top)
        axes[2][col].set_title(f"AbsRel {per_scene[i]:.2f}", fontsize=8)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for row, name in enumerate(("image", "true depth", "predicted")):
        axes[row][0].set_ylabel(name, fontsize=9)
    return fig


def disparity_figure(left: np.ndarray, truth: np.ndarray, estimates: dict[str, np.ndarray]) -> plt.Figure:
    """Top: the left image, the true disparity and each estimate; bottom: each estimate's absolute error."""
    fig, axes = plt.subplots(2, 2 + len(estimates), figsize=(3.2 * (2 + len(estimates)), 4.6), squeeze=False)
    known = np.isfinite(truth)
    top = float(truth[known].max())
    axes[0][0].imshow(left.transpose(1, 2, 0))
    axes[0][0].set_title("left image", fontsize=9)
    axes[0][1].imshow(np.where(known, truth, np.nan), cmap=DISPARITY_MAP, vmin=0, vmax=top)
    axes[0][1].set_title("true disparity (grey: unknown)", fontsize=9)
    for col, (name, disparity) in enumerate(estimates.items(), start=2):
        error = np.where(known, np.abs(disparity - truth), np.nan)
        axes[0][col].imshow(disparity, cmap=DISPARITY_MAP, vmin=0, vmax=top)
        axes[0][col].set_title(name, fontsize=9)
        shown = axes[1][col].imshow(error, cmap=ERROR_MAP, vmin=0, vmax=8)
        bad = dm.bad_pixel_rate(disparity, truth)
        axes[1][col].set_title(
            f"|error|: EPE {dm.end_point_error(disparity, truth):.2f}, bad>2 {bad:.1%}", fontsize=8
        )
    fig.colorbar(shown, ax=axes[1][-1], fraction=0.046, label="pixels")
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[1][:2]:
        ax.axis("off")
    return fig


def failure_records(
    images: np.ndarray, per_scene: np.ndarray, order: np.ndarray, k: int = 100
) -> list[dict[str, Any]]:
    """The k test scenes with the highest AbsRel, worst first; the AbsRel stands where a confidence would."""
    return ranked_image_failures(
        images, order[:k], per_scene, "scene", lambda i: f"AbsRel {per_scene[i]:.2f}"
    )


def colour_depth(depth: np.ndarray) -> np.ndarray:
    """(H, W) depth -> (H, W, 3) floats in [0, 1]: near bright, far dark, stretched over this map's range."""
    low, high = float(depth.min()), float(depth.max())
    return DEPTH_MAP((depth - low) / max(high - low, 1e-6))[..., :3]


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: an uploaded picture's depth map, a coloured PNG of its size, and its depth range."""
    side = read_run_json(run_dir, "serving.json")["side"]
    model = load_run_model(run_dir, MonoDepth(cfg.width, cfg.depth, cfg.lam))

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], side, 3, dark_background=False) for item in batch])
        answers = []
        for item, depth in zip(batch, predict_depth(model, x)):  # x (B, 3, S, S), depth (B, S, S)
            height, width = item["image"].shape[:2]
            resized = torch.nn.functional.interpolate(
                torch.as_tensor(depth)[None, None], size=(height, width), mode="bilinear"
            )
            picture = colour_depth(resized[0, 0].numpy())
            values = {"min_depth": float(depth.min()), "max_depth": float(depth.max())}
            answers.append({"image": png_data_uri(picture), "values": values})
        return answers

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="image", load=serve)
