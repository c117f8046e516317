"""V9 · Generative models: an autoencoder, a VAE, a DCGAN and a DDPM draw digits; an FID-style score.

Four generators (models/generative.py) learn MNIST digits in [-1, 1]: an autoencoder (sampled from a
Gaussian fitted to its codes after training: nothing in its loss makes it a generator), a VAE (ELBO terms,
a t-SNE map of its latent space, interpolations), a DCGAN (its own two-player loop) and a DDPM (epsilon
prediction, ancestral sampling, and DDIM with fewer steps: FID against steps). Each draws n_fid digits
(at most half the test split); the FID (metrics/fid.py, checked against torchmetrics in the run) compares
them with as many digits of one test half in the features of a small digit classifier trained here on the
training split (there is no Inception offline), so scores compare within this lab only. Real-vs-real (the
other test half) is the floor. Mode coverage: the entropy of the classifier's predicted classes over the
samples (ln 10 = 2.30 is even).
Simplified: small models and minutes of CPU training, no EMA of the DDPM's weights, no class conditioning.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
from scipy.special import softmax

from dlpractice.checkpoint import save_weights
from dlpractice.config import PositiveFloat, PositiveInt
from dlpractice.data.batching import TensorData
from dlpractice.data.mnist import load_mnist
from dlpractice.metrics.fid import class_entropy, fid
from dlpractice.models import generative_figures as figures
from dlpractice.models.convnets import PlainCNN, count_parameters
from dlpractice.models.generative import DDPM, VAE, Autoencoder, ConvEncoder, Generator, train_gan
from dlpractice.models.saved import load_run_model
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, png_data_uri, ranked_image_failures
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v9", requires=("v1",), data=("mnist",), metric="ddpm_fid", goal="min")
NAMES = {"ae": "AE (Gaussian on latents)", "vae": "VAE", "dcgan": "DCGAN", "ddpm": "DDPM"}


@dataclass
class Config(FitConfig):  # FitConfig's steps, batch_size and lr train the DDPM
    diffusion_steps: PositiveInt = 200  # T: noise levels of the forward process (and of ancestral sampling)
    beta_schedule: Literal["linear", "cosine"] = "linear"
    ddpm_width: PositiveInt = 16  # channels of the noise U-Net's top level (twice that below)
    ddim_steps: tuple[PositiveInt, ...] = (10, 25, 50)  # DDIM sampling steps scored against the ancestral T
    serve_steps: PositiveInt = 20  # DDIM steps of a served 4x4 grid
    width: PositiveInt = 32  # conv channels of the AE, VAE and DCGAN (twice that in their second layer)
    latent: PositiveInt = 16  # AE and VAE code size
    gan_latent: PositiveInt = 32
    small_steps: PositiveInt = 1500  # steps of the classifier, the AE and the VAE
    small_lr: PositiveFloat = 2e-3
    gan_steps: PositiveInt = 2000
    gan_lr: PositiveFloat = 2e-4
    n_fid: PositiveInt = 500  # samples per generator (and real images per half) in each FID
    n_map: PositiveInt = 1000  # test digits in the VAE's t-SNE latent map


PRESETS = {
    "smoke": {
        "steps": 8,
        "batch_size": 16,
        "eval_every": 8,
        "log_every": 2,
        "diffusion_steps": 10,
        "ddpm_width": 8,
        "ddim_steps": (2, 5),
        "serve_steps": 4,
        "width": 8,
        "latent": 4,
        "gan_latent": 8,
        "small_steps": 8,
        "gan_steps": 8,
        "n_fid": 40,
        "n_map": 60,
    },
    "quick": {
        "steps": 800,
        "batch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 50,
        "eval_every": 200,
        "log_every": 25,
        "diffusion_steps": 100,
        "ddim_steps": (10, 25),
        "small_steps": 500,
        "gan_steps": 800,
        "n_fid": 300,
    },
    "full": {
        "steps": 3000,
        "batch_size": 32,
        "lr": 2e-3,
        "warmup_steps": 100,
        "eval_every": 1000,
        "log_every": 50,
        "ddim_steps": (10, 50),
        "small_steps": 800,
        "gan_steps": 2000,
    },
}


def load_images(ctx: RunContext) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor], dict[str, Any]]:
    """MNIST splits as images (N, 1, 28, 28) in [-1, 1] and labels (N,), and what the run records."""
    data = load_mnist(ctx.data, ctx.data_dir)
    images, labels = {}, {}
    for split in ("train", "val", "test"):
        x, y = data.arrays(split)
        images[split] = torch.as_tensor(x, dtype=torch.float32).view(-1, 1, 28, 28) * 2 - 1
        labels[split] = torch.as_tensor(y)
    return images, labels, data.describe()


@torch.no_grad()
def classify(model: PlainCNN, x: torch.Tensor, batch: int = 500) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's hidden features (N, H) (the FID's feature space) and class probabilities (N, 10)."""
    model.eval()
    feats, logits = [], []
    for i in range(0, len(x), batch):
        h = model.head[:-1](model.features(x[i : i + batch]))  # (B, H): after the hidden layer's ReLU
        feats.append(h)
        logits.append(model.head[-1](h))
    return torch.cat(feats).numpy(), softmax(torch.cat(logits).numpy(), axis=1)


