"""S3 · Speaker diarisation: who spoke when, from speaker embeddings trained for speaker identification.

Two embedders learn to tell training speakers apart from random 1.5 s crops of 40 log-mel bands: the
x-vector TDNN (models/tdnn.py, statistics pooling) and ECAPA-TDNN (models/ecapa.py, SE-Res2 blocks,
attentive statistics pooling, an additive-margin softmax). Speakers are eSpeak NG voices x variants x
pitch x rate (data/conversations.py). On speakers never heard in training they are scored as verifiers
(every pair of test utterances a trial, cosine scores: EER and minDCF) and as the heart of a diariser
(models/diarization.py): energy VAD, 1.5 s windows every 0.5 s, embeddings, then agglomerative or
spectral clustering with the number of speakers estimated, not given. Test: synthetic 2-4 speaker
conversations with pauses and overlaps, scored by DER with a 0.25 s collar (metrics/diarization.py,
checked against pyannote.metrics). The VAD margin, the agglomerative threshold and the spectral
pruning are tuned on development conversations with other unseen speakers. Beside it, ECAPA trained on
FSDD's six real speakers (speaker identification on the usual test takes 0-4). Simplified: eSpeak voices
are far more alike than people and never talk over each other for long; one speaker per frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from dlpractice.config import FiniteFloat, NonNegativeInt, PositiveFloat, PositiveInt, UnitInterval
from dlpractice.data import conversations as cv
from dlpractice.data import fsdd
from dlpractice.data import langid_speech as lid
from dlpractice.data.audio import resample, save_audio
from dlpractice.metrics import diarization as dia
from dlpractice.metrics import diarization_figures as figs
from dlpractice.models import diarization as dz
from dlpractice.models.ecapa import ECAPA
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.models.tdnn import TDNN
from dlpractice.models.vad import tune_energy_margin
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import Predictor, ServingSpec
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("s3", requires=("s2",), data=("espeak-ng", "fsdd"), metric="der", goal="min", bar=0.10)

SETTINGS_FILE = "diarization.json"  # the tuned VAD margin and clustering, for `dlp serve`


@dataclass
class Config(FitConfig):
    train_speakers: PositiveInt = 150
    utterances_per_speaker: PositiveInt = 14  # of which val_per_speaker are held out (speaker-ID val)
    val_per_speaker: PositiveInt = 2
    test_speakers: PositiveInt = 40  # unseen: verification trials and the test conversations' cast
    test_utterances: PositiveInt = 6  # per test speaker, for EER
    dev_conversations: PositiveInt = 10  # with other unseen speakers: tuning
    test_conversations: PositiveInt = 30
    overlap_share: UnitInterval = 0.2  # turns that start before the last one ended
    snr_db: FiniteFloat = 20.0  # white noise over the conversations, measured over their speech
    n_mels: PositiveInt = 40
    channels: PositiveInt = 128  # ECAPA (a multiple of 8: Res2 groups)
    embed_dim: PositiveInt = 128
    margin: UnitInterval = 0.2
    xvector_channels: PositiveInt = 128
    crop_frames: PositiveInt = 150  # training crops: 1.5 s, as long as a diarisation window
    window_frames: PositiveInt = 150
    hop_frames: PositiveInt = 50  # a turn change is placed to within +-0.25 s
    max_speakers: PositiveInt = 6
    fsdd_steps: PositiveInt = 300
    # SpecAugment on FSDD's short clips slowed learning: 84 % vs 63 % after 150 steps (32 channels)
    fsdd_augment: bool = False
    embedded_takes: PositiveInt = 20  # --data embedded: eSpeak digit takes per speaker and digit
    tsne_speakers: PositiveInt = 10
    n_audio: NonNegativeInt = 2
    fsdd_lr: PositiveFloat = 3e-3


PRESETS = {
    "smoke": {
        "train_speakers": 6,
        "utterances_per_speaker": 4,
        "val_per_speaker": 1,
        "test_speakers": 6,
        "test_utterances": 2,
        "dev_conversations": 1,
        "test_conversations": 2,
        "channels": 16,
        "embed_dim": 16,
        "xvector_channels": 16,
        "crop_frames": 60,
        "steps": 4,
        "fsdd_steps": 4,
        "embedded_takes": 8,
        "batch_size": 8,
        "eval_every": 4,
        "log_every": 2,
        "tsne_speakers": 3,
        "n_audio": 1,
    },
    "quick": {
        "train_speakers": 60,
        "utterances_per_speaker": 10,
        "test_speakers": 20,
        "dev_conversations": 6,
        "test_conversations": 12,
        "channels": 64,
        "xvector_channels": 96,
        "steps": 200,
        "fsdd_steps": 150,
        "batch_size": 32,
        "lr": 3e-3,
        "eval_every": 100,
        "log_every": 25,
    },
    "full": {
        "channels": 96,  # 128 costs 1.3x the time
        "steps": 400,
        "fsdd_steps": 800,  # 99.7 %; 500 steps with SpecAugment reached 95.7 %, the loss still falling
        "batch_size": 32,
        "lr": 3e-3,
        "weight_decay": 0.01,
        "eval_every": 100,
        "log_every": 50,
        "restore_best": True,
    },
}


def build(cfg: Config, n_speakers: int) -> ECAPA:
    return ECAPA(cfg.n_mels, n_speakers, cfg.channels, cfg.embed_dim, margin=cfg.margin)


def build_xvector(cfg: Config, n_speakers: int) -> TDNN:
    return TDNN(cfg.n_mels, n_speakers, cfg.xvector_channels, 2 * cfg.xvector_channels, cfg.embed_dim)


def train(
    model: torch.nn.Module, splits: dict, cfg: Config, ctx: RunContext, name: str, augment: bool = True
) -> torch.nn.Module:
    """Speaker identification on random crops (with SpecAugment masks), as fit() trains any classifier."""
    torch.manual_seed(ctx.seed)
    result = fit(model, lid.CropBatches(splits, cfg.crop_frames, augment), cfg, ctx)
    ctx.loss_figure(result.history, name=f"loss_{name}", title=f"Loss: {name}", ylabel="cross-entropy (nats)")
    return model.to("cpu").eval()


@torch.no_grad()
def utterance_vectors(embed, feats: list[torch.Tensor]) -> np.ndarray:
    return torch.cat([embed(f[None]) for f in feats]).numpy()


@torch.no_grad()
def accuracy(model: torch.nn.Module, feats: list[torch.Tensor], labels: torch.Tensor) -> float:
    """Speaker identification accuracy, one whole utterance at a time."""
    logits = torch.cat([model(f[None])[0] for f in feats])
    return float((logits.argmax(1) == labels).float().mean())


def vad_margin(convs: list[cv.Conversation]) -> float:
    """The energy VAD's margin with the best frame F1 on the dev conversations."""
    energies = [dz.frame_energy_db(torch.as_tensor(c.audio)).numpy() for c in convs]
    labels = [c.speech_frames(dz.FRAME_SECONDS, len(e)) for c, e in zip(convs, energies)]
    return tune_energy_margin(energies, labels)[0]


