"""N8 · Extractive question answering: a pretrained encoder predicts where the answer starts and ends.

The question and the context go into the encoder as one pair; a linear layer gives every token a start
and an end logit, and the answer is the context span with the highest start + end score (Devlin et al.,
2019). A context longer than `max_length` is cut into overlapping windows (`stride` tokens shared by
neighbours), each window a training example of its own; a window that does not hold the whole answer is
trained to point at [CLS]. The tokenizer's offset mapping turns token positions back into characters of
the context. Decoding takes the n best starts and n best ends of every window, keeps the valid spans
(inside the context, end after start, not too long) and answers with the best over all windows. Scores
are SQuAD v1.1 exact match and F1 (metrics/squad.py), per question word, by kind of failure, and with
the first window only, to see what the stride buys. Simplified from the reference scripts: no
answer-length prior, a plain sum of start and end logits.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import torch
from torch import nn

from dlpractice.config import NonNegativeInt, PositiveInt, require
from dlpractice.data.batching import LengthBatches, pad_rows
from dlpractice.data.squad import QAData, QAExample, load_qa
from dlpractice.errors import DlpError
from dlpractice.metrics.squad import FAILURE_KINDS, best_over, f1_score, failure_kind, squad_scores
from dlpractice.models.backbone import load_pretrained
from dlpractice.models.heads import SpanExtractor
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n8", requires=("n7",), data=("squad",), metric="test_f1", goal="max")
Offsets = list[tuple[int, int] | None]  # per token: its characters in the context, None outside the context
QUESTION_WORDS = ("what", "who", "when", "where", "which", "how", "why")


@dataclass
class Config(FitConfig):
    model: str = "minilm"  # the packaged MiniLM, a local model directory or a Hub id
    max_length: PositiveInt = 384  # tokens per window: question + context piece + 3 special tokens
    stride: NonNegativeInt = 128  # tokens shared by neighbouring windows of one context
    n_best: PositiveInt = 20  # start and end candidates per window
    max_answer_tokens: PositiveInt = 30
    n_generated: PositiveInt = 2000  # embedded data: training questions (validation and test: a fifth each)
    people: PositiveInt = 3  # embedded data: biographies per context
    n_train: NonNegativeInt = 0  # use the first n training questions (0: all)
    n_eval: NonNegativeInt = 0  # use the first n validation and test questions (0: all)
    eval_batch_size: PositiveInt = 32

    def check(self) -> None:  # windows overlap by `stride` tokens, so a window must hold more than that
        require(self.stride < self.max_length, f"stride={self.stride} must be < max_length={self.max_length}")


PRESETS = {
    "smoke": {
        "n_generated": 60,
        "people": 2,
        "max_length": 64,
        "stride": 16,
        "steps": 10,
        "batch_size": 8,
        "lr": 1e-3,
        "eval_every": 5,
        "log_every": 2,
    },
    "quick": {
        "n_generated": 1000,
        "max_length": 128,  # a three-biography context takes two or three windows
        "stride": 48,
        "steps": 120,
        "batch_size": 16,
        "lr": 2e-4,
        "warmup_steps": 12,
        "schedule": "linear",
        "min_lr_ratio": 0.0,
        "weight_decay": 0.01,
        "eval_every": 120,
        "log_every": 10,
    },
    "full": {  # sized for a CPU: ~15 minutes with one thread
        "n_generated": 4000,
        "people": 6,  # embedded: a context takes two windows
        "n_train": 4000,  # real: a slice of SQuAD's 87,599 training questions
        "n_eval": 500,
        "max_length": 256,
        "stride": 96,
        "steps": 200,
        "batch_size": 16,
        "lr": 2e-4,
        "warmup_steps": 20,
        "schedule": "linear",
        "min_lr_ratio": 0.0,
        "weight_decay": 0.01,
        "eval_every": 200,
        "log_every": 10,
        "ckpt_every": 100,
    },
}


def answer_tokens(offsets: Offsets, start_char: int, end_char: int) -> tuple[int, int]:
    """Positions of the answer's first and last token; (0, 0), i.e. [CLS], if the window lacks any of it."""
    inside = [i for i, o in enumerate(offsets) if o is not None]
    if offsets[inside[0]][0] > start_char or offsets[inside[-1]][1] < end_char:
        return 0, 0
    first = next(i for i in inside if offsets[i][1] > start_char)
    last = next(i for i in reversed(inside) if offsets[i][0] < end_char)
    return first, last


@dataclass
class Windows:
    """The tokenised windows of one split and, for each, its example and its offsets."""

    tensors: tuple[torch.Tensor, ...]  # input ids, attention mask, token types (N, L); targets (N, 2)
    lengths: torch.Tensor  # (N,)
    example: list[int]  # window -> index of its example in the split
    offsets: list[Offsets]
    first: list[bool]  # the first window of its example


