"""Predictors for `dlp serve`, built from a finished run's folder: what the labs' serving specs load.

Each returns a `Predictor` whose `predict` answers a whole batch of requests with one pass of the model
(dlpractice.serving says what a request and an answer hold). Weights come from safetensors only.
- names (l2-l7): complete a prompt into a name with a window model.
- text (l8): continue a prompt with a GPT, character by character.
- sentence classifiers (n6): label and probabilities, from a model trained here or a fine-tuned encoder.
- taggers (n7): the entities of a text (type, character span, score) from a fine-tuned token classifier,
  and the failure cases of a tagger: its most confident wrong entities.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from dlpractice.data.names import Vocab
from dlpractice.errors import DlpError
from dlpractice.models.sampling import Request, complete_stream, complete_windows
from dlpractice.models.saved import load_run_model, read_run_json
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


ENCODER_CHUNK = 16  # texts per forward pass of a served encoder (the fastest of 8, 16, 32 for MiniLM here)


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
        # texts of similar length together, ENCODER_CHUNK at a time: a batch padded to its longest text
        # spends most of its time on padding (MiniLM here: 206 texts/s padded whole, 275/s in sorted chunks)
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        logits = torch.empty(len(texts), len(classes))  # (B, classes), in request order
        for start in range(0, len(order), ENCODER_CHUNK):
            rows = order[start : start + ENCODER_CHUNK]
            chunk = [texts[i] for i in rows]
            encoded = {"padding": True, "truncation": True, "max_length": max_length, "return_tensors": "pt"}
            inputs = tokenizer(chunk, **encoded)
            logits[rows] = model(**inputs).logits.float()
        return label_answers(logits, classes)

    return Predictor(predict)


# ---- taggers (n7): words in, IOB2 tags out, read back as entities --------------------------------------

WORD = re.compile(
    r"\w+(?:[-'’]\w+)*|[^\w\s]"
)  # CoNLL-like words: "1-0" and "O'Neill" whole, punctuation apart


def split_words(text: str) -> list[tuple[str, int, int]]:
    """(word, start, end) character offsets: the words a tagger reads, and where to highlight them."""
    return [(m.group(), m.start(), m.end()) for m in WORD.finditer(text)]


def word_values(word_ids: list[int | None], token_values: list, n_words: int, default: object = 0) -> list:
    """Each word's value from its first sub-word token; a word cut off by max_length gets `default`.

    word_ids: the fast tokenizer's `word_ids()` (None for [CLS], [SEP]); token_values: one per token."""
    out, previous = [default] * n_words, None
    for position, word in enumerate(word_ids):
        if word is not None and word != previous:
            out[word] = token_values[position]
        previous = word
    return out


def entity_spans(tags: Sequence[str], scores: Sequence[float]) -> list[tuple[str, int, int, float]]:
    """(type, first word, last word, score) of each entity in IOB2 `tags`, as seqeval reads them; the
    score is the mean probability of the entity's words' tags."""
    from dlpractice.metrics.ner import spans  # seqeval: the nlp extra, which only taggers need

    found = sorted(spans(tags), key=lambda span: span[1])
    return [(t, a, b, sum(scores[a : b + 1]) / (b + 1 - a)) for t, a, b in found]


@torch.no_grad()
def tag_tokens(model: nn.Module, ids: torch.Tensor, mask: torch.Tensor) -> list[list[tuple[int, float]]]:
    """(label id, its probability) of every token, per row, from `logits, _ = model(ids, mask)`."""
    best = model(ids, mask)[0].float().softmax(-1).max(-1)
    return [list(zip(i, p)) for i, p in zip(best.indices.tolist(), best.values.tolist())]


def tagger_predictor(model: nn.Module, tokenizer: Any, labels: Sequence[str], max_length: int) -> Predictor:
    """A token classifier trained here (`logits, loss = model(ids, mask)`) as a tagger of raw text: the
    text is split into words, each labelled from its first sub-word (words past max_length are O)."""

    def predict(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        words = [split_words(item["text"]) for item in batch]
        enc = tokenizer(
            [[w for w, _, _ in ws] for ws in words],
            is_split_into_words=True,
            truncation=True,
            max_length=max_length,
            padding=True,
            return_tensors="pt",
        )
        rows = tag_tokens(model, enc["input_ids"], enc["attention_mask"])
        return [
            {
                "text": item["text"],
                "entities": entities_of(item["text"], ws, enc.word_ids(i), rows[i], labels),
            }
            for i, (item, ws) in enumerate(zip(batch, words))
        ]

    return Predictor(predict)


def entities_of(
    text: str, words: list[tuple[str, int, int]], word_ids: list, row: list[tuple[int, float]], labels
) -> list[dict[str, Any]]:
    per_word = word_values(word_ids, row, len(words), (0, 1.0))
    tags = [labels[k] for k, _ in per_word]
    return [
        {
            "text": text[words[a][1] : words[b][2]],
            "type": t,
            "start": words[a][1],
            "end": words[b][2],
            "score": round(score, 4),
        }
        for t, a, b, score in entity_spans(tags, [p for _, p in per_word])
    ]


def token_classifier(folder: Path, run_dir: Path) -> tuple[nn.Module, Any]:
    """The run's token classifier: its architecture and tokenizer from `folder` (config.json and the
    tokenizer's files), its weights from the run's model.safetensors."""
    from transformers import AutoConfig, AutoModelForTokenClassification, AutoTokenizer

    from dlpractice.models.heads import TokenClassifier

    if not (folder / "config.json").is_file():
        raise DlpError(f"run {run_dir.name} has no tagger to serve ({folder.name}/config.json)")
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder)
        hf = AutoModelForTokenClassification.from_config(AutoConfig.from_pretrained(folder))
    except (OSError, ValueError) as err:
        raise DlpError(f"{folder} is unreadable (damaged?): {err}") from None
    return load_run_model(run_dir, TokenClassifier(hf)), tokenizer


def entity_failures(
    sentences: Sequence[Sequence[str]],
    gold: Sequence[Sequence[str]],
    pred: Sequence[Sequence[str]],
    scores: Sequence[Sequence[float]],
    k: int = 100,
) -> list[dict[str, Any]]:
    """The k predicted entities that are wrong (no gold entity has the same words and type), most
    confident first. input: the sentence with the entity in [brackets]; label: the type of the first gold
    entity that overlaps it ("O": none, a spurious entity); truth: that gold entity's words (a boundary
    error shows here); prediction: the predicted type; confidence: its score."""
    from dlpractice.metrics.ner import overlaps, spans

    cases = []
    for words, truth_tags, tags, row in zip(sentences, gold, pred, scores, strict=True):
        truth = spans(truth_tags)
        for t, a, b, score in entity_spans(tags, row):
            if (t, a, b) in truth:
                continue
            near = [g for g in sorted(truth, key=lambda g: g[1]) if overlaps(g, (t, a, b))]
            marked = [*words[:a], "[" + " ".join(words[a : b + 1]) + "]", *words[b + 1 :]]
            cases.append(
                {
                    "input": " ".join(marked),
                    "label": near[0][0] if near else "O",
                    "truth": " ".join(words[near[0][1] : near[0][2] + 1]) if near else "",
                    "prediction": t,
                    "confidence": round(score, 4),
                }
            )
    return sorted(cases, key=lambda case: -case["confidence"])[:k]