@dataclass
class Data:
    splits: dict  # speaker identification: {split: (features, ids)} of the training speakers
    test_feats: list[torch.Tensor]  # utterances of unseen speakers, for verification
    test_ids: np.ndarray
    dev: list[cv.Conversation]  # tuning, with other unseen speakers
    test: list[cv.Conversation]
    feats: dict[str, list[torch.Tensor]]  # "dev", "test": each conversation's (frames, F) features


def load(cfg: Config, seed: int) -> Data:
    train_speakers = cv.speaker_set(cfg.train_speakers, seed)
    test_speakers = cv.speaker_set(cfg.test_speakers, seed + 1, exclude=train_speakers)
    dev_speakers = cv.speaker_set(cfg.test_speakers, seed + 2, exclude=train_speakers + test_speakers)
    waves, ids = cv.speaker_utterances(train_speakers, cfg.utterances_per_speaker, seed)
    test_waves, test_ids = cv.speaker_utterances(test_speakers, cfg.test_utterances, seed + 1)
    talk = {"overlap_share": cfg.overlap_share, "snr_db": cfg.snr_db}
    dev = cv.conversations(cfg.dev_conversations, dev_speakers, seed + 2, **talk)
    test = cv.conversations(cfg.test_conversations, test_speakers, seed + 1, **talk)
    return Data(
        cv.identification_splits(waves, ids, cfg.utterances_per_speaker, cfg.val_per_speaker, cfg.n_mels),
        [lid.features(w, cv.SAMPLE_RATE, cfg.n_mels) for w in test_waves],
        test_ids,
        dev,
        test,
        {
            k: [lid.features(c.audio, cv.SAMPLE_RATE, cfg.n_mels) for c in v]
            for k, v in (("dev", dev), ("test", test))
        },
    )


