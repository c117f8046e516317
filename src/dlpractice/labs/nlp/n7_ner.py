"""N7 · Named-entity recognition: a BiLSTM-CRF from scratch, then a fine-tuned MiniLM token classifier.

Two taggers on the same IOB2 data (CoNLL-2003, or generated sentences offline). The BiLSTM-CRF
(models/crf.py, Lample et al., 2016) reads words and their characters and scores whole tag sequences: the
CRF's forward algorithm gives the likelihood, Viterbi the best path. The transformer is a pretrained
encoder (by default the packaged MiniLM, uncased) with a linear layer on every sub-word: a word that the
tokenizer splits into pieces is labelled on its first piece only (the others are ignored by the loss) and
predicted from it. Both are scored by entity-level precision, recall and F1 (seqeval), per type, and
their mistakes sorted into boundary, type, spurious and missed entities. Entities whose words also occur
lower-case as ordinary words ("Major", "Real Madrid") are scored apart: an uncased model cannot tell them
from the ordinary word, a model that reads characters can. Simplified: no pretrained word vectors for the
BiLSTM, the transformer's word label comes from its first sub-word, no CRF on top of the transformer.
`dlp serve` tags raw text with the transformer (entities with their character spans and scores) and
shows its most confident wrong entities on the test split.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from dlpractice.data.batching import LengthBatches, pad_rows
from dlpractice.data.conll import ENTITY_TYPES, LABELS, NerData, Sentence, load_ner
from dlpractice.errors import DlpError
from dlpractice.metrics.ner import ERROR_KINDS, classify_errors, entity_scores, recall_by_group
from dlpractice.models import crf
from dlpractice.models.backbone import load_pretrained
from dlpractice.models.crf import PAD, BiLSTMCRF
from dlpractice.models.heads import TokenClassifier
from dlpractice.recipes import serving as tagger
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n7", requires=("n6",), data=("conll2003",), metric="test_f1", goal="max", bar=0.85)
LABEL_ID = {label: i for i, label in enumerate(LABELS)}
IGNORE = -100  # label of special tokens and continuation sub-words: no loss, no prediction


@dataclass
class Config(FitConfig):  # fit()'s fields train the transformer; crf_* the BiLSTM-CRF
    model: str = "minilm"  # the packaged MiniLM, a local model directory or a Hub id
    max_length: PositiveInt = 128  # sub-word tokens per sentence; words cut off are predicted O
    n_generated: PositiveInt = 3000  # embedded data: training sentences (validation and test: a fifth each)
    n_train: NonNegativeInt = 0  # use the first n training sentences (0: all)
    n_eval: NonNegativeInt = 0  # use the first n validation and test sentences (0: all)
    eval_batch_size: PositiveInt = 64
    crf_steps: PositiveInt = 3000
    crf_batch_size: PositiveInt = 32
    crf_lr: PositiveFloat = 3e-3
    word_dim: PositiveInt = 100
    char_filters: PositiveInt = 50
    lstm_hidden: PositiveInt = 100
    dropout: Probability = 0.5
    min_word_count: PositiveInt = 2  # rarer training words share the UNK embedding (so UNK is trained)


PRESETS = {
    "smoke": {
        "n_generated": 150,
        "max_length": 48,
        "steps": 12,
        "batch_size": 16,
        "lr": 1e-3,
        "eval_every": 6,
        "log_every": 3,
        "crf_steps": 150,
        "crf_lr": 1e-2,
        "word_dim": 16,
        "char_filters": 8,
        "lstm_hidden": 16,
    },
    "quick": {
        "n_generated": 2000,
        "steps": 250,
        "batch_size": 16,
        "lr": 1e-4,
        "warmup_steps": 25,
        "schedule": "linear",
        "weight_decay": 0.01,
        "eval_every": 250,
        "log_every": 10,
        "crf_steps": 600,
    },
    "full": {
        "steps": 800,  # 1.8 epochs of CoNLL-2003 train at 32 sentences a step
        "batch_size": 32,
        "lr": 2e-4,
        "warmup_steps": 80,
        "schedule": "linear",
        "min_lr_ratio": 0.0,
        "weight_decay": 0.01,
        "eval_every": 800,
        "log_every": 10,
        "ckpt_every": 200,
        "crf_steps": 4000,
        "crf_lr": 5e-3,
    },
}


# ---- the BiLSTM-CRF: words and characters as ids (models/crf.py) ---------------------------------------


def bilstm_tensors(sentences: list[Sentence], words: dict, chars: dict) -> tuple[torch.Tensor, ...]:
    """Word ids (N, T), character ids (N, T, C) uint8, tag ids (N, T) padded with IGNORE."""
    word_ids, char_ids = crf.encode([s.tokens for s in sentences], words, chars)
    return word_ids, char_ids, pad_rows([[LABEL_ID[t] for t in s.tags] for s in sentences], IGNORE)


def train_bilstm_crf(data: NerData, cfg: Config, ctx) -> dict:
    words, chars = crf.build_vocab([s.tokens for s in data.train], cfg.min_word_count)
    splits = {name: bilstm_tensors(getattr(data, name), words, chars) for name in ("train", "val", "test")}
    batches = LengthBatches(splits, {n: (t[0] != PAD).sum(1) for n, t in splits.items()}, cfg.eval_batch_size)
    torch.manual_seed(ctx.seed)
    sizes = {"word_dim": cfg.word_dim, "char_filters": cfg.char_filters, "hidden": cfg.lstm_hidden}
    model = BiLSTMCRF(len(words) + 2, len(chars) + 2, len(LABELS), dropout=cfg.dropout, **sizes)
    knobs = {"steps": cfg.crf_steps, "batch_size": cfg.crf_batch_size, "lr": cfg.crf_lr, "weight_decay": 0.0}
    fit_cfg = replace(cfg, **knobs, warmup_steps=0, schedule="cosine", eval_every=cfg.crf_steps)
    result = fit(model, batches, fit_cfg, ctx)
    model.eval()
    device = next(model.parameters()).device
    paths = predict(batches, "test", lambda w, c: model.decode(w.to(device), c.to(device)))
    pred = [[LABELS[i] for i in p] for p in paths]
    return {"model": model, "history": result.history, "seconds": result.seconds, "pred": pred}


# ---- the transformer: sub-word tokens and label alignment ----------------------------------------------


def align_labels(word_ids: list[int | None], word_labels: list[int]) -> list[int]:
    """One label per sub-word token: the word's label on its first sub-word, IGNORE on the others.

    word_ids: the fast tokenizer's `word_ids()`, the index of each token's word, None for [CLS], [SEP].
    """
    # BEGIN EXERCISE n7.3: label each word's first sub-word; ignore its other pieces and the special tokens
    labels, previous = [], None
    for word in word_ids:
        labels.append(IGNORE if word is None or word == previous else word_labels[word])
        previous = word
    return labels
    # END EXERCISE


def word_predictions(word_ids: list[int | None], token_predictions: list[int], n_words: int) -> list[int]:
    """Each word's label from its first sub-word; a word cut off by max_length is O (label 0)."""
    return tagger.word_values(word_ids, token_predictions, n_words, LABEL_ID["O"])


