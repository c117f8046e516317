"""S5 · Text-to-speech: a FastSpeech-style duration model and a Tacotron-style attention model learn one
eSpeak NG voice, Griffin-Lim turns their mel frames into audio, and recognisers score what they say.

Data (data/tts.py): sentences read by eSpeak's default English voice, as phonemes with each one's duration in
mel frames (from eSpeak's phoneme events) and the log-mel frames of its audio. FastSpeech (models/tts.py)
expands each phoneme's vector by its duration (the length regulator) and decodes all frames at once; its
duration predictor learns eSpeak's timings. Tacotron produces 4 frames a step, attending over the phonemes
with location-sensitive attention, teacher-forced in training and fed its own frames at synthesis. Griffin-Lim
(torch.stft/istft, checked against librosa.griffinlim) recovers a phase.
Intelligibility on unseen digit strings read with commas ("four, nine, one"): the character error rate of
s4's recogniser (models/ctc.py's CTC model trained here on s4's embedded data, eSpeak digit words in 6 other
voices, as s4's own run on FSDD hears human voices) and of Whisper tiny.en, on eSpeak's own audio (the
ceiling), on eSpeak's mel frames through Griffin-Lim (the vocoder's ceiling) and on both models' speech.
The mel distance to eSpeak's frames is a mean |dB difference| along a DTW path, since lengths differ.
Simplified: one synthetic voice and a small grammar; the phonemes come from eSpeak, not a learned G2P.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import librosa
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from dlpractice.data import fsdd
from dlpractice.data import tts as data
from dlpractice.data.audio import save_audio
from dlpractice.data.tts_figures import alignment_figure, durations_figure, mel_figure
from dlpractice.errors import DlpError
from dlpractice.metrics.wer import char_error_rate
from dlpractice.models import ctc, pretrained_asr
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.models.tts import FastSpeech, Tacotron, griffin_lim, mel_to_magnitude
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import Predictor, ServingSpec, wav_data_uri
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("s5", requires=("s4",), data=("espeak-ng",), metric="fastspeech_recogniser_cer", goal="min")
SYSTEMS = ("espeak", "espeak_griffin_lim", "fastspeech", "tacotron")
VOCAB = "vocab.json"


@dataclass
class Config(FitConfig):  # steps, batch_size, lr...: FastSpeech's; the other models' steps below
    train_sentences: PositiveInt = 1200
    val_sentences: PositiveInt = 40
    test_strings: PositiveInt = 40  # unseen digit strings, 3-7 digits
    digit_share: Probability = 0.5  # of the training sentences; the rest from the English grammar
    d_model: PositiveInt = 128
    heads: PositiveInt = 2
    layers: PositiveInt = 2
    dropout: Probability = 0.1
    tacotron_steps: PositiveInt = 1000
    reduction: PositiveInt = 4  # Tacotron's frames per decoder step
    rnn: PositiveInt = 192
    guided_weight: PositiveFloat = 10.0  # the diagonal prior's weight: 1 left Tacotron unaligned at 300 steps
    max_decoder_steps: PositiveInt = 200
    griffin_lim_iters: PositiveInt = 32
    recogniser_steps: PositiveInt = 800
    recogniser_voices: PositiveInt = 6  # s4's embedded data: eSpeak variants (at most 8)
    recogniser_takes: PositiveInt = 20  # takes per digit and voice: 0-4 are s4's test takes, unused here
    recogniser_width: PositiveInt = 64  # conv channels and GRU units per direction
    whisper_strings: NonNegativeInt = 40  # test strings Whisper transcribes per system; 0 skips it
    wavs: NonNegativeInt = 2  # test strings whose audio is saved for listening, per system


PRESETS = {
    "smoke": {
        "train_sentences": 24,
        "val_sentences": 4,
        "test_strings": 3,
        "d_model": 32,
        "steps": 4,
        "batch_size": 4,
        "eval_every": 2,
        "log_every": 2,
        "tacotron_steps": 3,
        "rnn": 32,
        "max_decoder_steps": 20,
        "griffin_lim_iters": 4,
        "recogniser_steps": 4,
        "recogniser_voices": 2,
        "recogniser_takes": 7,
        "recogniser_width": 16,
        "whisper_strings": 1,
        "wavs": 1,
    },
    "quick": {
        "train_sentences": 400,
        "test_strings": 20,
        "steps": 400,
        "batch_size": 16,
        "lr": 2e-3,
        "eval_every": 200,
        "log_every": 25,
        "tacotron_steps": 300,
        "recogniser_steps": 300,
        "whisper_strings": 10,
    },
    "full": {
        "steps": 600,
        "batch_size": 16,
        "lr": 2e-3,
        "eval_every": 250,
        "log_every": 50,
    },
}


def digits_text(digits: list[int]) -> str:
    return " ".join(str(d) for d in digits)  # s4's transcript form, so the CER means what it means there


def recogniser_batches(cfg: Config, seed: int) -> fsdd.UtteranceBatches:
    """s4's embedded data: eSpeak digit words by several voices, singly and in strings of 2-5 with pauses."""
    spoken = fsdd.load_embedded(cfg.recogniser_voices, cfg.recogniser_takes, val_takes=1, seed=seed)
    splits = {}
    for split in ("train", "val"):
        clips = spoken.splits[split]
        strings = fsdd.digit_strings(clips, len(clips), seed + len(split), lengths=(2, 5))
        waves = [c.audio for c in clips] + [w for w, _ in strings]
        labels = [[c.digit] for c in clips] + [d for _, d in strings]
        splits[split] = ([fsdd.features(w) for w in waves], labels)
    return fsdd.UtteranceBatches(splits)


