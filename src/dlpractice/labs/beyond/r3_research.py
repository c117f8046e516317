"""R3 · Three research ideas, each against its baseline: few-shot, federated averaging and a tiny NeRF.

- Few-shot (models/protonet.py): prototypical networks (Snell et al., 2017) trained on episodes of some
  letters of data/letters.py, tested on 5-way episodes of letters never seen in training, 1-shot and
  5-shot, against 1-nearest-neighbour on pixels and a classifier pretrained on the training letters whose
  features feed the nearest class mean. Accuracy: the mean over test episodes with its 95 % interval.
- Federated averaging (models/federated.py, McMahan et al., 2017): MNIST split among K clients, IID and
  non-IID (two label shards a client, or Dirichlet over labels); FedAvg (E local epochs, a fraction C of the
  clients a round, averaged by client size) and FedSGD (one full-batch step a round) against centralised SGD:
  test accuracy after each communication round.
- Tiny NeRF (models/nerf.py): one scene of data/orbit_views.py rendered from many camera poses by
  render3d's ray caster; an MLP of position, volume-rendered along rays, fitted on some views and judged
  by PSNR on held-out views, with and without positional encoding.
Data: `--data real` = the MNIST t10k files for the federated part; few-shot letters and the NeRF scene are
always generated (Omniglot is not wired in: data/fetch.py needs its SHA-256). Simplified: see the modules.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from dlpractice.checkpoint import save_weights
from dlpractice.config import Fraction, PositiveFloat, PositiveInt
from dlpractice.data.digits import Splits
from dlpractice.data.letters import render_letters
from dlpractice.data.mnist import load_mnist
from dlpractice.data.orbit_views import BACKGROUND, orbit_cameras, render_views
from dlpractice.errors import DlpError
from dlpractice.models import federated as fed
from dlpractice.models import protonet as pn
from dlpractice.models.nerf import RaySettings, TinyNeRF, render_image, train_nerf
from dlpractice.models.research_figures import few_shot_figure, psnr_figure, rounds_figure, views_figure
from dlpractice.models.transfer import train_groups
from dlpractice.registry import lab
from dlpractice.report import markdown_table

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "r3",
    requires=("v3", "v10"),
    data=("letters", "mnist", "rendered"),
    metric="protonet_5way_1shot_accuracy",
    goal="max",
)
WAYS = 5  # test episodes are 5-way, as in the paper's tables
FEW_SHOT_METHODS = {
    "pixels": "1-NN on pixels",
    "pretrained": "pretrained classifier + class means",
    "protonet": "prototypical network",
}
FED_SETTINGS = ("fedavg_iid", "fedavg_noniid", "fedsgd_iid", "fedsgd_noniid")
CAMERA_DISTANCE = 3.2  # from the origin, where the NeRF scene's objects stand


@dataclass
class Config:
    # few-shot
    letters_per_class: PositiveInt = 100  # rendered images of each of the 26 letters
    train_letters: PositiveInt = 16  # the first letters of a seeded shuffle train; the rest are unseen
    shots: tuple[PositiveInt, ...] = (1, 5)  # K of the test episodes (1 must be among them: the lab's metric)
    queries: PositiveInt = 15  # query images per class in every episode
    train_ways: PositiveInt = 5  # classes per training episode (the paper trains with more: it helps)
    width: PositiveInt = 32  # channels of every conv block of the encoder (the paper: 64)
    episodes: PositiveInt = 1500  # training episodes of each prototypical network (one per shot count)
    lr: PositiveFloat = 1e-3
    pretrain_steps: PositiveInt = 1000  # the baseline classifier's AdamW steps, batch 64
    test_episodes: PositiveInt = 600
    # federated
    clients: PositiveInt = 20  # K
    rounds: PositiveInt = 50  # communication rounds
    fraction: Fraction = 0.2  # C: the share of clients each round
    local_epochs: PositiveInt = 5  # E
    local_batch: PositiveInt = 10  # B
    fed_lr: PositiveFloat = 0.05  # FedAvg's and centralised SGD's step
    fedsgd_lr: PositiveFloat = 0.5  # FedSGD's full-batch step
    hidden: PositiveInt = 200
    non_iid: Literal["shards", "dirichlet"] = "shards"
    alpha: PositiveFloat = 0.3  # Dirichlet concentration when non_iid = dirichlet
    target: Fraction = 0.9  # the test accuracy whose first round is reported
    # tiny NeRF
    views: PositiveInt = 48  # camera poses rendered; the last `held_out` are never trained on
    held_out: PositiveInt = 8
    image_size: PositiveInt = 32
    frequencies: PositiveInt = 6  # L of the positional encoding (the comparison uses L and 0)
    nerf_width: PositiveInt = 64
    samples: PositiveInt = 32  # along each ray
    nerf_steps: PositiveInt = 2000
    batch_rays: PositiveInt = 512
    nerf_lr: PositiveFloat = 5e-3
    nerf_eval_every: PositiveInt = 100


PRESETS = {
    "smoke": {
        "letters_per_class": 12,
        "shots": (1, 2),
        "queries": 3,
        "train_ways": 5,
        "width": 8,
        "episodes": 10,
        "pretrain_steps": 10,
        "test_episodes": 10,
        "clients": 4,
        "rounds": 3,
        "local_epochs": 1,
        "hidden": 16,
        "views": 6,
        "held_out": 2,
        "image_size": 8,
        "nerf_width": 16,
        "samples": 8,
        "nerf_steps": 6,
        "batch_rays": 64,
        "nerf_eval_every": 3,
    },
    "quick": {"episodes": 500, "pretrain_steps": 300, "test_episodes": 200, "rounds": 20, "nerf_steps": 500},
    # measured here: 962 s on one loaded core (few-shot 9.5 min, federated 2 min, NeRF 4.5 min)
    "full": {},
}


def validate(cfg: Config) -> None:
    """Settings that cannot work, refused in one line before anything is trained."""
    if 1 not in cfg.shots:
        raise DlpError(f"shots={cfg.shots} lacks 1: the lab's metric is 5-way 1-shot accuracy")
    if not 2 <= cfg.train_ways <= cfg.train_letters <= 26 - WAYS:
        raise DlpError(
            f"need 2 <= train_ways <= train_letters <= {26 - WAYS} (the unseen letters hold 5-way tests)"
        )
    if cfg.letters_per_class < max(cfg.shots) + cfg.queries:
        raise DlpError(
            f"letters_per_class={cfg.letters_per_class} < shots + queries ({max(cfg.shots) + cfg.queries})"
        )
    if cfg.held_out >= cfg.views:
        raise DlpError(f"held_out={cfg.held_out} leaves none of views={cfg.views} to train on")


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    validate(cfg)
    mnist = load_mnist(ctx.data, ctx.data_dir)
    # the headline metric is measured on generated letters, so the run's source is `embedded` whatever MNIST's
    origin = f"few-shot: generated letters; federated: {mnist.origin}; NeRF: rendered by render3d"
    recorded = {"data_source": "embedded", "data_origin": origin, "federated_data_source": mnist.source}
    ctx.record_data(mnist.describe() | recorded)
    metrics = few_shot(cfg, ctx)
    metrics |= federated(cfg, ctx, mnist)
    return metrics | tiny_nerf(cfg, ctx)


# ---- few-shot: prototypical networks ----------------------------------------------------------------------


def few_shot(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Protonets (one per shot count) and both baselines on the same test episodes of unseen letters."""
    x, y = render_letters(cfg.letters_per_class, ctx.seed)
    by_class = [torch.from_numpy(x[y == c])[:, None] for c in range(26)]  # 26 x (M, 1, 28, 28)
    order = np.random.default_rng(ctx.seed).permutation(26)
    train_sets = [by_class[c] for c in order[: cfg.train_letters]]
    test_sets = [by_class[c] for c in order[cfg.train_letters :]]
    pretrained = pretrain_baseline(cfg, ctx, train_sets)
    rng = np.random.default_rng(ctx.seed + 1)
    accuracy: dict[str, dict[int, tuple[float, float]]] = {m: {} for m in FEW_SHOT_METHODS}
    for shots in cfg.shots:
        child = ctx.child(f"protonet_{shots}shot")
        torch.manual_seed(ctx.seed)
        encoder = pn.ConvEncoder(cfg.width)
        losses = pn.train_protonet(
            encoder, train_sets, cfg.train_ways, shots, cfg.queries, cfg.episodes, cfg.lr, ctx.seed
        )
        for step in range(0, len(losses), max(1, len(losses) // 50)):
            child.tracker.log_metrics(step, {"loss": losses[step]})
        save_weights(child.run_dir / "model.safetensors", encoder)
        episodes = [
            pn.sample_episode(test_sets, WAYS, shots, cfg.queries, rng) for _ in range(cfg.test_episodes)
        ]
        methods = {
            "pixels": pn.pixel_nearest_neighbour,
            "pretrained": pn.embedding_method(pretrained),
            "protonet": pn.embedding_method(encoder),
        }
        for name, method in methods.items():
            accuracy[name][shots] = pn.mean_and_interval([pn.episode_accuracy(method, e) for e in episodes])
    unseen = "".join(sorted(string.ascii_uppercase[c] for c in order[cfg.train_letters :]))
    rows = [
        [FEW_SHOT_METHODS[m], *[f"{a:.1%} ± {h:.1%}" for a, h in by.values()]] for m, by in accuracy.items()
    ]
    header = ["method", *[f"{WAYS}-way {s}-shot" for s in cfg.shots]]
    title = (
        f"Few-shot accuracy on the unseen letters {unseen} ({cfg.test_episodes} test episodes, 95 % interval)"
    )
    ctx.section(title, markdown_table(header, rows))
    fig = few_shot_figure(accuracy, FEW_SHOT_METHODS, WAYS)
    ctx.figure("few_shot", fig, "Few-shot accuracy on unseen letters by method and shots")
    metrics = {}
    for name, by_shots in accuracy.items():
        for shots, (mean, half) in by_shots.items():
            metrics[f"{name}_{WAYS}way_{shots}shot_accuracy"] = mean
            metrics[f"{name}_{WAYS}way_{shots}shot_ci95"] = half
    return metrics


def pretrain_baseline(cfg: Config, ctx: RunContext, train_sets: list[torch.Tensor]) -> torch.nn.Module:
    """The same encoder trained as an ordinary classifier of every training letter (a tenth of each letter's
    images validate); the baseline keeps its encoder."""
    torch.manual_seed(ctx.seed)
    model = pn.PretrainedClassifier(pn.ConvEncoder(cfg.width), cfg.width, len(train_sets))
    train, val = pn.labelled_split(train_sets, 0.1)
    groups = [{"params": list(model.parameters()), "lr": cfg.lr}]
    curve = train_groups(model, groups, train, val, cfg.pretrain_steps, 64, cfg.pretrain_steps, ctx.seed)
    ctx.child("pretrained").tracker.log_metrics(cfg.pretrain_steps, {"val_accuracy": curve[-1][1]})
    return model.encoder


# ---- federated averaging ----------------------------------------------------------------------------------


def federated(cfg: Config, ctx: RunContext, mnist: Splits) -> dict[str, float]:
    """FedAvg and FedSGD on IID and non-IID clients, and centralised SGD, from the same initial weights."""
    x_train, y_train = mnist.arrays("train")
    x_test, y_test = mnist.arrays("test")
    test = (torch.as_tensor(x_test, dtype=torch.float32), torch.as_tensor(y_test))
    rng = np.random.default_rng(ctx.seed)
    splits = {
        "iid": fed.iid_split(y_train, cfg.clients, rng),
        "noniid": fed.shard_split(y_train, cfg.clients, rng)
        if cfg.non_iid == "shards"
        else fed.dirichlet_split(y_train, cfg.clients, rng, cfg.alpha),
    }
    x, y = torch.as_tensor(x_train, dtype=torch.float32), torch.as_tensor(y_train)
    curves = {}
    for setting in FED_SETTINGS:
        algorithm, split = setting.split("_")
        clients = [fed.Client(x[p], y[p]) for p in splits[split]]
        local = (
            (cfg.local_epochs, cfg.local_batch, cfg.fed_lr)
            if algorithm == "fedavg"
            else (1, 0, cfg.fedsgd_lr)
        )
        curves[setting] = fed.train_federated(
            clients, test, cfg.rounds, cfg.fraction, *local, cfg.hidden, ctx.seed
        )
        child = ctx.child(setting)
        for r, value in enumerate(curves[setting], 1):
            child.tracker.log_metrics(r, {"test_accuracy": value})
    central = fed.train_centralised(
        fed.Client(x, y), test, cfg.rounds, cfg.local_batch, cfg.fed_lr, cfg.hidden, ctx.seed
    )
    metrics = {"centralised_test_accuracy": central[-1]}
    rows = []
    for setting, curve in curves.items():
        reached = next((r for r, a in enumerate(curve, 1) if a >= cfg.target), None)
        metrics[f"{setting}_test_accuracy"] = curve[-1]
        if reached is not None:
            metrics[f"{setting}_rounds_to_target"] = float(reached)
        rows.append([setting, f"{curve[-1]:.1%}", f"{max(curve):.1%}", reached or f"> {cfg.rounds}"])
    rows.append([f"centralised SGD ({cfg.rounds} epochs)", f"{central[-1]:.1%}", f"{max(central):.1%}", "-"])
    metrics["noniid_labels_per_client"] = float(
        (fed.label_histogram(splits["noniid"], y_train) > 0).sum(1).mean()
    )
    header = ["setting", "final test accuracy", "best", f"rounds to {cfg.target:.0%}"]
    title = (
        f"Federated MNIST: K={cfg.clients}, C={cfg.fraction}, E={cfg.local_epochs}, B={cfg.local_batch}; "
        f"non-IID by {cfg.non_iid}: {metrics['noniid_labels_per_client']:.1f} labels a client"
    )
    ctx.section(title, markdown_table(header, rows))
    ctx.figure("federated", rounds_figure(curves, central), "Test accuracy against communication rounds")
    return metrics


# ---- tiny NeRF --------------------------------------------------------------------------------------------


def tiny_nerf(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """A NeRF with and without positional encoding fitted to the training views, judged on held-out ones."""
    cameras = orbit_cameras(cfg.views, CAMERA_DISTANCE, np.random.default_rng(ctx.seed))
    views = render_views(cameras, cfg.image_size, ctx.seed)
    arrays = [
        torch.from_numpy(a) for a in (views.origins, views.directions, views.images)
    ]  # 3 x (V, H, W, 3)
    n_train = cfg.views - cfg.held_out
    train = tuple(a[:n_train].reshape(-1, 3) for a in arrays)  # 3 x (n_train * H * W, 3): one row a ray
    held_out = tuple(a[n_train:] for a in arrays)
    # the objects lie within 1.6 of the origin, the cameras 3.2 from it
    settings = RaySettings(near=1.6, far=4.8, samples=cfg.samples, background=BACKGROUND)
    curves, renders = {}, {}
    for name, frequencies in (("with positional encoding", cfg.frequencies), ("without", 0)):
        torch.manual_seed(ctx.seed)
        model = TinyNeRF(frequencies, cfg.nerf_width)
        steps = (cfg.nerf_steps, cfg.batch_rays, cfg.nerf_lr, cfg.nerf_eval_every)
        curves[name] = train_nerf(model, train, held_out, settings, *steps, ctx.seed)
        child = ctx.child("nerf_pe" if frequencies else "nerf_no_pe")
        for step, value in curves[name]:
            child.tracker.log_metrics(step, {"held_out_psnr": value})
        save_weights(child.run_dir / "model.safetensors", model)
        renders[name] = [
            render_image(model, o, d, settings) for o, d in zip(held_out[0][:3], held_out[1][:3])
        ]
    rows = [
        [name, f"{curve[-1][1]:.2f}", f"{max(v for _, v in curve):.2f}"] for name, curve in curves.items()
    ]
    size = f"{cfg.image_size} px a side"
    title = f"Tiny NeRF: PSNR (dB) on {cfg.held_out} held-out views ({n_train} training views, {size})"
    ctx.section(title, markdown_table(["model", "final", "best"], rows))
    ctx.figure("nerf_views", views_figure(held_out[2][:3], renders), "Held-out views: truth and renders")
    ctx.figure("nerf_psnr", psnr_figure(curves), "Held-out PSNR against training steps")
    pe, no_pe = (curve[-1][1] for curve in curves.values())
    return {"nerf_pe_held_out_psnr": pe, "nerf_no_pe_held_out_psnr": no_pe}