def fine_tune(data: NerData, cfg: Config, ctx) -> dict:
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, cfg.model)
    if not tokenizer.is_fast:
        raise DlpError(f"{cfg.model}: label alignment needs a fast tokenizer (word_ids()); this one is slow")
    splits, lengths, word_ids = {}, {}, {}
    for name in ("train", "val", "test"):
        sentences = getattr(data, name)
        enc = tokenizer(
            [list(s.tokens) for s in sentences],
            is_split_into_words=True,
            truncation=True,
            max_length=cfg.max_length,
        )
        word_ids[name] = [enc.word_ids(i) for i in range(len(sentences))]
        labels = [align_labels(w, [LABEL_ID[t] for t in s.tags]) for w, s in zip(word_ids[name], sentences)]
        ids = pad_rows(enc["input_ids"], tokenizer.pad_token_id)
        splits[name] = (ids, pad_rows(enc["attention_mask"], 0), pad_rows(labels, IGNORE))
        lengths[name] = splits[name][1].sum(1)
    batches = LengthBatches(splits, lengths, cfg.eval_batch_size)
    names = {"num_labels": len(LABELS), "id2label": dict(enumerate(LABELS)), "label2id": LABEL_ID}
    model = TokenClassifier(load_pretrained(AutoModelForTokenClassification, cfg.model, **names))
    model.hf.config.save_pretrained(ctx.run_dir / "tagger")  # with the tokenizer: what `dlp serve` rebuilds
    tokenizer.save_pretrained(ctx.run_dir / "tagger")  # (the weights are fit()'s model.safetensors)
    result = fit(model, batches, cfg, ctx)
    model.eval()
    device = next(model.parameters()).device
    tokens = predict(batches, "test", lambda i, m: tagger.tag_tokens(model, i.to(device), m.to(device)))
    words = [
        tagger.word_values(w, t, len(s.tokens), (0, 0.0))
        for w, t, s in zip(word_ids["test"], tokens, data.test)
    ]
    pred = [[LABELS[k] for k, _ in row] for row in words]
    truncated = sum(
        max((w for w in ws if w is not None), default=-1) + 1 < len(s.tokens)
        for ws, s in zip(word_ids["test"], data.test)
    )
    return {
        "model": model,
        "history": result.history,
        "seconds": result.seconds,
        "pred": pred,
        "scores": [[p for _, p in row] for row in words],  # each word's tag probability
        "truncated": truncated,
        "params": sum(p.numel() for p in model.parameters()),
    }


