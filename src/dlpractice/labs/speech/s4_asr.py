"""S4 · Speech recognition with CTC: spoken digits and digit strings, greedy and beam decoding, WER/CER.

A CTC acoustic model (models/ctc.py: a conv front-end and a bidirectional GRU over log-mel frames) learns
to spell digits from the Free Spoken Digit Dataset's training takes (data/fsdd.py; offline, the digit words
synthesised by eSpeak NG) and from strings of them joined with pauses, trained with our own CTC loss (the
forward algorithm). Tested on FSDD's usual test split (takes 0-4): single-digit accuracy, and word and
character error rates (jiwer) on strings of 3-7 test clips, decoded greedily, by prefix beam search, and by
beam search with a character n-gram LM. Whisper tiny.en (faster-whisper, the packaged model) transcribes the
same test audio as a pretrained comparison. Simplified: digits only, one fixed split, no speaker-level
normalisation; the speakers of the test takes are also heard in training (FSDD's usual split).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jiwer
import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import FiniteFloat, NonNegativeFloat, NonNegativeInt, PositiveInt, Probability
from dlpractice.data import fsdd
from dlpractice.data.audio import save_audio
from dlpractice.errors import DlpError
from dlpractice.metrics import wer as wer_metrics
from dlpractice.models import ctc, pretrained_asr
from dlpractice.models.saved import load_run_model
from dlpractice.registry import lab
from dlpractice.report import failures_table, markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("s4", requires=("s1",), data=("fsdd", "espeak-ng"), metric="digit_accuracy", goal="max", bar=0.99)
SYMBOLS = "0123456789"  # symbol id i + 1 is digit i; 0 is the blank


@dataclass
class Config(FitConfig):
    n_mels: PositiveInt = 40
    channels: PositiveInt = 128  # conv front-end
    hidden: PositiveInt = 128  # GRU, per direction
    layers: PositiveInt = 2
    halvings: NonNegativeInt = 2  # stride-2 convolutions: 10 ms frames become 40 ms (a digit is ~10 frames)
    dropout: Probability = 0.1
    loss: Literal["ours", "torch"] = "ours"  # our forward algorithm or F.ctc_loss (the same numbers, faster)
    augment: bool = True  # SpecAugment masks on training batches
    val_takes: NonNegativeInt = 2  # takes 5.. of each digit and speaker held out for validation
    train_strings: NonNegativeInt = 1000  # strings of 2 to train_string_max training clips added to training
    train_string_max: PositiveInt = 5  # the test strings have 3-7 digits; 7 here measured worse (article)
    test_strings: PositiveInt = 200  # strings of 3-7 test clips
    beam: PositiveInt = 8
    lm_order: PositiveInt = 3
    lm_weight: NonNegativeFloat = 0.5
    length_bonus: FiniteFloat = 0.0  # added to a beam's score per character: > 0 favours longer
    whisper_clips: NonNegativeInt = 300  # test clips and strings Whisper tiny.en transcribes; 0 skips it
    whisper_strings: NonNegativeInt = 100
    embedded_takes: PositiveInt = 20  # embedded data: takes per digit and speaker
    n_failures: NonNegativeInt = 10


PRESETS = {
    "smoke": {
        "steps": 20,
        "batch_size": 16,
        "eval_every": 10,
        "log_every": 5,
        "channels": 16,
        "hidden": 16,
        "layers": 1,
        "loss": "torch",
        "train_strings": 20,
        "test_strings": 6,
        "beam": 3,
        "whisper_clips": 2,
        "whisper_strings": 1,
        "embedded_takes": 7,
        "val_takes": 1,
        "n_failures": 3,
    },
    "quick": {
        "steps": 500,
        "batch_size": 32,
        "lr": 2e-3,
        "eval_every": 250,
        "log_every": 25,
        "whisper_clips": 30,
        "whisper_strings": 10,
    },
    "full": {
        "steps": 2500,  # with 2,000 strings: 99.33 %, WER 3.6 %; 1,500 steps and 1,000 gave 98.67 %, 10.6 %
        "train_strings": 2000,
        "batch_size": 32,
        "lr": 2e-3,
        "eval_every": 250,
        "log_every": 50,
        "restore_best": True,
        "whisper_clips": 100,  # Whisper costs about a CPU-second a clip: a third of the test set
        "whisper_strings": 50,
    },
}


def as_text(digits: list[int]) -> str:
    return " ".join(str(d) for d in digits)


def prepare(data: fsdd.SpokenDigits, cfg: Config, seed: int) -> tuple[fsdd.UtteranceBatches, dict]:
    """Features of the single clips, then of strings: training (2 to train_string_max clips), validation
    and test (3-7 clips, each of its own split's clips, so no test take reaches training)."""

    def feats(waves: list[np.ndarray]) -> list[torch.Tensor]:
        return [fsdd.features(w, data.sample_rate, cfg.n_mels) for w in waves]

    splits, raw = {}, {"singles": {}}
    for split, clips in data.splits.items():
        waves, digits = [c.audio for c in clips], [[c.digit] for c in clips]
        raw["singles"][split] = len(clips)
        if split != "test":
            extra, lengths = (
                (cfg.train_strings, (2, cfg.train_string_max)) if split == "train" else (100, (3, 7))
            )
            strings = fsdd.digit_strings(clips, extra, seed + len(split), data.sample_rate, lengths=lengths)
            waves, digits = waves + [w for w, _ in strings], digits + [d for _, d in strings]
        splits[split] = (feats(waves), digits)
    test_strings = fsdd.digit_strings(data.splits["test"], cfg.test_strings, seed, data.sample_rate)
    raw["strings"] = test_strings
    splits["test_strings"] = (feats([w for w, _ in test_strings]), [d for _, d in test_strings])
    return fsdd.UtteranceBatches(splits, cfg.augment), raw


@torch.no_grad()
def log_probs_of(model: ctc.CTCRecognizer, batches: fsdd.UtteranceBatches, split: str) -> list[torch.Tensor]:
    """Per utterance of a split, in order: (T', C) log-probabilities, cut to its own length."""
    model.eval()
    out = []
    for x, lengths, _ in batches.eval_batches(split):
        logits, _ = model(x, lengths)
        out += [row[:n].log_softmax(-1) for row, n in zip(logits, model.output_lengths(lengths))]
    return out


def decode_all(
    log_probs: list[torch.Tensor], how: str, cfg: Config | None, lm: ctc.CharNgramLM | None
) -> list[list[int]]:
    """Digits of each utterance, by greedy decoding or prefix beam search (with the LM when given)."""
    if how == "greedy":
        return [[s - 1 for s in ctc.greedy_decode(lp)] for lp in log_probs]
    found = [
        ctc.prefix_beam_search(lp, SYMBOLS, cfg.beam, lm, cfg.lm_weight, cfg.length_bonus)[0]
        for lp in log_probs
    ]
    return [[s - 1 for s in f] for f in found]


def labelling_confidence(log_probs: torch.Tensor, digits: list[int]) -> float:
    """p(transcript | audio): the CTC probability of the decoded labelling, every alignment summed."""
    target = torch.tensor([[d + 1 for d in digits] or [0]])
    nll = ctc.ctc_loss(
        log_probs[:, None],
        target,
        torch.tensor([len(log_probs)]),
        torch.tensor([len(digits)]),
        reduction="sum",
    )
    return math.exp(-nll.item())


def error_rates(refs: list[list[int]], hyps: list[list[int]]) -> dict[str, float]:
    """WER and CER by jiwer; ours (metrics/wer.py) must agree."""
    ref_text, hyp_text = [as_text(r) for r in refs], [as_text(h) or "-" for h in hyps]  # jiwer needs words
    scores = {"wer": jiwer.wer(ref_text, hyp_text), "cer": jiwer.cer(ref_text, hyp_text)}
    ours = wer_metrics.word_error_rate(ref_text, hyp_text)
    if abs(ours - scores["wer"]) > 1e-9:
        raise DlpError(f"our WER {ours} differs from jiwer's {scores['wer']}")
    return scores


def whisper_scores(data: fsdd.SpokenDigits, strings: list, cfg: Config, ctx: RunContext) -> dict[str, float]:
    """Whisper tiny.en on the first test clips and strings; skipped with a note when it cannot load."""
    if cfg.whisper_clips == 0:
        return {}
    try:
        transcribe = pretrained_asr.faster_whisper(threads=ctx.threads)
    except (DlpError, RuntimeError, OSError) as err:
        ctx.section("Whisper tiny.en", f"Skipped: {err}")
        return {}
    clips, strings = data.splits["test"][: cfg.whisper_clips], strings[: cfg.whisper_strings]
    texts = transcribe([c.audio for c in clips], data.sample_rate)
    heard = [pretrained_asr.text_to_digits(t) for t in texts]
    scores = {"whisper_digit_accuracy": float(np.mean([h == [c.digit] for h, c in zip(heard, clips)]))}
    if strings:
        string_heard = [
            pretrained_asr.text_to_digits(t) for t in transcribe([w for w, _ in strings], data.sample_rate)
        ]
        rates = error_rates([d for _, d in strings], string_heard)
        scores |= {"whisper_digit_string_wer": rates["wer"], "whisper_digit_string_cer": rates["cer"]}
    shown = [[c.name, repr(t)] for c, t in list(zip(clips, texts))[:8]]
    note = f"{len(clips)} test clips, {len(strings)} strings, greedy, prompt {pretrained_asr.DIGIT_PROMPT!r}"
    ctx.section(
        "Whisper tiny.en (faster-whisper)", note + "\n\n" + markdown_table(["clip", "Whisper's text"], shown)
    )
    return scores


def posteriors_figure(log_probs: torch.Tensor, feats: torch.Tensor, digits: list[int]) -> plt.Figure:
    """A test string's log-mel frames above the model's per-frame symbol probabilities: CTC's spikes."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 4.5), sharex=False)
    top.imshow(feats.T.numpy(), origin="lower", aspect="auto", cmap="magma")
    top.set(title=f"log-mel frames of the string {as_text(digits)}", ylabel="mel band")
    probs = log_probs.exp().numpy()  # (T', C)
    bottom.plot(probs[:, 0], color="0.7", lw=1, label="blank")
    for s in range(1, probs.shape[1]):
        if probs[:, s].max() > 0.3:
            bottom.plot(probs[:, s], lw=1.5, label=SYMBOLS[s - 1])
    bottom.set(xlabel="output frame", ylabel="p(symbol)", xlim=(0, len(probs) - 1))
    bottom.legend(ncol=6, fontsize=7, loc="upper right")
    fig.tight_layout()
    return fig


def validation_scores(model, batches, raw) -> dict[str, float]:
    """Greedy digit accuracy on the held-out single takes and WER on strings of them: what tuning reads."""
    n = raw["singles"]["val"]
    found = decode_all(log_probs_of(model, batches, "val"), "greedy", None, None)
    refs = batches.splits["val"][1]
    accuracy = float(np.mean([h == r for h, r in zip(found[:n], refs[:n])]))
    return {"val_digit_accuracy": accuracy, "val_string_wer": error_rates(refs[n:], found[n:])["wer"]}


def report(model, batches, raw, data, cfg: Config, ctx: RunContext) -> dict[str, float]:
    singles = log_probs_of(model, batches, "test")
    clips = data.splits["test"]
    greedy = decode_all(singles, "greedy", cfg, None)
    correct = [h == [c.digit] for h, c in zip(greedy, clips)]
    metrics = {"digit_accuracy": float(np.mean(correct))} | validation_scores(model, batches, raw)
    strings_lp = log_probs_of(model, batches, "test_strings")
    refs = batches.splits["test_strings"][1]
    lm = ctc.CharNgramLM(["".join(map(str, d)) for d in batches.splits["train"][1]], SYMBOLS, cfg.lm_order)
    rows = []
    for name, how, use_lm in (("greedy", "greedy", None), ("beam", "beam", None), ("beam + LM", "beam", lm)):
        rates = error_rates(refs, decode_all(strings_lp, how, cfg, use_lm))
        key = name.replace(" + ", "_").replace(" ", "_")
        metrics |= {f"{key}_string_wer": rates["wer"], f"{key}_string_cer": rates["cer"]}
        rows.append([name, f"{rates['wer']:.2%}", f"{rates['cer']:.2%}"])
    metrics["digit_string_wer"] = metrics["greedy_string_wer"]
    ctx.section("Digit strings: decoders", markdown_table(["decoder", "WER", "CER"], rows))
    metrics |= whisper_scores(data, raw["strings"], cfg, ctx)
    ctx.figure(
        "posteriors",
        posteriors_figure(strings_lp[0], batches.splits["test_strings"][0][0], refs[0]),
        "CTC posteriors on a test string",
    )
    mistakes = [
        {
            "input": f"{c.name}.wav",
            "label": str(c.digit),
            "prediction": as_text(h) or "(nothing)",
            "confidence": round(labelling_confidence(lp, h), 4),
        }
        for c, h, lp, ok in zip(clips, greedy, singles, correct)
        if not ok
    ]
    mistakes.sort(key=lambda m: -m["confidence"])
    ctx.save_json(FAILURES, mistakes)
    ctx.section(
        "The most confident mistakes",
        failures_table(mistakes, ["clip", "digit", "heard", "p"], cfg.n_failures),
    )
    audio_dir = ctx.run_dir / "audio"
    audio_dir.mkdir(exist_ok=True)
    links = []
    for i, (wave, digits) in enumerate(raw["strings"][:3]):
        save_audio(audio_dir / f"string{i}.wav", wave, data.sample_rate)
        links.append(f"- [audio/string{i}.wav](audio/string{i}.wav): {as_text(digits)}")
    ctx.section("Listen", "\n".join(links))
    return metrics


def build(cfg: Config) -> ctc.CTCRecognizer:
    return ctc.CTCRecognizer(
        cfg.n_mels, len(SYMBOLS), cfg.channels, cfg.hidden, cfg.layers, cfg.dropout, cfg.loss, cfg.halvings
    )


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = fsdd.load_digits(ctx.data, ctx.data_dir, cfg.val_takes, takes=cfg.embedded_takes)
    ctx.record_data(data.describe())
    batches, raw = prepare(data, cfg, ctx.seed)
    torch.manual_seed(ctx.seed)
    model = build(cfg)
    result = fit(model, batches, cfg, ctx)
    ctx.loss_figure(result.history, ylabel="CTC loss per digit (nats)")
    model.to("cpu")
    return report(model, batches, raw, data, cfg, ctx) | {"train_seconds": result.seconds}


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the digits heard in a recording, greedy-decoded."""
    model = load_run_model(run_dir, build(cfg)).eval()

    def predict(batch: list[dict]) -> list[dict]:
        answers = []
        for item in batch:
            x = fsdd.features(np.asarray(item["audio"], dtype=np.float32), item["sample_rate"], cfg.n_mels)
            with torch.no_grad():
                logits, _ = model(x[None], torch.tensor([len(x)]))
            answers.append({"text": as_text([s - 1 for s in ctc.greedy_decode(logits[0])])})
        return answers

    def check(item: dict) -> None:
        if len(item["audio"]) < item["sample_rate"] // 10:
            raise ValueError("the recording is shorter than 0.1 s: nothing to transcribe")

    return Predictor(predict, check)


SERVING = ServingSpec(input="audio", output="text", load=serve)