def make_windows(examples: list[QAExample], tokenizer, cfg: Config) -> Windows:
    enc = tokenizer(
        [e.question for e in examples],
        [e.context for e in examples],
        truncation="only_second",  # only the context is cut, into windows
        max_length=cfg.max_length,
        stride=cfg.stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
    )
    example_of = list(enc["overflow_to_sample_mapping"])
    offsets, targets = [], []
    for i, k in enumerate(example_of):
        ids = enc.sequence_ids(i)  # 0 question, 1 context, None special tokens
        offsets.append([tuple(o) if s == 1 else None for o, s in zip(enc["offset_mapping"][i], ids)])
        e = examples[k]
        targets.append(answer_tokens(offsets[-1], e.answer_start, e.answer_start + len(e.answers[0])))
    types = enc["token_type_ids"] if "token_type_ids" in enc else [[0] * len(r) for r in enc["input_ids"]]
    mask = pad_rows(enc["attention_mask"], 0)
    tensors = (
        pad_rows(enc["input_ids"], tokenizer.pad_token_id),
        mask,
        pad_rows(types, 0),
        torch.tensor(targets),
    )
    first = [i == 0 or example_of[i - 1] != k for i, k in enumerate(example_of)]
    return Windows(tensors, mask.sum(1), example_of, offsets, first)


def best_spans(
    start_logits: list[float], end_logits: list[float], offsets: Offsets, n_best: int, max_answer_tokens: int
) -> list[tuple[float, int, int]]:
    """The best valid spans of one window, best first: (start logit + end logit, first char, end char).

    Valid: both ends in the context (offsets not None), end at or after start, at most max_answer_tokens.
    Only the n_best highest starts and n_best highest ends are paired; at most n_best spans are returned.
    """
    # BEGIN EXERCISE n8.1: pair the n best starts with the n best ends, keep the valid spans, best first
    starts = sorted(range(len(offsets)), key=lambda i: start_logits[i], reverse=True)[:n_best]
    ends = sorted(range(len(offsets)), key=lambda i: end_logits[i], reverse=True)[:n_best]
    spans = [
        (start_logits[s] + end_logits[e], offsets[s][0], offsets[e][1])
        for s in starts
        for e in ends
        if offsets[s] is not None and offsets[e] is not None and s <= e < s + max_answer_tokens
    ]
    return sorted(spans, reverse=True)[:n_best]
    # END EXERCISE


@torch.no_grad()
def window_logits(model: nn.Module, batches: LengthBatches, split: str) -> list[torch.Tensor]:
    """Start/end logits (L, 2) of every window of the split, in the split's order, padding cut off."""
    model.eval()
    device = next(model.parameters()).device
    out: list[torch.Tensor] = [torch.empty(0)] * len(batches.lengths[split])
    for index in batches.eval_indices(split):
        ids, mask, types, _ = batches.batch(split, index)
        logits = model(ids.to(device), mask.to(device), types.to(device))[0].float().cpu()  # (B, L, 2)
        for row, w in enumerate(index.tolist()):
            out[w] = logits[row, : int(batches.lengths[split][w])]
    return out


def decode_answers(
    logits: list[torch.Tensor],
    windows: Windows,
    examples: list[QAExample],
    cfg: Config,
    first_only: bool = False,
) -> list[str]:
    """Each example's best span over its windows (or its first window only), as text of its context.

    Windows are compared by span score minus the window's [CLS] score: a window trained to point at [CLS]
    when the answer lies elsewhere says so, and its best span counts for less."""
    best: dict[int, tuple[float, int, int]] = {}
    for w, window in enumerate(logits):
        if first_only and not windows.first[w]:
            continue
        start, end = window[:, 0].tolist(), window[:, 1].tolist()
        spans = best_spans(start, end, windows.offsets[w], cfg.n_best, cfg.max_answer_tokens)
        k = windows.example[w]
        if spans:
            candidate = (spans[0][0] - start[0] - end[0], *spans[0][1:])  # score relative to [CLS]'s
            best[k] = max(best.get(k, candidate), candidate)
    return [examples[k].context[best[k][1] : best[k][2]] if k in best else "" for k in range(len(examples))]


def fine_tune(data: QAData, cfg: Config, ctx) -> dict:
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, cfg.model)
    if not tokenizer.is_fast:
        raise DlpError(f"{cfg.model}: windows need a fast tokenizer (offset mapping); this one is slow")
    windows = {name: make_windows(getattr(data, name), tokenizer, cfg) for name in ("train", "val", "test")}
    tensors, lengths = {n: w.tensors for n, w in windows.items()}, {n: w.lengths for n, w in windows.items()}
    batches = LengthBatches(tensors, lengths, cfg.eval_batch_size)
    hf_model = load_pretrained(AutoModelForQuestionAnswering, cfg.model)
    model = SpanExtractor(hf_model, "token_type_ids" in tokenizer.model_input_names)
    result = fit(model, batches, cfg, ctx)
    test, logits = windows["test"], window_logits(model, batches, "test")
    return {
        "model": model,
        "history": result.history,
        "seconds": result.seconds,
        "answers": decode_answers(logits, test, data.test, cfg),
        "first_window": decode_answers(logits, test, data.test, cfg, first_only=True),
        "windows": test,
        "logits": logits,
        "params": sum(p.numel() for p in model.parameters()),
        "train_windows": len(windows["train"].example),
    }