# ---- shared: prediction in split order, scores, figures ------------------------------------------------


@torch.no_grad()
def predict(batches: LengthBatches, split: str, decode) -> list[list[int]]:
    """decode(*inputs) -> one list of label ids per row, gathered back into the split's order."""
    out: list[list[int]] = [[] for _ in range(len(batches.lengths[split]))]
    for index in batches.eval_indices(split):
        *inputs, _ = batches.batch(split, index)
        for row, labels in zip(index.tolist(), decode(*inputs)):
            out[row] = labels
    return out


def case_groups(data: NerData):
    """A gold test entity's group: 'has a lower-case word' if one of its words is an ordinary lower-case
    word of the training sentences (tagged O), as "major" for "Major", "real" for "Real Madrid"."""
    lower = {t for s in data.train for t, tag in zip(s.tokens, s.tags) if tag == "O" and t.islower()}

    def group(i: int, span: tuple[str, int, int]) -> str:
        words = data.test[i].tokens[span[1] : span[2] + 1]
        return "has a lower-case word" if any(w.lower() in lower for w in words) else "other"

    return group


def bars_figure(rows: dict[str, dict[str, float]], ylabel: str, title: str) -> plt.Figure:
    """Grouped bars: one group per key of the first row, one bar per model."""
    keys = list(next(iter(rows.values())))
    fig, ax = plt.subplots(figsize=(7, 3.2))
    width = 0.8 / len(rows)
    for k, (model, values) in enumerate(rows.items()):
        ax.bar([x + k * width for x in range(len(keys))], [values[key] for key in keys], width, label=model)
    ax.set_xticks([x + width * (len(rows) - 1) / 2 for x in range(len(keys))], keys)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def transitions_figure(model: BiLSTMCRF) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5, 4.3))
    image = ax.imshow(model.crf.transitions.detach().cpu(), cmap="RdBu_r", vmin=-4, vmax=4)
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=60, fontsize=7)
    ax.set_yticks(range(len(LABELS)), LABELS, fontsize=7)
    ax.set_xlabel("next tag")
    ax.set_ylabel("previous tag")
    ax.set_title("learned CRF transition scores", fontsize=10)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def take(data: NerData, cfg: Config) -> NerData:
    """The first n_train / n_eval sentences of each split (0: all of them)."""
    n = {"train": cfg.n_train, "val": cfg.n_eval, "test": cfg.n_eval}
    return replace(data, **{split: getattr(data, split)[: n[split] or None] for split in n})


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    data = take(load_ner(ctx.data, ctx.data_dir, cfg.n_generated), cfg)
    ctx.record_data(data.describe())
    gold = [list(s.tags) for s in data.test]
    runs = {"BiLSTM-CRF": train_bilstm_crf(data, cfg, ctx.child("bilstm_crf"))}
    torch.manual_seed(ctx.seed)
    name = "MiniLM" if cfg.model == "minilm" else cfg.model.rstrip("/").split("/")[-1]
    runs[name] = tuned = fine_tune(data, cfg, ctx)
    scores = {name: entity_scores(gold, r["pred"]) for name, r in runs.items()}
    errors = {name: classify_errors(gold, r["pred"]) for name, r in runs.items()}
    by_case = {name: recall_by_group(gold, r["pred"], case_groups(data)) for name, r in runs.items()}

    ctx.loss_figure(tuned["history"], title="Loss curve (transformer)")
    crf_history = runs["BiLSTM-CRF"]["history"]
    ctx.loss_figure(crf_history, "loss_bilstm_crf", "Loss curve (BiLSTM-CRF)", ylabel="NLL (nats/sentence)")
    f1_rows = {
        n: {t: s.get(t, {"f1": 0.0})["f1"] for t in (*ENTITY_TYPES, "micro avg")} for n, s in scores.items()
    }
    ctx.figure("f1_by_type", bars_figure(f1_rows, "entity F1", "Test F1 per entity type"), "F1 per type")
    error_rows = {n: {k: float(e[k]) for k in ERROR_KINDS} for n, e in errors.items()}
    ctx.figure("errors", bars_figure(error_rows, "entities", "Test errors by kind"), "Errors by kind")
    ctx.figure("transitions", transitions_figure(runs["BiLSTM-CRF"]["model"]), "CRF transitions")
    ctx.section("Test scores (entity level, seqeval)", scores_table(scores))
    kinds = ("correct", *ERROR_KINDS)
    error_table = markdown_table(("model", *kinds), [(n, *(e[k] for k in kinds)) for n, e in errors.items()])
    ctx.section("Errors by kind (test entities)", error_table)
    ctx.section("Recall of entities with a word that also occurs lower-case", case_table(by_case))
    tokens = [s.tokens for s in data.test]
    ctx.save_json(
        FAILURES, tagger.entity_failures(tokens, gold, tuned["pred"], tuned["scores"])
    )  # for `dlp serve`

    metrics: dict[str, float] = {}
    for name, s in scores.items():
        key = "" if name != "BiLSTM-CRF" else "bilstm_crf_"
        metrics |= {f"{key}test_{m}": s["micro avg"][m] for m in ("precision", "recall", "f1")}
        metrics |= {f"{key}f1_{t}": s[t]["f1"] for t in ENTITY_TYPES if t in s}
        metrics |= {f"{key}errors_{k.replace('+', '_')}": float(errors[name][k]) for k in ERROR_KINDS}
        metrics |= {
            f"{key}recall_{g.replace(' ', '_').replace('-', '_')}": hit / max(1, n)
            for g, (hit, n) in by_case[name].items()
        }
    metrics["bilstm_crf_f1"] = metrics.pop("bilstm_crf_test_f1")
    metrics |= {
        "train_seconds": tuned["seconds"],
        "bilstm_crf_train_seconds": runs["BiLSTM-CRF"]["seconds"],
        "params": float(tuned["params"]),
        "truncated_test_sentences": float(tuned["truncated"]),
        "wall_seconds": time.perf_counter() - started,
    }
    return metrics


def scores_table(scores: dict[str, dict]) -> str:
    rows = [
        (
            name,
            *(f"{s['micro avg'][m]:.3f}" for m in ("precision", "recall", "f1")),
            *(f"{s[t]['f1']:.3f}" if t in s else "—" for t in ENTITY_TYPES),
        )
        for name, s in scores.items()
    ]
    return markdown_table(("model", "precision", "recall", "F1", *(f"F1 {t}" for t in ENTITY_TYPES)), rows)


def case_table(by_case: dict[str, dict[str, tuple[int, int]]]) -> str:
    groups = list(next(iter(by_case.values())))
    rows = [(name, *(f"{h / max(1, n):.3f} ({h}/{n})" for h, n in r.values())) for name, r in by_case.items()]
    return markdown_table(("model", *groups), rows)


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the entities that the run's transformer (the model its metric scores) finds in a text."""
    model, tokenizer = tagger.token_classifier(run_dir / "tagger", run_dir)
    return tagger.tagger_predictor(model, tokenizer, LABELS, cfg.max_length)


EXAMPLES = ("Police in Berlin arrested John Smith on Friday.", "The French team arrived in London on Monday.")
SERVING = ServingSpec(input="text", output="entities", load=serve, examples=EXAMPLES)
