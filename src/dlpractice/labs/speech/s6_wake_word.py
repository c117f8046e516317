"""S6 · Wake-word detection: a DS-CNN keyword spotter run over long audio, scored by misses at 1 false
accept per hour, then personalised to one unseen voice from a few enrolment clips.

The keyword ("marvin") is read by eSpeak NG voices at many pitches and rates (data/wakeword.py); the
negatives are other words (confusables like "marvel", "martin" among them), seconds of sentences and
noise. Voices are split by timbre, so the test voices are unseen. The model (models/dscnn.py) classifies
1 s windows of 40 log-mel bands. Streaming (metrics/wakeword.py): a window every `stride_frames`, the
keyword posterior averaged over the last few windows, a threshold, and a refractory period so that one
keyword fires once. The threshold is the lowest one with at most 1 false accept per hour on keyword-free
streams (minutes of synthetic talk and noise; the preset says how many), and the false-reject rate (FRR) is
measured at it on streams with keywords inserted at known times. Personalisation: a last-layer fine-tune
on 5 clips of a voice no split holds, with the threshold set again at 1 FA/h. Simplified: the audio is all
synthetic (eSpeak voices are far more alike than people, and the streams hold no real room noise).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from dlpractice.data import wakeword as ww
from dlpractice.data.batching import TensorData
from dlpractice.data.speech import random_speakers
from dlpractice.metrics import wakeword as kws
from dlpractice.models.dscnn import DSCNN
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.registry import lab
from dlpractice.serving import Predictor, ServingSpec
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("s6", requires=("s2",), data=("espeak-ng",), metric="frr_at_1fa_per_hour", goal="min")

FRAMES_PER_SECOND = ww.SAMPLE_RATE / ww.HOP
GRID = np.concatenate([np.linspace(0.02, 0.98, 97), 1 - np.logspace(-2, -5, 40)])  # thresholds swept


@dataclass
class Config(FitConfig):
    train_clips: tuple[PositiveInt, PositiveInt] = (1200, 2400)  # keyword, other
    val_clips: tuple[PositiveInt, PositiveInt] = (150, 300)
    test_clips: tuple[PositiveInt, PositiveInt] = (200, 400)
    negative_minutes: PositiveFloat = 60.0  # keyword-free talk and noise, for false accepts per hour
    test_keywords: PositiveInt = 200  # keywords by unseen voices inserted in streams
    keywords_per_stream: PositiveInt = 20
    channels: PositiveInt = 64
    blocks: PositiveInt = 4
    dropout: Probability = 0.1
    stride_frames: PositiveInt = 10  # a window every 100 ms (even: the feature map has one column per 2)
    smooth_windows: PositiveInt = 3  # the posterior averaged over the last 3 windows
    refractory_windows: PositiveInt = 10  # 1 s without a second detection
    tolerance_s: PositiveFloat = 1.5  # a detection up to this long after the keyword ends is a hit
    enrol_clips: PositiveInt = 5
    personal_keywords: PositiveInt = 40
    augment_copies: PositiveInt = 20  # each enrolment clip shifted and re-noised this many times
    adapt_steps: NonNegativeInt = 200
    target_fa_per_hour: PositiveFloat = 1.0


PRESETS = {
    "smoke": {
        "train_clips": (24, 36),
        "val_clips": (6, 6),
        "test_clips": (6, 6),
        "negative_minutes": 1.0,
        "test_keywords": 4,
        "keywords_per_stream": 4,
        "channels": 8,
        "blocks": 1,
        "steps": 6,
        "batch_size": 8,
        "eval_every": 3,
        "log_every": 3,
        "enrol_clips": 3,
        "personal_keywords": 3,
        "augment_copies": 2,
        "adapt_steps": 5,
    },
    "quick": {
        "train_clips": (400, 800),
        "negative_minutes": 10.0,
        "test_keywords": 100,
        "channels": 32,
        "blocks": 3,
        "steps": 300,
        "batch_size": 32,
        "lr": 5e-3,
        "eval_every": 100,
        "log_every": 25,
    },
    "full": {
        "channels": 48,
        "steps": 700,
        "batch_size": 32,
        "lr": 5e-3,
        "weight_decay": 0.01,
        "eval_every": 100,
        "log_every": 50,
        "restore_best": True,
    },
}


def clip_features(clips: ww.Clips) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, 101, n_mels) features and (N,) labels."""
    return torch.stack([ww.features(a) for a in clips.audio]), torch.as_tensor(clips.labels)


