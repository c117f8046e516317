"""Image and audio requests: files arrive base64, are decoded before the batcher, and anything the model
cannot take (another format, not base64, too many pixels, too long, too many bytes) is 413 or 422.

The served model here is a stand-in that reports what it received (shape, dtype, rate), because what is
tested is the path from the request to predict(); the vision and speech labs test their own predictors."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from fastapi.testclient import TestClient
from PIL import Image

from dlpractice.serve.app import Served, build_app
from dlpractice.serve.ui import page_item
from dlpractice.serving import Predictor, ServingSpec, png_data_uri


def echo(batch: list[dict]) -> list[dict]:
    """What predict() was given, as a label answer (image) or a text answer (audio)."""
    answers = []
    for item in batch:
        if "image" in item:
            pixels = item["image"]
            answers.append({"label": f"{pixels.dtype} {pixels.shape}", "probabilities": {"x": 1.0}})
        else:
            audio = item["audio"]
            answers.append({"text": f"{audio.dtype} {audio.shape} {item['sample_rate']} {audio.max():.2f}"})
    return answers


def client_for(kind: str, **limits) -> TestClient:
    spec = ServingSpec(input=kind, output="label" if kind == "image" else "text", load=None, **limits)
    info = {"lab": "x0", "title": "stand-in", "run_id": "x0-test", "commit": "abc", "input": kind}
    served = Served(Path("."), info, spec, Predictor(echo), [])
    return TestClient(build_app(served, ui=False))


def encoded(data: bytes) -> str:
    return base64.b64encode(data).decode()


def image_file(array: np.ndarray, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def audio_file(samples: np.ndarray, rate: int, fmt: str) -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, samples, rate, format=fmt)
    return buffer.getvalue()


def test_png_and_jpeg_arrive_as_uint8_pixels_grey_or_colour():
    client = client_for("image")
    grey = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28)
    answer = client.post("/predict", json={"image": encoded(image_file(grey, "PNG"))}).json()
    assert answer["label"] == "uint8 (28, 28)"
    colour = np.zeros((20, 30, 3), np.uint8)
    answer = client.post("/predict", json={"image": encoded(image_file(colour, "JPEG"))}).json()
    assert answer["label"] == "uint8 (20, 30, 3)"
    uri = png_data_uri(grey)  # a data URI (what a failure case holds) is accepted as it is
    assert client.post("/predict", json={"image": uri}).json()["label"] == "uint8 (28, 28)"


@pytest.mark.parametrize(
    ("image", "status", "message"),
    [
        ("not base64!", 422, "not base64"),
        (encoded(b"just some bytes"), 422, "not an image"),
        (encoded(image_file(np.zeros((8, 8), np.uint8), "GIF")), 422, "GIF image: send one of PNG, JPEG"),
        (encoded(image_file(np.zeros((9, 65), np.uint8), "PNG")), 422, "65x9 pixels: at most 64 a side"),
        (7, 422, "valid string"),
    ],
)
def test_bad_images_are_422_with_the_reason(image, status, message):
    answer = client_for("image", max_side=64).post("/predict", json={"image": image})
    assert answer.status_code == status and message in str(answer.json()["detail"])


def test_a_body_over_the_file_limit_is_413_before_decoding():
    client = client_for("image", max_bytes=1000)
    noise = np.random.default_rng(0).integers(0, 255, (64, 64), dtype=np.uint8)  # PNG cannot shrink it
    answer = client.post("/predict", json={"image": encoded(image_file(noise, "PNG"))})
    assert answer.status_code == 413


def test_wav_and_flac_arrive_as_mono_float_with_their_rate():
    client = client_for("audio")
    stereo = np.stack([np.full(800, 0.5), np.full(800, -0.5)], axis=1)  # mono mean: 0
    tone = 0.25 * np.sin(np.linspace(0, 100, 16000))
    answer = client.post("/predict", json={"audio": encoded(audio_file(tone, 16000, "WAV"))}).json()
    assert answer["text"] == "float32 (16000,) 16000 0.25"
    answer = client.post("/predict", json={"audio": encoded(audio_file(stereo, 8000, "FLAC"))}).json()
    assert answer["text"] == "float32 (800,) 8000 0.00"


def test_bad_audio_is_422_with_the_reason():
    client = client_for("audio", max_seconds=1.0)
    long_clip = encoded(audio_file(np.zeros(16001), 16000, "WAV"))
    answer = client.post("/predict", json={"audio": long_clip})
    assert answer.status_code == 422 and "clip of 1.0 s: at most 1 s" in answer.json()["detail"]
    answer = client.post("/predict", json={"audio": encoded(b"RIFF and nothing else")})
    assert answer.status_code == 422 and "not audio" in answer.json()["detail"]


def test_the_page_turns_its_recording_and_picture_into_the_same_requests():
    spec = ServingSpec(input="audio", output="text", load=None, max_seconds=1.0)
    item = page_item(spec, (8000, np.full((4000, 2), 16384, np.int16)))  # what gr.Audio(type="numpy") gives
    assert item["sample_rate"] == 8000 and item["audio"].dtype == np.float32 and item["audio"][0] == 0.5
    with pytest.raises(ValueError, match="at most 1 s"):
        page_item(spec, (8000, np.zeros(8001, np.int16)))
    image_spec = ServingSpec(input="image", output="label", load=None, max_side=10)
    with pytest.raises(ValueError, match="at most 10 a side"):
        page_item(image_spec, np.zeros((11, 5, 3), np.uint8))


def test_an_image_lab_page_builds_with_its_failure_gallery():
    from dlpractice.serve.ui import build_ui, failure_gallery_pictures

    spec = ServingSpec(input="image", output="label", load=None)
    digit = png_data_uri(np.eye(28))
    failures = [
        {"input": digit, "label": "1", "prediction": "7", "confidence": 0.9},
        {"input": digit, "label": "4", "prediction": "9", "confidence": 0.8},
    ]
    info = {
        "lab": "x0",
        "title": "stand-in",
        "run_id": "x0-test",
        "preset": "smoke",
        "metric": "m",
        "value": 1,
    }
    served = Served(Path("."), info, spec, Predictor(echo), failures)
    build_ui(served, lambda item: None)  # the page itself: an image input and a gallery
    shown = failure_gallery_pictures(failures, "4")
    assert len(shown) == 1 and shown[0][0].shape == (28, 28) and shown[0][1] == "true 4, predicted 9 (0.80)"
