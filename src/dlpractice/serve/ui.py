"""The Gradio page of a served run: try the model, and read its failure cases.

"Try it": an input (a text box with the lab's examples, an image, or a recording) and the prediction: a
label with its probabilities, the text with its entities highlighted, an answer with its sources, boxes
drawn on the picture, an output picture, speech, who spoke when, or the generated text (with temperature,
top-k and length for a generative lab). Requests from the page go through the same
checks and the same batcher as POST /predict.
"Failure cases": the run's most confident test mistakes (input, true label, prediction, confidence),
filterable by true label, for a lab that records them: a table, or a gallery for an image lab.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import gradio as gr
import numpy as np

from dlpractice.serve.app import Served
from dlpractice.serve.media import check_duration, check_image_side, picture, recording

ALL = "all classes"
COLUMNS = ("input", "label", "prediction", "confidence")


def failure_columns(failures: list[dict[str, Any]]) -> list[str]:
    """COLUMNS, then whatever else the lab recorded (n7: the gold entity's words, "truth")."""
    extra = {key: None for case in failures for key in case if key not in COLUMNS}
    return [*COLUMNS, *extra]


def failure_rows(failures: list[dict[str, Any]], label: str = ALL) -> list[list[Any]]:
    columns = failure_columns(failures)
    return [[case.get(c, "") for c in columns] for case in failures if label in (ALL, case.get("label"))]


def build_ui(served: Served, answer: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]) -> gr.Blocks:
    """The page; `answer(item)` is the endpoint's own path to the model (check, then batch)."""
    spec, info = served.spec, served.info
    with gr.Blocks(title=f"dlp serve · {info['lab']}") as page:
        gr.Markdown(
            f"## {info['lab']} · {info['title']}\nRun `{info['run_id']}` ({info['preset']} preset): "
            f"{info['metric']} = {info['value']}. JSON API: [/docs](/docs)."
        )
        with gr.Tab("Try it"):
            if spec.output == "entities":
                try_tagger(spec, answer)
            elif spec.input == "text":
                try_text(spec, answer)
            elif spec.input in ("image", "audio"):
                try_file(spec, answer)
            else:
                try_generator(spec, answer)
        with gr.Tab("Failure cases"):
            if any(str(case.get("input", "")).startswith("data:image") for case in served.failures):
                failure_gallery(served.failures)
            else:
                failure_tab(served.failures)
    return page


def errors_shown(exc: Exception) -> gr.Error:
    """A rejected request (HTTPException 422) as a message on the page."""
    return gr.Error(str(getattr(exc, "detail", exc)))


def output_view(spec: Any) -> tuple[list[Any], Callable[[dict[str, Any], dict[str, Any]], Any]]:
    """The components that show an answer, and `shown(result, item)`: what they show of it (`item`, the
    request as predict() took it, is where the boxes are drawn)."""
    if spec.output == "label":
        return [gr.Label(label="prediction", elem_id="prediction")], lambda r, item: r["probabilities"]
    if spec.output == "answer":
        return [gr.Markdown(elem_id="answer")], lambda r, item: answer_markdown(r)
    if spec.output == "boxes":
        return [gr.AnnotatedImage(label="detections", elem_id="boxes")], boxes_drawn
    if spec.output == "image":
        views = [gr.Image(label="output", elem_id="output-image"), gr.Label(label="values", elem_id="values")]
        return views, lambda r, item: (picture(r["image"]), r["values"])
    if spec.output == "audio":
        return [gr.Audio(label="speech", elem_id="speech")], lambda r, item: recording(r["audio"])
    if spec.output == "segments":
        headers = ["speaker", "start (s)", "end (s)"]
        table = gr.Dataframe(headers=headers, interactive=False, elem_id="segments")
        return [table], lambda r, item: [[s["speaker"], s["start"], s["end"]] for s in r["segments"]]
    return [gr.Textbox(label="answer", lines=6, elem_id="answer")], lambda r, item: r["text"]


def answer_markdown(result: dict[str, Any]) -> str:
    """An answer, then its sources as a numbered list with their scores."""
    found = enumerate(result["sources"], 1)
    sources = [f"{i}. **{s['title']}** ({s['score']:.2f}): {s['text']}" for i, s in found]
    return "\n\n".join([result["text"], *(["**Sources**", "\n".join(sources)] if sources else [])])


def boxes_drawn(result: dict[str, Any], item: dict[str, Any]) -> tuple[np.ndarray, list]:
    """The request's picture with each box labelled "class score"."""
    boxes = result["boxes"]
    marks = [(tuple(int(round(v)) for v in b["box"]), f"{b['label']} {b['score']:.2f}") for b in boxes]
    return item["image"], marks


def try_text(spec: Any, answer: Callable) -> None:
    """A text in, its label (with probabilities), its answer, or its speech out."""
    text = gr.Textbox(label="text", lines=2, max_length=spec.max_chars, elem_id="text")
    button = gr.Button("Predict", variant="primary", elem_id="predict")
    views, shown = output_view(spec)

    async def predict(value: str) -> Any:
        item = {"text": value}
        try:
            return shown(await answer(item), item)
        except Exception as exc:
            raise errors_shown(exc) from None

    button.click(predict, inputs=text, outputs=views)
    text.submit(predict, inputs=text, outputs=views)
    if spec.examples:
        gr.Examples(examples=[[e] for e in spec.examples], inputs=text)


