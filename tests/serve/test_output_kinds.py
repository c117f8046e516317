"""Output kinds beyond a label or a text: an answer with sources, boxes, an image, speech, who spoke when.

The served model is a stand-in that answers with what a lab of each kind returns, because what is tested is
the path from predict() to the response (its schema, checked on every answer) and to the page."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from dlpractice.serve.app import Served, build_app
from dlpractice.serve.media import picture, recording
from dlpractice.serving import Predictor, ServingSpec, png_data_uri, wav_data_uri

TONE = (0.5 * np.sin(np.linspace(0, 200, 8000))).astype(np.float32)  # (8000,) one second at 8 kHz
MASK = np.kron(np.array([[0, 1], [2, 3]], np.uint8) * 60, np.ones((4, 4), np.uint8))  # (8, 8) four quarters

TURNS = [{"speaker": "A", "start": 0.0, "end": 1.5}, {"speaker": "B", "start": 1.2, "end": 3.0}]
ANSWERS = {
    "answer": {
        "text": "It raises AssertionError.",
        "sources": [{"title": "The assert statement", "text": "assert raises AssertionError", "score": 0.9}],
    },
    "boxes": {"boxes": [{"label": "circle", "score": 0.75, "box": [1.0, 2.0, 6.5, 7.0]}]},
    "image": {"image": png_data_uri(MASK), "values": {"min_depth": 0.5, "max_depth": 4.0}},
    "audio": {"audio": wav_data_uri(TONE, 8000), "sample_rate": 8000},
    "segments": {"segments": TURNS},
}
SCHEMAS = {
    "answer": "AnswerWithSources",
    "boxes": "BoxesAnswer",
    "image": "ImageAnswer",
    "audio": "AudioAnswer",
    "segments": "SegmentsAnswer",
}
INPUTS = {"answer": "text", "boxes": "image", "image": "image", "audio": "text", "segments": "audio"}
REQUESTS = {
    "text": {"text": "what does assert do?"},
    "image": {"image": png_data_uri(MASK)},
    "audio": {"audio": wav_data_uri(TONE, 8000)},
}


def served_with(output: str, answer: dict) -> Served:
    spec = ServingSpec(input=INPUTS[output], output=output, load=None)
    info = {"lab": "x0", "title": "stand-in", "run_id": "x0-test", "commit": "abc", "preset": "smoke"}
    info |= {"metric": "m", "value": 1}
    return Served(Path("."), info, spec, Predictor(lambda batch: [answer] * len(batch)), [])


@pytest.mark.parametrize("output", sorted(ANSWERS))
def test_each_output_kind_is_answered_as_its_schema_says(output):
    client = TestClient(build_app(served_with(output, ANSWERS[output]), ui=False))
    answer = client.post("/predict", json=REQUESTS[INPUTS[output]])
    assert answer.status_code == 200, answer.text
    assert answer.json() == ANSWERS[output]
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    assert SCHEMAS[output] in schemas, sorted(schemas)


@pytest.mark.parametrize(
    ("output", "wrong"),
    [
        ("boxes", {"boxes": [{"label": "circle", "score": 0.7, "box": [1.0, 2.0, 3.0]}]}),  # three corners
        ("segments", {"segments": [{"speaker": "A", "start": "soon", "end": 1.0}]}),
        ("audio", {"audio": wav_data_uri(TONE, 8000)}),  # no rate
    ],
)
def test_an_answer_that_breaks_its_schema_is_never_sent(output, wrong):
    client = TestClient(build_app(served_with(output, wrong), ui=False), raise_server_exceptions=False)
    assert client.post("/predict", json=REQUESTS[INPUTS[output]]).status_code == 500


def test_speech_and_pictures_survive_their_data_uris():
    rate, samples = recording(wav_data_uri(TONE, 8000))
    assert rate == 8000 and samples.shape == TONE.shape
    assert np.abs(samples - TONE).max() < 1 / 16384  # 16-bit samples
    assert np.array_equal(picture(png_data_uri(MASK)), MASK)


def test_the_page_shows_each_kind_its_own_way():
    import gradio as gr

    from dlpractice.serve.ui import answer_markdown, boxes_drawn, build_ui, output_view

    item = {"image": np.zeros((8, 8, 3), np.uint8)}
    image, marks = boxes_drawn(ANSWERS["boxes"], item)
    assert image is item["image"] and marks == [((1, 2, 6, 7), "circle 0.75")]
    text = answer_markdown(ANSWERS["answer"])
    assert text.startswith("It raises AssertionError.") and "1. **The assert statement** (0.90)" in text
    for output, answer in ANSWERS.items():
        served = served_with(output, answer)
        build_ui(served, None)  # every kind's page builds
        with gr.Blocks():
            _, shown = output_view(served.spec)
            value = shown(answer, item if INPUTS[output] == "image" else REQUESTS["text"])
        if output == "segments":
            assert value == [["A", 0.0, 1.5], ["B", 1.2, 3.0]]
        if output == "image":
            assert np.array_equal(value[0], MASK) and value[1] == answer["values"]
