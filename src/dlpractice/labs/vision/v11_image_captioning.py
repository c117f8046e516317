"""V11 · Image captioning: a CNN's feature grid, read by an attention GRU and by a transformer decoder.

A small CNN (models/captioning.py) turns each picture into an 8x8 grid of features. Two decoders write the
caption word by word from it, each trained with fit() by teacher forcing: a GRU with soft (Bahdanau)
attention over the grid (Show, Attend and Tell) and a transformer decoder whose cross-attention reads the
grid. Both decode by beam search with length normalisation (beam 1 is greedy). Scored by corpus BLEU-1..4
written by hand (metrics/bleu.py, checked against torchmetrics and nltk in the run) and, on the generated
scenes, by fact accuracy: each caption is parsed back into its things and their relation and checked
against the scene, which BLEU cannot do ("a blue circle left of a red square" scores well against "a red
circle left of a blue square"). `--data embedded`: generated scenes of 1-3 coloured shapes with 5
grammar captions each (data/captions.py); `--data real`: Flickr8k from the data directory.
Simplified: a small CNN trained from scratch with the decoder (no pretrained encoder), 64x64 pictures,
no scheduled sampling, no CIDEr or METEOR.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch

from dlpractice.config import NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from dlpractice.data.captions import (
    VERDICTS,
    CaptionBatches,
    CaptionSplits,
    Facts,
    Vocabulary,
    caption_tensor,
    fact_verdict,
    load_captions,
    parse_facts,
)
from dlpractice.data.images import to_model_input
from dlpractice.errors import DlpError
from dlpractice.metrics.bleu import corpus_bleu
from dlpractice.models.caption_figures import attention_figure, beam_figure, captions_figure
from dlpractice.models.captioning import Captioner, caption_images
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec, png_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("v11", requires=("v2", "n5"), data=("scenes", "flickr8k"), metric="bleu4", goal="max")
NAMES = {"gru": "GRU + soft attention", "transformer": "transformer decoder"}


@dataclass
class Config(FitConfig):  # fit()'s knobs train each decoder (with its own CNN encoder)
    decoders: tuple[Literal["gru", "transformer"], ...] = ("gru", "transformer")
    n_train: PositiveInt = 4000  # generated scenes per split (embedded only)
    n_val: PositiveInt = 200
    n_test: PositiveInt = 500
    flickr_limits: tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt] = (0, 0, 0)  # real: 0 = all
    side: PositiveInt = 64  # pictures are side x side; the grid is side/8 cells a row
    widths: tuple[PositiveInt, PositiveInt, PositiveInt] = (16, 32, 64)  # the CNN's three conv layers
    d_model: PositiveInt = 128
    n_heads: PositiveInt = 4  # transformer only
    n_layers: PositiveInt = 2  # transformer only
    dropout: Probability = 0.1
    max_len: PositiveInt = 20  # words a caption may have (longer references are cut in training)
    min_count: PositiveInt = 1  # a word seen fewer times in training is <unk> (Flickr8k: 5 is usual)
    beam: PositiveInt = 3  # the beam of the lab's metric and of the served model
    beam_sizes: tuple[PositiveInt, ...] = (1, 2, 3, 5)  # the BLEU-against-beam figure
    alpha: NonNegativeFloat = 0.7  # length normalisation: log-probability / length**alpha
    n_shown: PositiveInt = 6  # test pictures in the example figures


PRESETS = {
    "smoke": {
        "decoders": ("gru", "transformer"),
        "n_train": 64,
        "n_val": 8,
        "n_test": 12,
        "widths": (4, 8, 8),
        "d_model": 16,
        "n_layers": 1,
        "steps": 6,
        "batch_size": 8,
        "lr": 3e-3,
        "eval_every": 3,
        "log_every": 2,
        "beam_sizes": (1, 3),
        "max_len": 12,
        "n_shown": 3,
    },
    "quick": {
        "n_train": 2000,
        "n_test": 300,
        "steps": 600,
        "batch_size": 32,
        "lr": 2e-3,
        "eval_every": 100,
        "log_every": 20,
    },
    # measured here, one thread: ~0.1 CPU-s a step at batch 32 for either decoder (both with their CNN)
    "full": {
        "steps": 2000,
        "batch_size": 48,
        "lr": 2e-3,
        "warmup_steps": 100,
        "weight_decay": 1e-4,
        "eval_every": 250,
        "log_every": 50,
        "restore_best": True,
    },
}


def build_model(cfg: Config, decoder: str, vocab: int) -> Captioner:
    sizes = (cfg.side, cfg.widths, cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.max_len, cfg.dropout)
    return Captioner(decoder, vocab, *sizes)


def words_of(ids: list[list[int]], vocab: Vocabulary) -> list[list[str]]:
    return [vocab.decode(row) for row in ids]


def score(hyps: list[list[str]], data: CaptionSplits) -> dict[str, float]:
    """BLEU-1..4 of the test captions and, on generated scenes, the share whose facts hold."""
    scores = {f"bleu{n}": b for n, b in enumerate(corpus_bleu(hyps, data.captions["test"]), 1)}
    if data.facts is not None:
        verdicts = [fact_verdict(parse_facts(h), f) for h, f in zip(hyps, data.facts["test"])]
        scores["fact_accuracy"] = float(np.mean([v == "right" for v in verdicts]))
    return scores


def fact_table(hyps: dict[str, list[list[str]]], facts: list[Facts]) -> tuple[str, dict[str, float]]:
    """Per decoder: the share of test captions of each verdict, and fact accuracy by number of things."""
    counts = sorted({len(f.things) for f in facts})
    rows, metrics = [], {}
    for name, captions in hyps.items():
        verdicts = np.array([fact_verdict(parse_facts(h), f) for h, f in zip(captions, facts)])
        things = np.array([len(f.things) for f in facts])
        shares = {v: float(np.mean(verdicts == v)) for v in VERDICTS}
        by_count = {n: float(np.mean(verdicts[things == n] == "right")) for n in counts}
        rows.append(
            [NAMES[name], *(f"{x:.1%}" for x in shares.values()), *(f"{x:.1%}" for x in by_count.values())]
        )
        metrics |= {f"{name}_facts_{v.replace(' ', '_')}": x for v, x in shares.items()}
        metrics |= {f"{name}_fact_accuracy_{n}_things": x for n, x in by_count.items()}
    header = ["decoder", *VERDICTS, *(f"right on {n}-thing scenes" for n in counts)]
    return markdown_table(header, rows), metrics


def reference_diffs(hyps: list[list[str]], refs: list[list[list[str]]], ours: float) -> dict[str, float]:
    """|our BLEU-4 - the library's| for torchmetrics (references shortest first, so a tie between closest
    lengths goes to the shorter, as ours does) and nltk (on the captions of 4 words or more: nltk counts a
    shorter caption as one n-gram)."""
    from nltk.translate.bleu_score import corpus_bleu as nltk_bleu
    from torchmetrics.text import BLEUScore

    joined = [[" ".join(r) for r in sorted(rs, key=len)] for rs in refs]
    torchmetrics = float(BLEUScore(n_gram=4)([" ".join(h) for h in hyps], joined))
    long = [i for i, h in enumerate(hyps) if len(h) >= 4]
    diffs = {"torchmetrics_bleu4_diff": abs(ours - torchmetrics)}
    if long:
        with warnings.catch_warnings():  # nltk warns (and returns ~0) when an n-gram order has no match
            warnings.simplefilter("ignore")
            nltk = nltk_bleu([refs[i] for i in long], [hyps[i] for i in long])
        diffs["nltk_bleu4_diff"] = abs(
            corpus_bleu([hyps[i] for i in long], [refs[i] for i in long])[3] - nltk
        )
    return diffs


def train_decoder(name: str, cfg: Config, ctx: RunContext, batches: CaptionBatches, vocab: int):
    """One captioner trained with fit() in its own child run; the model (on the CPU) and its fit result."""
    child = ctx.child(name)
    torch.manual_seed(ctx.seed)
    model = build_model(cfg, name, vocab)
    result = fit(model, batches, cfg, child)
    ctx.loss_figure(
        result.history,
        name=f"loss_{name}",
        title=f"{NAMES[name]}: loss curves",
        ylabel="cross-entropy (nats/word)",
    )
    return model.to("cpu").eval(), result


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    if cfg.side % 8:
        raise DlpError(f"side={cfg.side} must divide by 8 (the CNN pools three times)")
    data = load_captions(
        ctx.data, ctx.data_dir, (cfg.n_train, cfg.n_val, cfg.n_test), ctx.seed, cfg.flickr_limits, cfg.side
    )
    ctx.record_data(data.describe())
    vocab = Vocabulary.build(data.captions["train"], cfg.min_count)
    ids = {split: caption_tensor(refs, vocab, cfg.max_len) for split, refs in data.captions.items()}
    batches = CaptionBatches(data.images, ids)
    test_x = torch.as_tensor(data.images["test"])
    beams = sorted({*cfg.beam_sizes, cfg.beam})
    models, by_beam, captions, metrics = {}, {}, {}, {}
    for name in cfg.decoders:
        models[name], result = train_decoder(name, cfg, ctx, batches, len(vocab))
        for beam in beams:
            hyps = words_of(caption_images(models[name], test_x, beam, cfg.max_len, cfg.alpha), vocab)
            by_beam[name, beam], captions[name, beam] = score(hyps, data), hyps
            metrics |= {f"{name}_{key}_beam{beam}": v for key, v in by_beam[name, beam].items()}
        metrics |= {f"{name}_params": float(sum(p.numel() for p in models[name].parameters()))}
        metrics |= {f"{name}_train_seconds": result.seconds, f"{name}_best_val_loss": result.best_val}
    best = max(cfg.decoders, key=lambda n: by_beam[n, cfg.beam]["bleu4"])
    hyps, refs = captions[best, cfg.beam], data.captions["test"]
    report(cfg, ctx, data, by_beam, captions, best, beams)
    if "gru" in models:
        shown = attention_figure(models["gru"], test_x[0], vocab, cfg.max_len)
        ctx.figure("attention", shown, "Where the GRU decoder looks for each word it writes (test picture 0)")
    per_image = save_failures(ctx, data, hyps)
    ctx.save_json("serving.json", {"tokens": vocab.tokens, "decoder": best})
    metrics |= by_beam[best, cfg.beam]
    if data.facts is not None:
        table, verdicts = fact_table({n: captions[n, cfg.beam] for n in cfg.decoders}, data.facts["test"])
        ctx.section(f"What the test captions get wrong (beam {cfg.beam})", table)
        metrics |= verdicts
    metrics |= reference_diffs(hyps, refs, by_beam[best, cfg.beam]["bleu4"])
    metrics["best_is_transformer"] = float(best == "transformer")
    metrics["worst_caption_bleu2"] = float(per_image.min())
    return metrics


def report(
    cfg: Config,
    ctx: RunContext,
    data: CaptionSplits,
    by_beam: dict[tuple[str, int], dict[str, float]],
    captions: dict[tuple[str, int], list[list[str]]],
    best: str,
    beams: list[int],
) -> None:
    """The scores table, BLEU against beam size, and the example and worst-caption figures."""
    keys = ["bleu1", "bleu2", "bleu3", "bleu4"] + (["fact_accuracy"] if data.facts is not None else [])
    rows = [[NAMES[n], b, *(f"{by_beam[n, b][k]:.3f}" for k in keys)] for n, b in by_beam]
    ctx.section("Test scores", markdown_table(["decoder", "beam", *keys], rows))
    ctx.figure(
        "beam",
        beam_figure(by_beam, cfg.decoders, beams, NAMES),
        "BLEU-4 (and fact accuracy) against beam size",
    )
    shown = list(range(min(cfg.n_shown, len(data.images["test"]))))
    written = {NAMES[n]: captions[n, cfg.beam] for n in cfg.decoders}
    ctx.figure(
        "examples", captions_figure(data, shown, written), f"Test pictures: captions (beam {cfg.beam})"
    )
    order = caption_order(captions[best, cfg.beam], data)[: cfg.n_shown]
    worst = captions_figure(data, list(order), {NAMES[best]: captions[best, cfg.beam]})
    ctx.figure("worst", worst, f"The worst test captions of the {NAMES[best]} (lowest BLEU-2 of its own)")


def caption_bleu2(hyps: list[list[str]], data: CaptionSplits) -> np.ndarray:
    """Each test caption's own BLEU-2 against its references (0 when no two words follow a reference)."""
    return np.array([corpus_bleu([h], [r], max_n=2)[1] for h, r in zip(hyps, data.captions["test"])])