def train_fit(model: torch.nn.Module, splits: dict, cfg: Config, ctx: RunContext, **knobs) -> dict[str, Any]:
    """fit() one model with some knobs of cfg replaced; its history and seconds."""
    torch.manual_seed(ctx.seed)
    result = fit(model, TensorData(splits, eval_batch_size=500), replace(cfg, **knobs), ctx)
    model.to("cpu").eval()
    return {"history": result.history, "seconds": result.seconds, "params": count_parameters(model)}


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    images, labels, info = load_images(ctx)
    half = len(images["test"]) // 2
    n = min(cfg.n_fid, half)
    real_a, real_b = images["test"][:n], images["test"][half : half + n]  # two disjoint held-out halves
    ctx.record_data(info | {"fid_images": n})
    own = {s: (images[s], images[s]) for s in ("train", "val")}  # an image is its own target
    small = {"steps": cfg.small_steps, "lr": cfg.small_lr, "batch_size": 64, "warmup_steps": 0}

    classifier = PlainCNN(1, 28, 10, width=16, hidden=64, dropout=0.2)
    labelled = {s: (images[s], labels[s]) for s in ("train", "val")}
    train_fit(classifier, labelled, cfg, ctx.child("classifier"), **small)
    _, test_probs = classify(classifier, images["test"])
    accuracy = float((test_probs.argmax(1) == labels["test"].numpy()).mean())

    runs, samples, gen = {}, {}, torch.Generator().manual_seed(ctx.seed)
    ae = Autoencoder(cfg.latent, cfg.width)
    runs["ae"] = train_fit(ae, own, cfg, ctx.child("ae"), **small)
    samples["ae"] = sample_autoencoder(ae, images["train"], n, gen)
    vae = VAE(cfg.latent, cfg.width)
    runs["vae"] = train_fit(vae, own, cfg, ctx.child("vae"), **small)
    with torch.no_grad():
        samples["vae"] = vae.decode(torch.randn(n, cfg.latent, generator=gen))
    runs["dcgan"], samples["dcgan"] = train_dcgan(images["train"], cfg, ctx.child("dcgan"), n)
    ddpm = DDPM(cfg.ddpm_width, cfg.diffusion_steps, cfg.beta_schedule)
    runs["ddpm"] = train_fit(ddpm, own, cfg, ctx)
    started = time.perf_counter()
    samples["ddpm"] = ddpm.sample(n, gen)
    runs["ddpm"]["sample_seconds"] = time.perf_counter() - started
    for steps in cfg.ddim_steps:
        samples[f"ddim{steps}"] = ddpm.sample(n, gen, ddim_steps=steps)

    real_feats, _ = classify(classifier, real_a)
    scores = {"real": fid(real_feats, classify(classifier, real_b)[0])}
    coverage = {}
    for name, x in samples.items():
        feats, probs = classify(classifier, x)
        scores[name] = fid(real_feats, feats)
        coverage[name] = (class_entropy(probs.argmax(1), 10), float(probs.max(1).mean()))
    metrics = {f"{name}_fid": value for name, value in scores.items()}
    metrics |= {f"{name}_class_entropy": c[0] for name, c in coverage.items()}
    metrics |= {f"{name}_confidence": c[1] for name, c in coverage.items()}
    metrics |= {f"{name}_seconds": r["seconds"] for name, r in runs.items()}
    metrics |= {f"{name}_params": float(r["params"]) for name, r in runs.items()}
    metrics |= model_scores(ae, vae, images["test"])
    metrics |= {
        "classifier_accuracy": accuracy,
        "ddpm_sample_seconds": runs["ddpm"]["sample_seconds"],
        "torchmetrics_fid_diff": abs(scores["ddpm"] - torchmetrics_fid(classifier, real_a, samples["ddpm"])),
    }
    report(ctx, cfg, samples, scores, coverage, runs)
    ctx.figure(
        "vae_latent",
        figures.latent_map(vae, images["test"][: cfg.n_map], labels["test"], ctx.seed),
        "VAE latent space",
    )
    ctx.figure("interpolation", figures.interpolations(vae, ae, images["test"]), "Interpolations")
    ctx.figure("denoising", figures.denoising_strip(ddpm, torch.Generator().manual_seed(ctx.seed)), "DDPM")
    _, ddpm_probs = classify(classifier, samples["ddpm"])
    ctx.save_json(FAILURES, failure_records(samples["ddpm"], ddpm_probs))
    return metrics