def train_recogniser(cfg: Config, ctx: RunContext) -> ctc.CTCRecognizer:
    width = cfg.recogniser_width
    model = ctc.CTCRecognizer(40, 10, width, width, layers=2, dropout=0.1, loss="torch", halvings=2)
    steps = cfg.recogniser_steps
    fit_cfg = FitConfig(steps=steps, batch_size=32, lr=2e-3, eval_every=steps, log_every=max(1, steps // 10))
    fit(model, recogniser_batches(cfg, ctx.seed), fit_cfg, ctx.child("recogniser"))
    return model.to("cpu").eval()


@torch.no_grad()
def recognise(model: ctc.CTCRecognizer, waves: list[np.ndarray]) -> list[list[int]]:
    """Greedy CTC digits of each 22,050 Hz wave (resampled to the recogniser's 8 kHz)."""
    heard = []
    for wave in waves:
        x = fsdd.features(wave, data.SAMPLE_RATE)
        logits, _ = model(x[None], torch.tensor([len(x)]))
        heard.append([s - 1 for s in ctc.greedy_decode(logits[0])])
    return heard


def vocode(mel: torch.Tensor, cfg: Config) -> np.ndarray:
    """(T, n_mels) model units -> audio by Griffin-Lim, peak-normalised to 0.9."""
    magnitude = mel_to_magnitude(data.mel_to_db(mel.float()).T, data.SAMPLE_RATE, data.N_FFT)
    wave = griffin_lim(magnitude, data.N_FFT, data.HOP, cfg.griffin_lim_iters).numpy()
    return (0.9 * wave / max(np.abs(wave).max(), 1e-6)).astype(np.float32)


def dtw_distance_db(target: torch.Tensor, predicted: torch.Tensor) -> float:
    """Mean |dB difference| of two (T, n_mels) mel sequences along their DTW path (Euclidean frame cost)."""
    a, b = data.mel_to_db(target).numpy(), data.mel_to_db(predicted).numpy()
    _, path = librosa.sequence.dtw(X=a.T, Y=b.T, metric="euclidean")
    return float(np.abs(a[path[:, 0]] - b[path[:, 1]]).mean())


def synthesise_tests(fastspeech, tacotron, tests: list[data.Example], cfg: Config) -> dict:
    """Per system, the audio of every test string; FastSpeech's and Tacotron's mels, alignments, durations."""
    fs = [fastspeech.synthesize(e.ids) for e in tests]
    taco = [tacotron.synthesize(e.ids, cfg.max_decoder_steps) for e in tests]
    return {
        "audio": {
            "espeak": [e.audio for e in tests],
            "espeak_griffin_lim": [vocode(e.mel, cfg) for e in tests],
            "fastspeech": [vocode(mel, cfg) for mel, _ in fs],
            "tacotron": [vocode(mel, cfg) for mel, _ in taco],
        },
        "mels": {"fastspeech": [m for m, _ in fs], "tacotron": [m for m, _ in taco]},
        "durations": [d for _, d in fs],
        "alignments": [a for _, a in taco],
    }


def intelligibility(recogniser, made: dict, refs: list[str], cfg: Config, ctx: RunContext) -> dict:
    """CER of the recogniser (every test string) and of Whisper tiny.en (the first whisper_strings)."""
    metrics = {}
    for system in SYSTEMS:
        heard = [digits_text(h) or "-" for h in recognise(recogniser, made["audio"][system])]
        metrics[f"{system}_recogniser_cer"] = char_error_rate(refs, heard)
    if cfg.whisper_strings == 0:
        return metrics
    try:
        transcribe = pretrained_asr.faster_whisper(threads=ctx.threads)
    except (DlpError, RuntimeError, OSError) as err:
        ctx.section("Whisper tiny.en", f"Skipped: {err}")
        return metrics
    n = min(cfg.whisper_strings, len(refs))
    for system in SYSTEMS:
        texts = transcribe(made["audio"][system][:n], data.SAMPLE_RATE)
        heard = [digits_text(pretrained_asr.text_to_digits(t)) or "-" for t in texts]
        metrics[f"{system}_whisper_cer"] = char_error_rate(refs[:n], heard)
    return metrics


def save_listening(made: dict, tests: list[data.Example], cfg: Config, ctx: RunContext) -> None:
    audio_dir = ctx.run_dir / "audio"
    audio_dir.mkdir(exist_ok=True)
    rows = []
    for i, example in enumerate(tests[: cfg.wavs]):
        links = []
        for system in SYSTEMS:
            name = f"{system}{i}.wav"
            save_audio(audio_dir / name, made["audio"][system][i], data.SAMPLE_RATE)
            links.append(f"[{system}](audio/{name})")
        rows.append([repr(example.text), " · ".join(links)])
    ctx.section("Listen", markdown_table(["sentence", "audio"], rows))


def build(cfg: Config, vocab_size: int) -> tuple[FastSpeech, Tacotron]:
    fast = FastSpeech(vocab_size, data.N_MELS, cfg.d_model, cfg.heads, cfg.layers, cfg.dropout)
    taco = Tacotron(
        vocab_size, data.N_MELS, cfg.d_model, cfg.rnn, cfg.reduction, cfg.dropout, cfg.guided_weight
    )
    return fast, taco


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    rng = np.random.default_rng(ctx.seed)
    train_texts = data.training_sentences(cfg.train_sentences + cfg.val_sentences, rng, cfg.digit_share)
    test_digits = [
        d for d in data.digit_strings(cfg.test_strings * 2, rng) if data.digit_sentence(d) not in train_texts
    ]
    test_digits = test_digits[: cfg.test_strings]
    everything, vocab = data.examples(train_texts + [data.digit_sentence(d) for d in test_digits])
    n_train = cfg.train_sentences
    splits = {"train": everything[:n_train], "val": everything[n_train : n_train + cfg.val_sentences]}
    tests = everything[n_train + cfg.val_sentences :]
    ctx.record_data(
        {
            "data_source": "embedded",
            "data_origin": f"eSpeak NG (synthetic), voice {data.VOICE.name}",
            "n_train": n_train,
            "n_val": cfg.val_sentences,
            "n_test": len(tests),
            "phonemes": len(vocab),
        }
    )
    ctx.save_json(VOCAB, vocab.symbols)
    batches = data.TTSBatches(splits)
    torch.manual_seed(ctx.seed)
    fastspeech, tacotron = build(cfg, len(vocab))
    fast_result = fit(fastspeech, batches, cfg, ctx.child("fastspeech"))
    ctx.loss_figure(
        fast_result.history, "fastspeech_loss", "FastSpeech loss", ylabel="L1 (mel) + MSE (log d)"
    )
    taco_result = fit(tacotron, batches, replace(cfg, steps=cfg.tacotron_steps), ctx.child("tacotron"))
    ctx.loss_figure(taco_result.history, "tacotron_loss", "Tacotron loss", ylabel="L1 + stop + guide")
    recogniser = train_recogniser(cfg, ctx)
    fastspeech.to("cpu").eval()
    tacotron.to("cpu").eval()
    made = synthesise_tests(fastspeech, tacotron, tests, cfg)
    refs = [digits_text(d) for d in test_digits]
    metrics = intelligibility(recogniser, made, refs, cfg, ctx)
    for system in ("fastspeech", "tacotron"):
        distances = [dtw_distance_db(e.mel, m) for e, m in zip(tests, made["mels"][system])]
        metrics[f"{system}_mel_distance_db"] = float(np.mean(distances))
    true = torch.cat([e.durations for e in tests]).numpy()
    predicted = torch.cat(made["durations"]).numpy()
    metrics["duration_mae_frames"] = float(np.abs(true - predicted).mean())
    symbols = [vocab.symbols[i] for i in tests[0].ids]
    ctx.figure(
        "mels",
        mel_figure(tests[0].mel, made["mels"]["fastspeech"][0], made["mels"]["tacotron"][0], tests[0].text),
        "Mel frames: eSpeak's target, FastSpeech and Tacotron on an unseen string",
    )
    ctx.figure(
        "alignment",
        alignment_figure(made["alignments"][0], symbols, "Tacotron's attention at synthesis"),
        "Tacotron's alignment on an unseen string",
    )
    ctx.figure(
        "durations", durations_figure(true, predicted), "Durations: FastSpeech's prediction vs eSpeak's"
    )
    ctx.section("Intelligibility and mel distance", results_table(metrics))
    save_listening(made, tests, cfg, ctx)
    seconds = {"fastspeech_train_seconds": fast_result.seconds, "tacotron_train_seconds": taco_result.seconds}
    return metrics | seconds


def results_table(m: dict[str, float]) -> str:
    rows = [
        [
            system,
            f"{m[f'{system}_recogniser_cer']:.1%}",
            f"{m[f'{system}_whisper_cer']:.1%}" if f"{system}_whisper_cer" in m else "-",
            f"{m[f'{system}_mel_distance_db']:.2f}" if f"{system}_mel_distance_db" in m else "0 (the target)",
        ]
        for system in SYSTEMS
    ]
    return markdown_table(
        ["audio", "CER, s4's recogniser", "CER, Whisper tiny.en", "mel distance (dB, DTW)"], rows
    )


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: speech for a text, by FastSpeech and Griffin-Lim (eSpeak gives the phonemes)."""
    vocab = data.Vocabulary(read_run_json(run_dir, VOCAB))
    fastspeech = load_run_model(run_dir / "fastspeech", build(cfg, len(vocab))[0])

    def predict(batch: list[dict]) -> list[dict]:
        answers = []
        for item in batch:
            symbols, _, _ = data.utterance_symbols(item["text"])
            ids = vocab.encode(symbols) or [vocab.index[data.PAUSE]]
            mel, _ = fastspeech.synthesize(torch.tensor(ids))
            answers.append(
                {"audio": wav_data_uri(vocode(mel, cfg), data.SAMPLE_RATE), "sample_rate": data.SAMPLE_RATE}
            )
        return answers

    def check(item: dict) -> None:
        if not any(c.isalnum() for c in item["text"]):
            raise ValueError("the text has no letters or digits: nothing to say")

    return Predictor(predict, check)


SERVING = ServingSpec(
    input="text",
    output="audio",
    load=serve,
    examples=("four, nine, one, seven", "the farmer found a red box"),
    max_chars=300,  # about 20 s of speech: FastSpeech's positions reach 46 s
)