def caption_order(hyps: list[list[str]], data: CaptionSplits) -> np.ndarray:
    """Test pictures from the worst caption to the best by BLEU-2."""
    return np.argsort(caption_bleu2(hyps, data), kind="stable")


def save_failures(ctx: RunContext, data: CaptionSplits, hyps: list[list[str]], k: int = 100) -> np.ndarray:
    """failures.json: the k worst captions (picture, first reference, caption, its BLEU-2); each picture's
    BLEU-2."""
    per_image = caption_bleu2(hyps, data)
    order = np.argsort(per_image, kind="stable")[:k]
    ctx.save_json(
        FAILURES,
        [
            {
                "input": png_data_uri(data.images["test"][i].transpose(1, 2, 0)),
                "label": " ".join(data.captions["test"][i][0]),
                "prediction": " ".join(hyps[i]),
                "confidence": round(float(per_image[i]), 4),
            }
            for i in order
        ],
    )
    return per_image


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a picture in, the caption of the run's better decoder out (beam search, cfg.beam)."""
    saved = read_run_json(run_dir, "serving.json")
    vocab = Vocabulary(saved["tokens"])
    model = load_run_model(run_dir / saved["decoder"], build_model(cfg, saved["decoder"], len(vocab)))

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        x = torch.stack([to_model_input(item["image"], cfg.side, 3, dark_background=False) for item in batch])
        return [
            {"text": " ".join(w)}
            for w in words_of(caption_images(model, x, cfg.beam, cfg.max_len, cfg.alpha), vocab)
        ]

    return Predictor(predict)


SERVING = ServingSpec(input="image", output="text", load=serve)