def sample_autoencoder(ae: Autoencoder, train: torch.Tensor, n: int, gen: torch.Generator) -> torch.Tensor:
    """Decode draws from a full-covariance Gaussian fitted to the AE's codes of the training images."""
    with torch.no_grad():
        codes = ae.encoder(train).double()  # (N, Z)
    mean, cov = codes.mean(0), torch.cov(codes.T) + 1e-6 * torch.eye(codes.shape[1], dtype=torch.float64)
    z = mean + torch.randn(n, len(mean), generator=gen, dtype=torch.float64) @ torch.linalg.cholesky(cov).T
    with torch.no_grad():
        return ae.decode(z.float())


def train_dcgan(train: torch.Tensor, cfg: Config, ctx: RunContext, n: int) -> tuple[dict, torch.Tensor]:
    """DCGAN's own loop (two optimisers; fit() trains one model on one loss), in the child run `ctx`."""
    torch.manual_seed(ctx.seed)
    generator, discriminator = Generator(cfg.gan_latent, cfg.width), ConvEncoder(1, cfg.width)
    history, seconds = train_gan(generator, discriminator, train, cfg.gan_steps, 64, cfg.gan_lr, ctx.seed)
    for row in history:
        ctx.tracker.log_metrics(row["step"], {"d_loss": row["d_loss"], "g_loss": row["g_loss"]})
    save_weights(ctx.run_dir / "model.safetensors", generator)
    generator.eval()
    with torch.no_grad():
        fake = generator(torch.randn(n, cfg.gan_latent, generator=torch.Generator().manual_seed(ctx.seed)))
    return {"history": history, "seconds": seconds, "params": count_parameters(generator)}, fake


@torch.no_grad()
def model_scores(ae: Autoencoder, vae: VAE, test: torch.Tensor) -> dict[str, float]:
    """AE reconstruction MSE (per pixel, in [-1, 1] units) and the VAE's ELBO terms (nats per image)."""
    torch.manual_seed(0)  # the VAE draws z
    nll, kl, _ = vae.elbo_terms(test)
    return {
        "ae_recon_mse": float(((ae(test)[0] - test) ** 2).mean()),
        "vae_recon_nll": float(nll.mean()),
        "vae_kl": float(kl.mean()),
        "vae_neg_elbo": float((nll + kl).mean()),
    }