@torch.no_grad()
def embed(model: DSCNN, x: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """(N, C) pooled embeddings of (N, T, n_mels) windows, in batches."""
    model.eval()
    return torch.cat([model.embed(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def windows(feats: torch.Tensor, stride: int) -> torch.Tensor:  # for short recordings (serving)
    """(frames, F) -> (N, 101, F): 1 s windows every `stride` frames."""
    return feats.unfold(0, ww.WINDOW_FRAMES, stride).transpose(1, 2)


@dataclass
class StreamEmbeddings:
    vectors: torch.Tensor  # (N, C): one per window
    times: np.ndarray  # (N,) the end of each window, seconds
    stream: ww.Stream


@torch.no_grad()
def embed_stream(model: DSCNN, stream: ww.Stream, stride: int) -> StreamEmbeddings:
    """Window embeddings of a whole stream with the convolutions run once: the mean of the final feature
    map over each window's columns (one column per 2 frames) equals `embed` of the cut-out window except
    near its edges, where the layers' receptive field (about +-13 frames) sees the neighbouring audio.
    About ten times cheaper than embedding overlapping windows one by one at a 100 ms stride."""
    model.eval()
    columns = model.feature_map(ww.features(stream.audio)[None]).mean(3)[0]  # (C, T')
    width, step = ww.WINDOW_FRAMES // 2 + 1, stride // 2  # in columns
    sums = torch.nn.functional.pad(columns.cumsum(1), (1, 0))  # (C, T' + 1)
    starts = torch.arange(0, columns.shape[1] - width + 1, step)
    vectors = ((sums[:, starts + width] - sums[:, starts]) / width).T  # (N, C)
    times = (starts.numpy() * 2 + ww.WINDOW_FRAMES) / FRAMES_PER_SECOND
    return StreamEmbeddings(vectors, times, stream)


@torch.no_grad()
def scores(head: torch.nn.Module, streams: list[StreamEmbeddings], cfg: Config) -> list[kws.StreamScores]:
    """Each stream's smoothed keyword posterior under a classifier head."""
    out = []
    for s in streams:
        posterior = head(s.vectors).softmax(-1)[:, ww.KEYWORD_LABEL].numpy()
        smoothed = kws.smooth_posteriors(posterior, cfg.smooth_windows)
        out.append(kws.StreamScores(smoothed, s.times, s.stream.keywords, s.stream.seconds))
    return out


def frr_at_target(head, positives, negatives, cfg: Config) -> tuple[float, float]:
    """(FRR, threshold) at the lowest threshold with at most the target FA/h on the negatives."""
    negative_scores = scores(head, negatives, cfg)
    threshold = kws.threshold_at(negative_scores, cfg.target_fa_per_hour, cfg.refractory_windows, GRID)
    frr, _ = kws.error_rates(scores(head, positives, cfg), threshold, cfg.refractory_windows, cfg.tolerance_s)
    return frr, threshold


def adapt_head(
    head: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, steps: int, seed: int
) -> torch.nn.Module:
    """A copy of the last layer fine-tuned on fixed embeddings (B, C): the rest of the model is frozen."""
    torch.manual_seed(seed)
    adapted = copy.deepcopy(head)
    optimiser = torch.optim.Adam(adapted.parameters(), lr=1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(adapted(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return adapted.eval()


def enrolment_embeddings(model: DSCNN, cfg: Config, seed: int) -> torch.Tensor:
    """(enrol * copies, C): each enrolment clip circularly shifted up to +-0.25 s and noised again."""
    rng = np.random.default_rng(seed)
    enrol = ww.personal_clips(cfg.enrol_clips, seed)
    shifted = [
        ww.noisy(np.roll(a, int(rng.integers(-4000, 4001))), rng)
        for a in enrol.audio
        for _ in range(cfg.augment_copies)
    ]
    return embed(model, torch.stack([ww.features(a) for a in shifted]))


def personalise(model, train_x, train_y, negatives, cfg: Config, ctx: RunContext) -> dict[str, float]:
    """FRR of the enrolled (unseen) voice at 1 FA/h before and after a last-layer fine-tune."""
    rng = np.random.default_rng([ctx.seed, 7])
    speakers = [ww.jittered(ww.PERSONAL, rng) for _ in range(cfg.personal_keywords)]
    personal = [
        embed_stream(model, s, cfg.stride_frames)
        for s in ww.keyword_streams(speakers, cfg.keywords_per_stream, ctx.seed + 500)
    ]
    before, _ = frr_at_target(model.head, personal, negatives, cfg)
    enrolled = enrolment_embeddings(model, cfg, ctx.seed + 900)
    x = torch.cat([embed(model, train_x), enrolled])
    y = torch.cat([train_y, torch.full((len(enrolled),), ww.KEYWORD_LABEL)])
    head = adapt_head(model.head, x, y, cfg.adapt_steps, ctx.seed)
    after, threshold = frr_at_target(head, personal, negatives, cfg)
    return {"personal_frr_before": before, "personal_frr_after": after, "personal_threshold": threshold}


def det_figure(fa: np.ndarray, frr: np.ndarray, target: float, hours: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.step(np.maximum(fa, 0.1 / hours), frr, where="post", marker=".")
    ax.axvline(target, color="grey", ls="--", label=f"{target:g} false accept / hour")
    ax.set(xscale="log", xlabel=f"false accepts per hour ({hours:.2f} h of keyword-free audio)")
    ax.set(ylabel="false-reject rate (unseen voices)", title="DET curve: misses against false alarms")
    ax.legend()
    fig.tight_layout()
    return fig


def stream_figure(s: kws.StreamScores, stream: ww.Stream, threshold: float, cfg: Config) -> plt.Figure:
    """A stream's waveform with its keywords shaded, the smoothed posterior, the threshold and detections."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 4.5), sharex=True)
    t = np.arange(len(stream.audio)) / ww.SAMPLE_RATE
    top.plot(t[::8], stream.audio[::8], lw=0.3, color="k")
    for ax in (top, bottom):
        for start, end in stream.keywords:
            ax.axvspan(start, end, color="tab:green", alpha=0.3)
    top.set(ylabel="audio", title="A test stream: keywords shaded, detections as red lines")
    bottom.plot(s.times, s.smoothed, label="smoothed keyword posterior")
    bottom.axhline(threshold, color="grey", ls="--", label=f"threshold {threshold:.3f} (1 FA/h)")
    for d in s.times[kws.detect(s.smoothed, threshold, cfg.refractory_windows)]:
        bottom.axvline(d, color="tab:red")
    bottom.set(xlabel="seconds", ylabel="posterior", ylim=(0, 1.02))
    bottom.legend(loc="upper right", fontsize=7)
    fig.tight_layout()
    return fig


def build(cfg: Config) -> DSCNN:
    return DSCNN(40, len(ww.CLASSES), cfg.channels, cfg.blocks, cfg.dropout)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    counts = (cfg.train_clips, cfg.val_clips, cfg.test_clips)
    clips = ww.splits(tuple(c[0] for c in counts), tuple(c[1] for c in counts), ctx.seed)
    data = {name: clip_features(c) for name, c in clips.items()}
    sizes = {f"n_{name}": len(labels) for name, (_, labels) in data.items()}
    ctx.record_data(
        {"data_source": "embedded", "data_origin": "eSpeak NG (synthetic)", "keyword": ww.KEYWORD} | sizes
    )
    torch.manual_seed(ctx.seed)
    model = build(cfg)
    result = fit(model, TensorData({k: data[k] for k in ("train", "val")}, eval_batch_size=256), cfg, ctx)
    ctx.loss_figure(result.history, ylabel="cross-entropy (nats)")
    model.to("cpu").eval()
    with torch.no_grad():
        test_logits = model.head(embed(model, data["test"][0]))
    metrics = {"test_clip_accuracy": float((test_logits.argmax(1) == data["test"][1]).float().mean())}

    negatives = [
        embed_stream(model, s, cfg.stride_frames)
        for s in ww.negative_streams(cfg.negative_minutes, ctx.seed + 100)
    ]
    rng = np.random.default_rng([ctx.seed, 6])
    speakers = random_speakers(cfg.test_keywords, rng, variants=ww.TEST_VARIANTS)
    positives = [
        embed_stream(model, s, cfg.stride_frames)
        for s in ww.keyword_streams(speakers, cfg.keywords_per_stream, ctx.seed)
    ]
    hours = sum(n.stream.seconds for n in negatives) / 3600
    frr, threshold = frr_at_target(model.head, positives, negatives, cfg)
    positive_scores, negative_scores = scores(model.head, positives, cfg), scores(model.head, negatives, cfg)
    fa, frrs = kws.det_curve(positive_scores, negative_scores, cfg.refractory_windows, cfg.tolerance_s, GRID)
    ctx.figure("det", det_figure(fa, frrs, cfg.target_fa_per_hour, hours), "DET curve on unseen voices")
    ctx.figure(
        "stream", stream_figure(positive_scores[0], positives[0].stream, threshold, cfg), "A test stream"
    )
    metrics |= {"frr_at_1fa_per_hour": frr, "threshold": threshold, "negative_hours": hours}
    metrics |= personalise(model, data["train"][0], data["train"][1], negatives, cfg, ctx)
    ctx.section("Streaming detection", wake_table(metrics, cfg))
    return metrics | {"train_seconds": result.seconds}


def wake_table(m: dict[str, float], cfg: Config) -> str:
    return "\n".join(
        [
            f"- keyword-free audio: {m['negative_hours']:.2f} h; "
            f"threshold at {cfg.target_fa_per_hour:g} FA/h: {m['threshold']:.4f}",
            f"- FRR there (unseen voices, {cfg.test_keywords} keywords): {m['frr_at_1fa_per_hour']:.1%}",
            f"- enrolled voice {ww.PERSONAL.name}: FRR {m['personal_frr_before']:.1%} before, "
            f"{m['personal_frr_after']:.1%} after a last-layer fine-tune on {cfg.enrol_clips} clips",
        ]
    )


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: where the keyword is heard in a recording of any length and sample rate, by the run's
    streaming detector (a window every stride_frames, smoothed posteriors, its 1 FA/h threshold, the
    refractory period): each detection as the 1 s window that fired."""
    model = load_run_model(run_dir, build(cfg)).eval()
    threshold = read_run_json(run_dir, "run.json")["metrics"]["threshold"]

    @torch.no_grad()
    def predict(batch: list[dict]) -> list[dict]:
        answers = []
        for item in batch:
            wave = np.asarray(item["audio"], dtype=np.float32)
            if item["sample_rate"] != ww.SAMPLE_RATE:
                wave = ww.resample(wave, int(item["sample_rate"]), ww.SAMPLE_RATE)
            wave = np.pad(wave, (0, max(0, ww.SAMPLE_RATE - len(wave))))  # at least one window
            vectors = embed(model, windows(ww.features(wave), cfg.stride_frames))  # (N, C)
            posterior = model.head(vectors).softmax(-1)[:, ww.KEYWORD_LABEL].numpy()  # (N,)
            smoothed = kws.smooth_posteriors(posterior, cfg.smooth_windows)
            fired = kws.detect(smoothed, threshold, cfg.refractory_windows)
            ends = (fired * cfg.stride_frames + ww.WINDOW_FRAMES) / FRAMES_PER_SECOND  # seconds
            answers.append({"segments": [{"speaker": ww.KEYWORD, "start": e - 1.0, "end": e} for e in ends]})
        return answers

    return Predictor(predict)


SERVING = ServingSpec(input="audio", output="segments", load=serve)