def question_word(question: str) -> str:
    words = question.lower().split()
    return next((w for w in words[:3] if w in QUESTION_WORDS), "other")


def logits_figure(logits: torch.Tensor, windows: Windows, example: QAExample) -> plt.Figure:
    """Start and end logits (L, 2) over the first window of `example`, its answer's tokens marked."""
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(logits[:, 0], label="start logit")
    ax.plot(logits[:, 1], label="end logit")
    start, end = windows.tensors[3][0].tolist()
    if end:
        ax.axvspan(start - 0.5, end + 0.5, color="green", alpha=0.2, label=f"answer: {example.answers[0]!r}")
    context = [i for i, o in enumerate(windows.offsets[0]) if o is not None]
    ax.axvline(context[0] - 0.5, color="grey", ls=":", lw=1, label="context starts")
    ax.set_xlabel("token position in the window")
    ax.set_title(example.question, fontsize=9)
    ax.legend(fontsize=7)
    return fig


def bar_figure(values: dict[str, float], ylabel: str, title: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(list(values), list(values.values()), color="tab:blue")
    ax.set(ylabel=ylabel, title=title)
    return fig


def take(data: QAData, cfg: Config) -> QAData:
    """The first n_train / n_eval questions of each split (0: all of them)."""
    n = {"train": cfg.n_train, "val": cfg.n_eval, "test": cfg.n_eval}
    return replace(data, **{split: getattr(data, split)[: n[split] or None] for split in n})


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    data = take(load_qa(ctx.data, ctx.data_dir, cfg.n_generated, cfg.people), cfg)
    ctx.record_data(data.describe())
    tuned = fine_tune(data, cfg, ctx)
    references = {e.id: list(e.answers) for e in data.test}
    scores = squad_scores({e.id: a for e, a in zip(data.test, tuned["answers"])}, references)
    first = squad_scores({e.id: a for e, a in zip(data.test, tuned["first_window"])}, references)
    kind_of = [failure_kind(a, list(e.answers)) for e, a in zip(data.test, tuned["answers"])]
    kinds = Counter(kind_of)
    by_word: dict[str, list[float]] = {}
    for e, a in zip(data.test, tuned["answers"]):
        by_word.setdefault(question_word(e.question), []).append(best_over(f1_score, a, e.answers))
    n_long = sum(1 for n in Counter(tuned["windows"].example).values() if n > 1)  # multi-window contexts

    ctx.loss_figure(tuned["history"], ylabel="start + end cross-entropy / 2 (nats/window)")
    first_logits = logits_figure(tuned["logits"][0], tuned["windows"], data.test[0])
    ctx.figure("logits", first_logits, "Start and end logits")
    failures = {k: float(kinds[k]) for k in FAILURE_KINDS}
    ctx.figure("failures", bar_figure(failures, "test questions", "Answers by kind"), "Answers by kind")
    word_f1 = {w: sum(v) / len(v) for w, v in sorted(by_word.items())}
    word_figure = bar_figure(word_f1, "F1", "Test F1 by question word")
    ctx.figure("f1_by_question_word", word_figure, "F1 by question word")
    ctx.section("Test scores (SQuAD v1.1 metric)", scores_table(scores, first, n_long, len(data.test)))
    shares = [(k, kinds[k], f"{kinds[k] / len(data.test):.1%}") for k in FAILURE_KINDS]
    ctx.section("Answers by kind", markdown_table(("kind", "questions", "share"), shares))
    ctx.section("Wrong answers (first five)", examples_table(data.test, tuned["answers"], kind_of))
    metrics = {
        "test_exact_match": scores["exact_match"],
        "test_f1": scores["f1"],
        "first_window_exact_match": first["exact_match"],
        "first_window_f1": first["f1"],
        "multi_window_questions": float(n_long),
        "windows_per_question": len(tuned["windows"].example) / max(1, len(data.test)),
        "train_windows": float(tuned["train_windows"]),
        "train_seconds": tuned["seconds"],
        "params": float(tuned["params"]),
    }
    metrics |= {f"answers_{k.replace(' ', '_')}": v for k, v in failures.items()}
    metrics |= {f"f1_{w}": v for w, v in word_f1.items()}
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def scores_table(scores: dict, first: dict, n_long: int, n: int) -> str:
    rows = [
        ("every window (stride)", f"{scores['exact_match']:.3f}", f"**{scores['f1']:.3f}**"),
        ("first window only", f"{first['exact_match']:.3f}", f"{first['f1']:.3f}"),
    ]
    note = f"{n_long} of {n} test questions have a context longer than one window."
    return markdown_table(("decoding", "exact match", "F1"), rows) + "\n\n" + note


def examples_table(examples: list[QAExample], answers: list[str], kinds: list[str]) -> str:
    wrong = [(e, a, k) for e, a, k in zip(examples, answers, kinds) if k != "exact"][:5]
    rows = [
        tuple(c.replace("|", "/").replace("\n", " ") for c in (e.question, e.answers[0], a or "—", k))
        for e, a, k in wrong
    ]
    return markdown_table(("question", "reference", "predicted", "kind"), rows)