def try_file(spec: Any, answer: Callable) -> None:
    """An image or a recording in (upload, or the microphone), the answer out; the same size limits as
    POST /predict, then the same checks and batcher."""
    if spec.input == "image":
        source = gr.Image(label="image", type="numpy", elem_id="image")
    else:
        source = gr.Audio(label="recording", type="numpy", sources=["upload", "microphone"], elem_id="audio")
    button = gr.Button("Predict", variant="primary", elem_id="predict")
    views, shown = output_view(spec)

    async def predict(value: Any) -> Any:
        if value is None:
            raise gr.Error(f"no {spec.input} yet: upload one first")
        try:
            item = page_item(spec, value)
            return shown(await answer(item), item)
        except Exception as exc:
            raise errors_shown(exc) from None

    button.click(predict, inputs=source, outputs=views)


def page_item(spec: Any, value: Any) -> dict[str, Any]:
    """What the page's image (uint8 (H, W[, 3])) or recording ((rate, int16 samples (T[, channels]))) is
    as a request to predict()."""
    if spec.input == "image":
        check_image_side(*value.shape[:2], spec)
        return {"image": value}
    rate, samples = value
    check_duration(len(samples) / rate, spec)
    audio = samples.astype(np.float32) / (32768 if samples.dtype == np.int16 else 1)
    return {"audio": audio.reshape(len(audio), -1).mean(axis=1), "sample_rate": int(rate)}


def try_tagger(spec: Any, answer: Callable) -> None:
    """The text with each entity highlighted by type, and the entities' scores in a table."""
    text = gr.Textbox(label="text", lines=2, max_length=spec.max_chars, elem_id="text")
    button = gr.Button("Find entities", variant="primary", elem_id="predict")
    shown = gr.HighlightedText(label="entities", combine_adjacent=False, elem_id="entities")
    table = gr.Dataframe(headers=["entity", "type", "score"], interactive=False, elem_id="entity-scores")

    async def tag(value: str) -> tuple[dict[str, Any], list[list[Any]]]:
        try:
            result = await answer({"text": value})
        except Exception as exc:
            raise errors_shown(exc) from None
        found = result["entities"]
        marks = [{"entity": e["type"], "start": e["start"], "end": e["end"]} for e in found]
        rows = [[e["text"], e["type"], e["score"]] for e in found]
        return {"text": result["text"], "entities": marks}, rows

    button.click(tag, inputs=text, outputs=[shown, table])
    text.submit(tag, inputs=text, outputs=[shown, table])
    if spec.examples:
        gr.Examples(examples=[[e] for e in spec.examples], inputs=text)


def try_generator(spec: Any, answer: Callable) -> None:
    defaults = {"max_tokens": min(20, spec.max_tokens), "temperature": 1.0, "top_k": 0, **spec.defaults}
    prompt = gr.Textbox(label="prompt", max_length=spec.max_chars, elem_id="prompt")
    with gr.Row():
        length = gr.Slider(1, spec.max_tokens, value=defaults["max_tokens"], step=1, label="max tokens")
        temperature = gr.Slider(0.05, 2.0, value=defaults["temperature"], step=0.05, label="temperature")
        top_k = gr.Slider(0, 100, value=defaults["top_k"], step=1, label="top-k (0: all)")
    button = gr.Button("Generate", variant="primary", elem_id="generate")
    output = gr.Textbox(label="generated", lines=6, elem_id="generated")

    async def generate(value: str, n: float, t: float, k: float) -> str:
        item = {"prompt": value, "max_tokens": int(n), "temperature": float(t), "top_k": int(k)}
        try:
            result = await answer(item)
        except Exception as exc:
            raise errors_shown(exc) from None
        return result["text"]

    button.click(generate, inputs=[prompt, length, temperature, top_k], outputs=output)
    if spec.examples:
        gr.Examples(examples=[[e] for e in spec.examples], inputs=prompt)


def failure_tab(failures: list[dict[str, Any]]) -> None:
    if not failures:
        gr.Markdown("This run recorded no failure cases (its lab records none, or it made no mistake).")
        return
    classes = sorted({str(case.get("label")) for case in failures})
    gr.Markdown("The run's most confident mistakes on its test split, most confident first.")
    choice = gr.Dropdown([ALL, *classes], value=ALL, label="true label", elem_id="failure-class")
    columns = failure_columns(failures)
    table = gr.Dataframe(
        value=failure_rows(failures),
        headers=columns,
        column_widths=["45%", *[f"{55 // (len(columns) - 1)}%"] * (len(columns) - 1)],  # all in view
        interactive=False,
        wrap=True,
        elem_id="failures",
    )
    choice.change(lambda label: failure_rows(failures, label), inputs=choice, outputs=table)


def failure_gallery(failures: list[dict[str, Any]]) -> None:
    """An image lab's mistakes as pictures, each captioned with its true label, prediction and confidence."""
    classes = sorted({str(case.get("label")) for case in failures})
    gr.Markdown("The run's most confident mistakes on its test split, most confident first.")
    choice = gr.Dropdown([ALL, *classes], value=ALL, label="true label", elem_id="failure-class")

    gallery = gr.Gallery(
        value=failure_gallery_pictures(failures), columns=8, label="failure cases", elem_id="failures"
    )
    choice.change(lambda label: failure_gallery_pictures(failures, label), inputs=choice, outputs=gallery)


def failure_gallery_pictures(
    failures: list[dict[str, Any]], label: str = ALL
) -> list[tuple[np.ndarray, str]]:
    """(picture, "true 4, predicted 9 (0.80)") for each failure case of the true label (ALL: every one)."""
    chosen = [case for case in failures if label in (ALL, case.get("label"))]
    return [
        (picture(c["input"]), f"true {c['label']}, predicted {c['prediction']} ({c['confidence']:.2f})")
        for c in chosen
    ]
