"""Images and audio sent to POST /predict: base64 files, decoded and checked before they reach the model.

A request carries a whole file (PNG or JPEG; WAV or FLAC) as base64, optionally as a data URI. Anything
else (another format, a file that does not decode, a picture over `max_side` pixels a side, a clip over
`max_seconds`) is a ValueError whose message the endpoint returns as 422. The body's size is capped before
this (413), so a decoder never sees more than `max_bytes`.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
from typing import Any

import numpy as np

from dlpractice.serving import ServingSpec

IMAGE_FORMATS = ("PNG", "JPEG")
AUDIO_FORMATS = ("WAV", "FLAC")


def encoded_length(n_bytes: int) -> int:
    """Characters of base64 for a file of n_bytes, with room for a data-URI prefix."""
    return 4 * math.ceil(n_bytes / 3) + 64


def file_bytes(data: str, spec: ServingSpec) -> bytes:
    """The file a base64 string (or data URI) holds."""
    payload = data.split(",", 1)[1] if data.startswith("data:") else data
    try:
        raw = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64: send the file's bytes base64-encoded") from None
    if len(raw) > spec.max_bytes:
        raise ValueError(f"file of {len(raw)} bytes: at most {spec.max_bytes}")
    return raw


def decode_image(data: str, spec: ServingSpec) -> np.ndarray:
    """A PNG or JPEG as uint8 (H, W) for grey pictures, (H, W, 3) for the rest."""
    from PIL import Image, UnidentifiedImageError

    try:
        image = Image.open(io.BytesIO(file_bytes(data, spec)))
    except UnidentifiedImageError:
        raise ValueError(f"not an image: send one of {', '.join(IMAGE_FORMATS)}") from None
    if image.format not in IMAGE_FORMATS:
        raise ValueError(f"{image.format} image: send one of {', '.join(IMAGE_FORMATS)}")
    check_image_side(image.height, image.width, spec)  # from the header, before the pixels are decoded
    try:
        pixels = image.convert("L" if image.mode in ("1", "L", "I;16") else "RGB")
    except OSError as err:
        raise ValueError(f"damaged image: {err}") from None
    return np.asarray(pixels)


def picture(data_uri: str) -> np.ndarray:
    """A failure case's image (a PNG data URI the lab wrote, trusted) as pixels, for the page's gallery."""
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1]))))


def recording(data_uri: str) -> tuple[int, np.ndarray]:
    """A speech answer's WAV data URI (the lab wrote it, trusted) as (rate, float32 samples), for the page."""
    import soundfile as sf

    samples, rate = sf.read(io.BytesIO(base64.b64decode(data_uri.split(",", 1)[1])), dtype="float32")
    return rate, samples


def check_image_side(height: int, width: int, spec: ServingSpec) -> None:
    if max(height, width) > spec.max_side:
        raise ValueError(f"image of {width}x{height} pixels: at most {spec.max_side} a side")


def check_duration(seconds: float, spec: ServingSpec) -> None:
    if seconds > spec.max_seconds:
        raise ValueError(f"clip of {seconds:.1f} s: at most {spec.max_seconds:g} s")


def decode_audio(data: str, spec: ServingSpec) -> tuple[np.ndarray, int]:
    """A WAV or FLAC as mono float32 samples (T,) in [-1, 1], and its sample rate."""
    import soundfile as sf

    source = io.BytesIO(file_bytes(data, spec))
    try:
        info = sf.info(source)
        if info.format not in AUDIO_FORMATS:
            raise ValueError(f"{info.format} audio: send one of {', '.join(AUDIO_FORMATS)}")
        check_duration(info.duration, spec)
        source.seek(0)
        samples, rate = sf.read(source, dtype="float32", always_2d=True)  # (T, channels)
    except sf.LibsndfileError:
        raise ValueError(f"not audio: send one of {', '.join(AUDIO_FORMATS)}") from None
    if len(samples) == 0:
        raise ValueError("empty clip")
    return samples.mean(axis=1), rate


def decoded(spec: ServingSpec, item: dict[str, Any]) -> dict[str, Any]:
    """A request as predict() takes it: files decoded (see serving.py for each input kind)."""
    if spec.input == "image":
        return {"image": decode_image(item["image"], spec)}
    if spec.input == "audio":
        audio, rate = decode_audio(item["audio"], spec)
        return {"audio": audio, "sample_rate": rate}
    return item