def diarise_test(embed, context: int, data: Data, cfg: Config, margin: float, seed: int):
    """{method: (dev-tuned settings, a hypothesis per test conversation)} for one embedder."""
    base = dz.DiarizationSettings(
        cfg.window_frames, cfg.hop_frames, margin, max_speakers=cfg.max_speakers, min_context=context
    )
    with torch.no_grad():
        prepared = {
            split: [
                dz.prepare(c.audio, f, embed, base) for c, f in zip(getattr(data, split), data.feats[split])
            ]
            for split in ("dev", "test")
        }
    tuned = dz.tune(prepared["dev"], [c.turns for c in data.dev], base, seed)
    return {m: (s, [dz.assign(p, s, seed) for p in prepared["test"]]) for m, s in tuned.items()}


def der_row(name: str, method: str, convs: list[cv.Conversation], hypotheses) -> tuple[dict, list[str]]:
    """DER, its parts and how often the number of speakers was right: metrics and a table row."""
    parts = dia.corpus_der((c.turns, h) for c, h in zip(convs, hypotheses))
    counted = float(
        np.mean([len({t.speaker for t in h}) == len(c.speakers) for c, h in zip(convs, hypotheses)])
    )
    share = [f"{x / max(parts.total, 1e-12):.1%}" for x in (parts.missed, parts.false_alarm, parts.confusion)]
    metrics = {f"der_{name}_{method}": parts.der, f"speaker_count_accuracy_{name}_{method}": counted}
    return metrics, [name, method, f"{parts.der:.1%}", *share, f"{counted:.0%}"]


def fsdd_speaker_id(cfg: Config, ctx: RunContext) -> dict[str, float]:
    """ECAPA trained to tell FSDD's speakers apart; accuracy on the test takes 0-4."""
    digits = fsdd.load_digits(ctx.data, ctx.data_dir, takes=cfg.embedded_takes)
    ctx.data_info["fsdd_source"] = f"{digits.source}: {digits.origin}"  # the source used, not the one asked
    names = sorted({c.speaker for c in digits.splits["train"]})
    splits = {
        split: (
            [lid.features(c.audio, digits.sample_rate, cfg.n_mels) for c in clips],
            torch.tensor([names.index(c.speaker) for c in clips]),
        )
        for split, clips in digits.splits.items()
    }
    fsdd_cfg = replace(cfg, steps=cfg.fsdd_steps, lr=cfg.fsdd_lr)
    model = train(build(cfg, len(names)), splits, fsdd_cfg, ctx.child("fsdd"), "fsdd", cfg.fsdd_augment)
    return {
        "fsdd_speaker_accuracy": accuracy(model, *splits["test"]),
        "fsdd_test_clips": float(len(splits["test"][1])),
    }


def save_listening(test: list[cv.Conversation], hypotheses: list[list[dia.Turn]], cfg: Config, ctx) -> None:
    """A few test conversations as WAV beside the report, with their reference and found RTTMs."""
    audio_dir = ctx.run_dir / "audio"
    audio_dir.mkdir(exist_ok=True)
    links = []
    for conv, hyp in list(zip(test, hypotheses))[: cfg.n_audio]:
        save_audio(audio_dir / f"{conv.name}.wav", conv.audio, conv.sr)
        dia.write_rttm(audio_dir / f"{conv.name}.ref.rttm", {conv.name: conv.turns})
        dia.write_rttm(audio_dir / f"{conv.name}.hyp.rttm", {conv.name: hyp})
        links.append(
            f"- [audio/{conv.name}.wav](audio/{conv.name}.wav): {len(conv.speakers)} speakers, "
            f"{conv.seconds:.1f} s; {len({t.speaker for t in hyp})} found, DER "
            f"{dia.der_parts(conv.turns, hyp).der:.1%} (audio/{conv.name}.ref.rttm and .hyp.rttm)"
        )
    ctx.section("Listen", "\n".join(links) or "No conversations saved.")