def torchmetrics_fid(classifier: PlainCNN, real: torch.Tensor, fake: torch.Tensor) -> float:
    """The reference: torchmetrics' FrechetInceptionDistance with the classifier's features as its network."""
    from torchmetrics.image.fid import FrechetInceptionDistance

    features = torch.nn.Sequential(classifier.features, classifier.head[:-1]).eval()
    features.num_features = classifier.head[-1].in_features  # else torchmetrics probes it with RGB 299x299
    metric = FrechetInceptionDistance(feature=features)
    with torch.no_grad():
        metric.update(real, real=True)
        metric.update(fake, real=False)
    return float(metric.compute())


def report(ctx: RunContext, cfg: Config, samples, scores, coverage, runs) -> None:
    """The score table, the sample grids, FID bars and the training curves."""
    rows = [
        [
            NAMES.get(name, f"DDPM, DDIM {name[4:]} steps"),
            f"{scores[name]:.2f}",
            f"{coverage[name][0]:.3f}",
            f"{coverage[name][1]:.3f}",
            f"{runs[name]['params']:,}" if name in runs else "",
            f"{runs[name]['seconds']:.0f}" if name in runs else "",
        ]
        for name in samples
    ]
    rows.append(["real vs real (floor)", f"{scores['real']:.2f}", "", "", "", ""])
    header = ["samples", "FID", "class entropy (nats)", "mean confidence", "params", "train s"]
    ctx.section("FID-style scores (classifier features)", markdown_table(header, rows))
    grids = {NAMES[name]: samples[name][:64] for name in NAMES}
    ctx.figure("samples", figures.sample_grids(grids), "Samples of each model")
    ctx.figure("fid", figures.fid_bars(scores, cfg.diffusion_steps), "FID-style score (lower is better)")
    ctx.figure("curves", figures.training_curves({k: r["history"] for k, r in runs.items()}), "Training")


def failure_records(x: torch.Tensor, probs: np.ndarray, k: int = 100) -> list[dict[str, Any]]:
    """The k DDPM samples the classifier is least sure of: the digits that came out unreadable."""
    confidence = probs.max(1)
    order = np.argsort(confidence, kind="stable")[:k]
    pictures = ((x.numpy() + 1) / 2).repeat(3, axis=1)  # (N, 3, 28, 28) in [0, 1]

    def guess(i: int) -> str:
        return f"reads as {probs[i].argmax()} (p {confidence[i]:.2f})"

    return ranked_image_failures(pictures, order, confidence, "sample", guess)


def parse_seed(item: dict[str, Any]) -> int:
    """The request's text as a seed: a non-negative integer, or a one-line error."""
    text = item["text"].strip()
    if not text.isdigit() or int(text) >= 2**63:
        raise ValueError(f"the text must be a seed, a whole number from 0 to 2^63-1, not {text[:40]!r}")
    return int(text)


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a 4x4 grid of DDPM samples (DDIM, cfg.serve_steps steps) drawn from the given seed."""
    ddpm = load_run_model(run_dir, DDPM(cfg.ddpm_width, cfg.diffusion_steps, cfg.beta_schedule))

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [grid_answer(ddpm, parse_seed(item), cfg.serve_steps) for item in batch]

    def check(item: dict[str, Any]) -> None:
        parse_seed(item)

    return Predictor(predict, check)


def grid_answer(ddpm: DDPM, seed: int, steps: int) -> dict[str, Any]:
    x = ddpm.sample(16, torch.Generator().manual_seed(seed), ddim_steps=steps)  # (16, 1, 28, 28)
    grid = ((x + 1) / 2).view(4, 4, 28, 28).permute(0, 2, 1, 3).reshape(4 * 28, 4 * 28)
    return {"image": png_data_uri(grid.numpy()), "values": {"seed": seed}}


SERVING = ServingSpec(input="text", output="image", load=serve, examples=("0", "42", "2026"), max_chars=40)
