"""The serving spec a lab declares beside its LAB, and the failure cases it records; `dlp serve` hosts them.

A lab whose model maps an input to an output says what it takes and what it gives back:

    SERVING = ServingSpec(input="text", output="label", load=serve, examples=("a gripping film",))

`load(run_dir, cfg)` reads a finished run's weights (safetensors only) and returns a `Predictor`, whose
`predict` takes a whole batch of requests at once: the server groups concurrent requests (dlpractice.serve)
so that one forward pass answers many callers. This module is below the labs (they import it) and knows
nothing of the web: the JSON schemas and the Gradio app are built from `input` and `output` in serve/.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

FAILURES = "failures.json"  # a run's most confident test mistakes, written by the lab at the end of its run

# What a request holds, by `ServingSpec.input`:
#   text:   {"text": str}  a sentence to classify or tag
#   prompt: {"prompt": str, "max_tokens": int, "temperature": float, "top_k": int}  a start to continue
#   image:  {"image": str}  a PNG or JPEG, base64; predict() gets {"image": uint8 array (H, W) or (H, W, 3)}
#   audio:  {"audio": str}  a WAV or FLAC, base64; predict() gets {"audio": float32 (T,), "sample_rate": int}
# What predict() returns per request, by `ServingSpec.output`:
#   label:  {"label": str, "probabilities": {class: p}}
#   text:   {"text": str}  the prompt and its continuation
#   entities: {"text": str, "entities": [{"text", "type", "start", "end", "score"}]}  character spans
#   answer: {"text": str, "sources": [{"title": str, "text": str, "score": float}]}  with its evidence
#   boxes:  {"boxes": [{"label": str, "score": float, "box": [x0, y0, x1, y1]}]}  pixels of the input image
#   image:  {"image": png_data_uri(...), "values": {name: float}}  a mask, a depth map, an upscaled picture
#   audio:  {"audio": wav_data_uri(...), "sample_rate": int}  speech made from a text
#   segments: {"segments": [{"speaker": str, "start": float, "end": float}]}  who spoke when, in seconds
InputKind = Literal["text", "prompt", "image", "audio"]
OutputKind = Literal["label", "text", "entities", "answer", "boxes", "image", "audio", "segments"]


def accept_all(item: dict[str, Any]) -> None:
    """The default check: every well-typed request is one the model can take."""


@dataclass
class Predictor:
    """A loaded model. `predict(batch)` answers a list of requests in order; `check(item)` raises
    ValueError with a message for a request the model cannot take (a character outside its vocabulary),
    before it joins a batch, so one bad request never fails the others."""

    predict: Callable[[list[dict[str, Any]]], list[dict[str, Any]]]
    check: Callable[[dict[str, Any]], None] = accept_all


@dataclass(frozen=True)
class ServingSpec:
    input: InputKind
    output: OutputKind
    load: Callable[[Path, Any], Predictor]  # (run_dir, the run's Config) -> Predictor
    examples: tuple[str, ...] = ()  # shown under the input box
    max_chars: int = 1000  # a longer text or prompt is rejected (422)
    max_tokens: int = 500  # prompt: the most tokens one request may ask for
    defaults: dict[str, Any] = field(default_factory=dict)  # prompt: max_tokens, temperature, top_k
    max_bytes: int = 2_000_000  # image, audio: the largest file one request may send (base64 adds a third)
    max_side: int = 2048  # image: the widest or tallest picture, in pixels
    max_seconds: float = 30.0  # audio: the longest clip


def png_data_uri(image: np.ndarray) -> str:
    """An image (H, W) or (H, W, 3), uint8 or floats in [0, 1], as a PNG data URI: the `input` of an image
    lab's failure case, which the served page shows as a picture."""
    from PIL import Image

    pixels = image if image.dtype == np.uint8 else (np.clip(image, 0, 1) * 255).round().astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def ranked_image_failures(
    images: np.ndarray, order: Sequence[int], scores: np.ndarray, label: str, prediction: Callable[[int], str]
) -> list[dict[str, Any]]:
    """Failure cases of a lab that scores each test image (mIoU, AbsRel, AP) rather than classifying it:
    images (N, 3, H, W) in [0, 1], taken in `order` (worst first), each with `label`, `prediction(i)`,
    and its score where a classifier's confidence would stand."""
    return [
        {
            "input": png_data_uri(images[i].transpose(1, 2, 0)),
            "label": label,
            "prediction": prediction(i),
            "confidence": round(float(scores[i]), 4),
        }
        for i in order
    ]


def wav_data_uri(samples: np.ndarray, sample_rate: int) -> str:
    """Mono samples (T,) in [-1, 1] as a 16-bit WAV data URI: the `audio` of a speech-out answer."""
    import soundfile as sf

    buffer = io.BytesIO()
    sf.write(buffer, np.clip(samples, -1, 1), sample_rate, format="WAV", subtype="PCM_16")
    return "data:audio/wav;base64," + base64.b64encode(buffer.getvalue()).decode()


def failure_cases(
    inputs: Sequence[str], probs: np.ndarray, labels: np.ndarray, classes: Sequence[str], k: int = 100
) -> list[dict[str, Any]]:
    """The k wrong test predictions made with the highest confidence, most confident first: what a lab
    saves as failures.json and `dlp serve` shows, filterable by true label."""
    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    order = wrong[np.argsort(-probs[wrong].max(1), kind="stable")][:k]
    return [
        {
            "input": inputs[i],
            "label": classes[int(labels[i])],
            "prediction": classes[int(predicted[i])],
            "confidence": round(float(probs[i].max()), 4),
        }
        for i in order
    ]
