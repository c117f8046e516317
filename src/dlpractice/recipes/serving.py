"""Predictors for `dlp serve`, built from a finished run's folder: what the labs' serving specs load.

Each returns a `Predictor` whose `predict` answers a whole batch of requests with one pass of the model
(dlpractice.serving says what a request and an answer hold). Weights come from safetensors only.
- names (l2-l7): complete a prompt into a name with a window model.
- text (l8): continue a prompt with a GPT, character by character.
- sentence classifiers (n6): label and probabilities, from a model trained here or a fine-tuned encoder.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpractice.data.names import Vocab
from dlpractice.errors import DlpError
from dlpractice.models.sampling import Request, complete_stream, complete_windows
from dlpractice.models.saved import read_run_json
from dlpractice.serving import Predictor


def requests_of(batch: list[dict[str, Any]], encode: Callable[[str], list[int]]) -> list[Request]:
    return [Request(encode(i["prompt"]), i["max_tokens"], i["temperature"], i["top_k"]) for i in batch]


def vocabulary_check(known: set[str]) -> Callable[[dict[str, Any]], None]:
    """A prompt may hold only characters the model was trained on: the others have no id."""

    def check(item: dict[str, Any]) -> None:
        unknown = sorted(set(item["prompt"]) - known)
        if unknown:
            shown = "".join(unknown[:10])
            raise ValueError(f"the prompt has characters the model never saw: {shown!r}")

    return check


def name_predictor(model: nn.Module, vocab: Vocab, block_size: int) -> Predictor:
    """Names that start with the prompt (lower-case letters); an empty prompt is a whole new name."""

    def encode(prompt: str) -> list[int]:
        return vocab.encode(prompt)

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = complete_windows(model, block_size, requests_of(batch, encode), stop=0)
        return [{"text": item["prompt"] + vocab.decode(ids)} for item, ids in zip(batch, new)]

    return Predictor(predict, vocabulary_check(set(vocab.chars) - {vocab.chars[0]}))


def name_vocab(run_dir: Path) -> Vocab:
    chars = read_run_json(run_dir, "vocab.json")
    return Vocab(chars[1:])  # vocab.json starts with the boundary, which Vocab adds itself


def text_predictor(model: nn.Module, chars: list[str], block_size: int, start: str = "\n") -> Predictor:
    """The prompt and its continuation; every prompt is read after `start` (the samples begin there)."""
    stoi = {c: i for i, c in enumerate(chars)}

    def encode(prompt: str) -> list[int]:
        return [stoi[c] for c in start + prompt]

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        new = complete_stream(model, block_size, requests_of(batch, encode))
        return [{"text": item["prompt"] + "".join(chars[i] for i in ids)} for item, ids in zip(batch, new)]

    return Predictor(predict, vocabulary_check(set(chars)))


def label_answers(logits: torch.Tensor, classes: list[str]) -> list[dict[str, Any]]:
    """(B, C) logits -> the label and every class's probability, per row."""
    probs = logits.float().softmax(-1)
    labels = probs.argmax(-1).tolist()
    return [
        {"label": classes[i], "probabilities": dict(zip(classes, row))}
        for i, row in zip(labels, probs.tolist())
    ]


def classifier_predictor(
    model: nn.Module, encode: Callable[[list[str]], torch.Tensor], classes: list[str]
) -> Predictor:
    """A model trained here (`logits, loss = model(ids)`): `encode` turns sentences into (B, T) ids."""

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return label_answers(model(encode([item["text"] for item in batch]))[0], classes)

    return Predictor(predict)


def encoder_predictor(folder: Path, max_length: int) -> Predictor:
    """A fine-tuned Hugging Face encoder saved by the run (weights as safetensors, never a pickle)."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if not (folder / "model.safetensors").is_file():
        raise DlpError(
            f"run {folder.parent.name} has no fine-tuned weights ({folder.name}/model.safetensors)"
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        model = AutoModelForSequenceClassification.from_pretrained(folder, use_safetensors=True).eval()
    except (OSError, ValueError) as err:
        raise DlpError(f"{folder} is unreadable (damaged?): {err}") from None
    classes = [model.config.id2label[i] for i in range(model.config.num_labels)]

    @torch.no_grad()
    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        texts = [item["text"] for item in batch]
        inputs = tokenizer(texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
        return label_answers(model(**inputs).logits, classes)

    return Predictor(predict)