def report_ecapa(vectors: np.ndarray, data: Data, hypotheses, cfg: Config, ctx: RunContext) -> None:
    ctx.figure("timeline", figs.timeline_figure(data.test[0].turns, hypotheses[0]), "A test conversation")
    scores, same = dia.trial_scores(vectors, data.test_ids)
    ctx.figure(
        "verification", figs.verification_figure(scores, same, "ECAPA, unseen speakers"), "Verification"
    )
    keep = data.test_ids < cfg.tsne_speakers
    title = "t-SNE of ECAPA embeddings: utterances of unseen speakers"
    ctx.figure("tsne", figs.tsne_figure(vectors[keep], data.test_ids[keep], ctx.seed, title), "t-SNE")
    save_listening(data.test, hypotheses, cfg, ctx)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load(cfg, ctx.seed)
    ctx.record_data(
        {
            "data_source": "embedded",
            "data_origin": "eSpeak NG speakers (synthetic); speaker ID on FSDD digits (fsdd_source)",
            "train_speakers": cfg.train_speakers,
            "test_conversations": len(data.test),
            "test_minutes": sum(c.seconds for c in data.test) / 60,
        }
    )
    margin = vad_margin(data.dev)
    metrics: dict[str, float] = {"vad_margin_db": margin}
    rows = []
    models = {
        "ecapa": (build(cfg, cfg.train_speakers), 1),
        "xvector": (build_xvector(cfg, cfg.train_speakers), 15),
    }
    for name, (model, context) in models.items():
        model = train(model, data.splits, cfg, ctx if name == "ecapa" else ctx.child(name), name)
        embed = dz.embedder(model, context)
        suffix = "" if name == "ecapa" else f"_{name}"
        metrics[f"speaker_id_val_accuracy{suffix}"] = accuracy(model, *data.splits["val"])
        vectors = utterance_vectors(embed, data.test_feats)  # (N, E) unseen speakers' utterances
        metrics |= {f"{k}{suffix}": v for k, v in dia.verification(vectors, data.test_ids).items()}
        results = diarise_test(embed, context, data, cfg, margin, ctx.seed)
        for method, (_, hypotheses) in results.items():
            scores, row = der_row(name, method, data.test, hypotheses)
            metrics |= scores
            rows.append(row)
        if name == "ecapa":  # the served pipeline: ECAPA and spectral clustering
            settings, hypotheses = results["spectral"]
            metrics["der"] = metrics["der_ecapa_spectral"]
            ctx.save_json(SETTINGS_FILE, vars(settings) | {"n_speakers": cfg.train_speakers})
            report_ecapa(vectors, data, hypotheses, cfg, ctx)
    header = ["embedder", "clustering", "DER", "missed", "false alarm", "confusion", "right speaker count"]
    ctx.section("DER on the test conversations (0.25 s collar)", markdown_table(header, rows))
    return metrics | fsdd_speaker_id(cfg, ctx)


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: speaker turns of a recording at any sample rate (resampled to 16 kHz)."""
    saved = read_run_json(run_dir, SETTINGS_FILE)
    model = load_run_model(run_dir, build(cfg, saved.pop("n_speakers"))).eval()
    settings = dz.DiarizationSettings(**saved)
    embed = dz.embedder(model, settings.min_context)

    @torch.no_grad()
    def predict(batch: list[dict]) -> list[dict]:
        answers = []
        for item in batch:
            wave = np.asarray(item["audio"], dtype=np.float32)
            if item["sample_rate"] != cv.SAMPLE_RATE:
                wave = resample(wave, int(item["sample_rate"]), cv.SAMPLE_RATE)
            turns = dz.diarize(wave, lid.features(wave, cv.SAMPLE_RATE, cfg.n_mels), embed, settings)
            segments = [
                {"speaker": t.speaker, "start": round(t.start, 2), "end": round(t.end, 2)} for t in turns
            ]
            answers.append({"segments": segments})
        return answers

    return Predictor(predict)


SERVING = ServingSpec(input="audio", output="segments", load=serve)
