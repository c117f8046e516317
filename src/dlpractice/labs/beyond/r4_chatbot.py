"""R4 · A chatbot: a recurrent encoder-decoder with attention that answers from the last turns.

n5's GRU encoder-decoder (Bahdanau or Luong attention, models/rnn_seq2seq.py) reads the context (the last
`context_turns` utterances joined by <sep>) and writes the assistant's reply. Embedded data: generated
multi-turn dialogues with the assistant of a small café (data/dialogue.py), whose replies must state the
right opening hours, prices, availability and booking details: the answer accuracy is exact, on held-out
dialogues whose bookings combine day, party size and time in ways no training dialogue does. Real data:
the Cornell Movie-Dialogs corpus, or the 1,100 Alpaca-format instruction records as single turns (`corpus`).
The baseline retrieves the reply of the nearest training context (TF-IDF cosine). The trained model is
decoded greedily, by beam search with and without length normalisation, and by top-k and nucleus
sampling, each with a guard against repeated n-grams (models/chatbot.py); every decoding is scored by
answer accuracy, ROUGE-L against the reference reply, distinct-1/2 and reply length; perplexity is
teacher-forced. The first model is also trained on the user's last turn alone (`context_ablation`), which
shows what the earlier turns are worth, intent by intent. Simplified: no persona or memory beyond the
context window, no dropout, word-level vocab.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import torch

from dlpractice.config import (
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    Probability,
    UnitInterval,
)
from dlpractice.data.dialogue import (
    DialoguePairs,
    Turn,
    Vocab,
    answer_correct,
    context_ids,
    load_conversations,
)
from dlpractice.data.seq2seq import BOS, EOS, collate
from dlpractice.metrics.dialogue import accuracy_by_intent, reply_scores
from dlpractice.models.chatbot import (
    Decoding,
    RetrievalBot,
    attention_map,
    beam_replies,
    perplexity,
    replies,
    reply_confidence,
)
from dlpractice.models.rnn_seq2seq import Seq2SeqRNN
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.registry import lab
from dlpractice.report import failures_table, markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "r4",
    requires=("n5",),
    data=("generated", "cornell", "instruction-data"),
    metric="answer_accuracy",
    goal="max",
)
SCORES = ("answer_accuracy", "rouge_l", "distinct_1", "distinct_2", "mean_words")


@dataclass
class Config(FitConfig):
    corpus: Literal["cornell", "instructions"] = "cornell"  # the real data: movie lines or instructions
    attentions: tuple[Literal["bahdanau", "luong"], ...] = ("bahdanau", "luong")  # each a GRU model
    n_embd: PositiveInt = 64
    n_hidden: PositiveInt = 128
    tf_start: UnitInterval = 1.0  # teacher-forcing probability at step 0 ...
    tf_end: UnitInterval = 0.8  # ... falling linearly to this at the last step
    n_train: PositiveInt = 4000  # embedded: generated training dialogues
    n_eval: PositiveInt = 200  # embedded: validation and test dialogues each
    context_turns: PositiveInt = 3  # utterances the model sees: user, assistant, user
    max_len: PositiveInt = 30  # words kept of each utterance
    min_count: PositiveInt = 1  # rarer training words become <unk>
    max_vocab: PositiveInt = 8000
    max_reply: PositiveInt = 32  # decoding steps
    n_decode: PositiveInt = 2000  # test replies decoded by every method
    beam_size: PositiveInt = 4
    alpha: NonNegativeFloat = 1.0  # length normalisation: log-probability / length ** alpha
    temperature: PositiveFloat = 1.0
    top_k: PositiveInt = 10
    top_p: Probability = 0.9
    no_repeat: NonNegativeInt = 3  # no n-gram twice in a reply (0: no guard)
    context_ablation: bool = True  # also train the first model on the user's last turn alone
    n_shown: PositiveInt = 4  # good and bad example conversations in the report
    n_failures: NonNegativeInt = 10


PRESETS = {
    "smoke": {
        "attentions": ("bahdanau",),
        "n_embd": 16,
        "n_hidden": 32,
        "n_train": 100,
        "n_eval": 10,
        "max_reply": 12,
        "n_decode": 40,
        "beam_size": 2,
        "steps": 30,
        "batch_size": 32,
        "lr": 3e-3,
        "eval_every": 15,
        "log_every": 5,
        "n_shown": 2,
    },
    "quick": {"n_train": 2000, "n_eval": 100, "steps": 400, "batch_size": 64, "lr": 3e-3, "eval_every": 200},
    "full": {  # two models and seven decodings in about a quarter of an hour on one CPU thread
        "steps": 800,
        "batch_size": 64,
        "lr": 3e-3,
        "warmup_steps": 50,
        "min_lr_ratio": 0.05,
        "eval_every": 200,
        "log_every": 25,
    },
}


def decodings(cfg: Config) -> list[Decoding]:
    k, a, t = cfg.beam_size, cfg.alpha, cfg.temperature
    return [
        Decoding("greedy"),
        Decoding(f"beam {k}, alpha 0", beam=k),
        Decoding(f"beam {k}, alpha {a:g}", beam=k, alpha=a),
        Decoding(f"top-k {cfg.top_k}, T {t:g}", temperature=t, top_k=cfg.top_k),
        Decoding(f"top-p {cfg.top_p:g}, T {t:g}", temperature=t, top_p=cfg.top_p),
    ]


def score(texts: list[str], turns: list[Turn], seconds: float) -> dict[str, float]:
    return reply_scores(texts, [t.target for t in turns], [t.slots for t in turns]) | {"seconds": seconds}


def decode_all(
    model, data: DialoguePairs, turns: list[Turn], how: Decoding, cfg: Config, guard: bool, seed: int
):
    started = time.perf_counter()
    ids = replies(model, turns, how, cfg.max_reply, cfg.no_repeat if guard else 0, seed)
    texts = [data.vocab.decode(r) for r in ids]
    return ids, texts, score(texts, turns, time.perf_counter() - started)


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    talks = load_conversations(ctx.data, ctx.data_dir, cfg.corpus, cfg.n_train, cfg.n_eval)
    data = DialoguePairs(talks, cfg.context_turns, cfg.max_len, cfg.min_count, cfg.max_vocab)
    ctx.record_data(data.describe())
    (ctx.run_dir / "vocab.json").write_text(json.dumps(data.vocab.words))
    turns = data.splits["test"][: cfg.n_decode]
    rows: dict[str, dict[str, float]] = {}
    texts: dict[str, list[str]] = {}
    ids: dict[str, list[list[int]]] = {}
    started = time.perf_counter()
    bot = RetrievalBot([t.source for t in data.splits["train"]], [t.target for t in data.splits["train"]])
    texts["retrieval"] = bot.reply([t.source for t in turns])
    rows["retrieval (TF-IDF)"] = score(texts["retrieval"], turns, time.perf_counter() - started)
    models, histories, ppl = {}, {}, {}
    for i, attention in enumerate(cfg.attentions):
        torch.manual_seed(ctx.seed)
        model = Seq2SeqRNN("gru", attention, cfg, vocab=len(data.vocab.words), steps=cfg.steps)
        result = fit(model, data, cfg, ctx if i == 0 else ctx.child(attention))
        models[attention], histories[attention] = model, result.history
        ppl[attention] = perplexity(model, data.eval_batches("test"))
        methods = decodings(cfg) if i == 0 else decodings(cfg)[:1]
        for how in methods:
            name = f"{attention}: {how.name}"
            ids[name], texts[name], rows[name] = decode_all(model, data, turns, how, cfg, True, ctx.seed)
        if i == 0:
            name = f"{attention}: greedy, no guard"
            _, texts[name], rows[name] = decode_all(
                model, data, turns, Decoding("greedy"), cfg, False, ctx.seed
            )
    first = cfg.attentions[0]
    if cfg.context_ablation and cfg.context_turns > 1:  # what the earlier turns are worth
        alone = DialoguePairs(talks, 1, cfg.max_len, cfg.min_count, cfg.max_vocab)
        torch.manual_seed(ctx.seed)
        model = Seq2SeqRNN("gru", first, cfg, vocab=len(alone.vocab.words), steps=cfg.steps)
        histories[f"{first}, last turn only"] = fit(model, alone, cfg, ctx.child("last-turn-only")).history
        name, alone_turns = f"{first}, last turn only: greedy", alone.splits["test"][: cfg.n_decode]
        _, texts[name], rows[name] = decode_all(
            model, alone, alone_turns, Decoding("greedy"), cfg, True, ctx.seed
        )
    report(rows, texts, ids[f"{first}: greedy"], turns, data, models[first], histories, ppl, cfg, ctx)
    metrics = {f"{key(name)}_{k}": v for name, row in rows.items() for k, v in row.items() if v == v}
    headline = rows[f"{first}: greedy"]
    metrics |= {k: v for k, v in headline.items() if k in SCORES and v == v}  # nan: no slots (real data)
    metrics |= {f"{attention}_perplexity": value for attention, value in ppl.items()}
    metrics["perplexity"] = ppl[first]
    return metrics


def key(name: str) -> str:
    """ "bahdanau: beam 4, alpha 1" -> "bahdanau_beam_4_alpha_1" (a metric name)."""
    return "_".join("".join(c if c.isalnum() or c == "." else " " for c in name).split()).replace(".", "p")


def report(rows, texts, greedy_ids, turns, data, model, histories, ppl, cfg: Config, ctx: RunContext) -> None:
    for name, history in histories.items():
        ctx.loss_figure(history, f"loss-{key(name)}", f"Loss curve ({name})")
    table = [[n, *(f"{r[s]:.3f}" for s in SCORES), f"{r['seconds']:.1f}"] for n, r in rows.items()]
    ctx.section(
        "Test replies by model and decoding", markdown_table(["model: decoding", *SCORES, "s"], table)
    )
    ppl_rows = [[name, f"{value:.3f}"] for name, value in ppl.items()]
    ctx.section("Perplexity (test, teacher-forced)", markdown_table(["attention", "perplexity"], ppl_rows))
    ctx.figure("decoding", decoding_figure(rows), "Scores by decoding method")
    first = f"{cfg.attentions[0]}: greedy"
    greedy = texts[first]
    right = [answer_correct(g, t.slots) if t.slots else None for g, t in zip(greedy, turns)]
    if any(t.slots for t in turns):
        intents, slots = [t.task for t in turns], [t.slots for t in turns]
        by_intent = {n: accuracy_by_intent(texts[n], intents, slots) for n in texts if n.endswith("greedy")}
        by_intent["retrieval"] = accuracy_by_intent(texts["retrieval"], intents, slots)
        table = [[i, *(f"{a[i]:.1%}" for a in by_intent.values())] for i in by_intent[first]]
        ctx.section("Answer accuracy by intent", markdown_table(["intent", *by_intent], table))
    intents = {turns[i].task: i for i, r in reversed(list(enumerate(right))) if r}  # one right reply each
    shown = [(i, first) for i in sorted(intents.values())][: cfg.n_shown]  # then wrong ones, retrieval's last
    shown += [
        (i, n)
        for n in [*list(texts)[1:], "retrieval"]
        for i, t in enumerate(turns)
        if t.slots and not answer_correct(texts[n][i], t.slots)
    ][: cfg.n_shown]
    if not any(t.slots for t in turns):  # real data: no slots, show the first ones
        shown = [(i, first) for i in range(min(len(turns), 2 * cfg.n_shown))]
    body = [[cell(turns[i].source), cell(turns[i].target), cell(texts[n][i]), n] for i, n in shown]
    ctx.section(
        "Example conversations (right, then wrong)",
        markdown_table(["context", "reference", "reply", "model: decoding"], body),
    )
    focus = next((i for i, t in enumerate(turns) if t.task == "book_confirm"), 0)
    reply = greedy_ids[focus]
    weights = attention_map(model, turns[focus], reply)
    ctx.figure(
        "attention",
        attention_figure(weights, turns[focus].src, reply, data.vocab),
        "Attention over the context",
    )
    wrong = [i for i, r in enumerate(right) if r is False]
    sure = reply_confidence(model, [turns[i] for i in wrong], [greedy_ids[i] for i in wrong])
    mistakes = [
        {
            "input": turns[i].source,
            "label": turns[i].target,
            "prediction": greedy[i],
            "confidence": round(p, 4),
        }
        for i, p in zip(wrong, sure)
    ]
    mistakes.sort(key=lambda m: -m["confidence"])
    ctx.save_json(FAILURES, mistakes)
    ctx.section(
        "Wrong answers (greedy)",
        failures_table(mistakes, ["context", "reference", "reply", "p"], cfg.n_failures),
    )


def cell(text: str) -> str:
    return text.replace("|", "\\|")[:120]


def decoding_figure(rows: dict[str, dict[str, float]]) -> plt.Figure:
    names = list(rows)
    fig, ax = plt.subplots(figsize=(10, 3.6))
    for j, s in enumerate(("answer_accuracy", "rouge_l", "distinct_2")):
        values = [rows[n][s] if rows[n][s] == rows[n][s] else 0.0 for n in names]
        bars = ax.bar([i + (j - 1) * 0.27 for i in range(len(names))], values, 0.27, label=s)
        ax.bar_label(bars, fmt="%.2f", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=7)
    ax.legend(fontsize=8)
    ax.set_title("test replies: answer accuracy, ROUGE-L and distinct-2 by decoding")
    fig.tight_layout()
    return fig


def attention_figure(weights, src: list[int], reply: list[int], vocab: Vocab) -> plt.Figure:
    """weights (reply + 1, context): which context words each reply word attends to."""
    fig, ax = plt.subplots(figsize=(max(6, 0.3 * len(src)), max(3, 0.3 * (len(reply) + 1))))
    ax.imshow(weights, cmap="viridis", aspect="auto")
    ax.set_xticks(range(len(src)), [vocab.words[i] for i in src], rotation=90, fontsize=7)
    ax.set_yticks(range(len(reply) + 1), [*(vocab.words[i] for i in reply), "</s>"], fontsize=7)
    ax.set(xlabel="context", ylabel="reply")
    fig.tight_layout()
    return fig


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the first model replies by beam search (with the run's alpha and guard); earlier
    turns may come first in the text, separated by "|"."""
    vocab = Vocab(read_run_json(run_dir, "vocab.json"))
    blank = Seq2SeqRNN("gru", cfg.attentions[0], cfg, vocab=len(vocab.words), steps=cfg.steps)
    model = load_run_model(run_dir, blank)

    def predict(batch: list[dict]) -> list[dict]:
        histories = [[u.strip() for u in item["text"].split("|")] for item in batch]
        examples = [
            Turn("", "", "", context_ids(vocab, h, cfg.context_turns, cfg.max_len), [BOS, EOS])
            for h in histories
        ]
        src, src_len, _, _ = collate(examples)
        ids = beam_replies(model, src, src_len, cfg.max_reply, cfg.beam_size, cfg.alpha, cfg.no_repeat)
        return [{"text": vocab.decode(row[1:])} for row in ids.tolist()]

    return Predictor(predict)


SERVING = ServingSpec(
    input="text",
    output="text",
    load=serve,
    examples=(
        "when are you open on friday?",
        "how much is a large latte? | a large latte is 4.00. | and a small one?",
    ),
    max_chars=500,
)
