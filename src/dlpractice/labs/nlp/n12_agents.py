"""N12 · Agents: a tool-using loop, a small model taught to call tools, routing by confidence, verification.

The world (data/agent_tasks.py) poses generated tasks with known answers: arithmetic, date arithmetic,
weekdays (also two steps: "the weekday 30 days after ..."), and which document of n11's corpus says a
quoted phrase. Its tools take JSON calls, validated against their signatures and never passed to `eval`.
Two character-level GPTs (models/gpt.py; a small and a large one) learn from solved transcripts both to
answer directly and to write tool calls, with the loss on the lines they write (CALL, ANSWER) only.
The agent loop then runs each held-out task: the model writes a line; a CALL is run and its RESULT
appended; an ANSWER ends the task; `max_steps` calls at most. Compared on the same tasks:
- direct: the model answers at once (what a language model without tools does);
- tools: the loop above;
- tools + verification: the answer stands only if every call succeeded, its numbers and quotes come from
  the task or an earlier result, and the answer is the last result; else the agent abstains;
- routing: the small model first; when its least confident character falls under `route_threshold`, the
  large model answers instead.
Success, wrong answers (the harm: a confident, wrong answer), abstentions, calls and generated characters.
Simplified: one fixed output format, greedy decoding, no KV cache, tasks of five kinds.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, UnitInterval
from dlpractice.data.agent_tasks import (
    CHARS,
    FAMILIES,
    Task,
    ToolError,
    Tools,
    corpus_phrases,
    make_tasks,
    transcript,
)
from dlpractice.data.batching import LengthBatches
from dlpractice.data.docs_corpus import load_documents
from dlpractice.metrics.retrieval import BM25, bm25_tokens
from dlpractice.models.gpt import GPT, GPTConfig
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n12", requires=("n11", "l8"), data=("generated", "docs"), metric="verified_success", goal="max")
INDEX = {c: i for i, c in enumerate(CHARS)}
IGNORE = -100  # cross_entropy's ignore_index: positions the world writes (TASK, RESULT) and padding


@dataclass
class Config(FitConfig):
    steps: PositiveInt = 1000
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 3e-3
    warmup_steps: NonNegativeInt = 100
    eval_every: PositiveInt = 250
    log_every: PositiveInt = 50
    n_layer: PositiveInt = 3  # the large model
    n_embd: PositiveInt = 64
    small_layer: PositiveInt = 1  # the small model
    small_embd: PositiveInt = 32
    train_tasks: PositiveInt = 12000  # each gives two transcripts: with tools and direct
    val_tasks: PositiveInt = 300
    test_tasks: PositiveInt = 60
    phrase_words: PositiveInt = 6  # words a lookup task quotes (BM25 finds 6-word quotes' source ~88 %)
    phrases_per_document: PositiveInt = 20
    max_steps: PositiveInt = 4  # tool calls an agent may make on one task
    route_threshold: UnitInterval = 0.5


PRESETS = {
    "smoke": {
        "steps": 30,
        "eval_every": 30,
        "log_every": 10,
        "train_tasks": 200,
        "val_tasks": 20,
        "test_tasks": 5,
        "n_layer": 1,
        "n_embd": 32,
        "small_layer": 1,
        "small_embd": 16,
        "warmup_steps": 0,
        "max_steps": 2,
    },
    "quick": {"train_tasks": 6000, "test_tasks": 60},
    "full": {"steps": 2500, "train_tasks": 20000, "test_tasks": 200, "eval_every": 500},
}


def encode(text: str) -> list[int]:
    return [INDEX[c] for c in text]


def model_written(text: str) -> np.ndarray:
    """1 for each character of a line the model writes (CALL or ANSWER, with its newline), else 0."""
    mask = np.zeros(len(text), dtype=bool)
    start = 0
    for line in text.splitlines(keepends=True):
        mask[start : start + len(line)] = line.startswith(("CALL: ", "ANSWER: "))
        start += len(line)
    return mask


def transcript_rows(tasks: list[Task], tools: Tools) -> tuple[torch.Tensor, ...]:
    """Inputs (N, T), targets (N, T) and lengths (N,) of every task's tool and direct transcripts, T the
    longest less one (LengthBatches cuts each batch to its own longest); targets of characters the model
    does not write are IGNORE."""
    texts = [transcript(t, mode) for t in tasks for mode in (tools, None)]
    width = max(map(len, texts)) - 1
    x = torch.zeros(len(texts), width, dtype=torch.long)
    y = torch.full((len(texts), width), IGNORE, dtype=torch.long)
    for i, text in enumerate(texts):
        ids, learn = torch.tensor(encode(text)), torch.from_numpy(model_written(text))
        x[i, : len(text) - 1] = ids[:-1]
        y[i, : len(text) - 1] = ids[1:].masked_fill(~learn[1:], IGNORE)
    return x, y, torch.tensor([len(text) - 1 for text in texts])


def context_length(splits: dict[str, list[Task]], tools: Tools) -> int:
    """Characters of context the models need: the longest transcript, and room for a longer answer."""
    return max(len(transcript(t, tools)) for tasks in splits.values() for t in tasks) + 32


def corpus_lookup(cfg: Config, seed: int) -> tuple[Tools, dict[str, list[tuple[str, str]]], str]:
    """The tools, with `lookup` as BM25 over the documents of n11's corpus; the phrases lookup tasks quote
    (train and held-out phrases apart, so no test quote was seen in training); where the corpus came from."""
    docs, origin = load_documents()
    index = BM25([bm25_tokens(d.text) for d in docs])

    def lookup(query: str) -> str:
        return docs[int(np.argmax(index.scores(bm25_tokens(query))))].name

    names, texts = [d.name for d in docs], [d.text for d in docs]
    phrases = corpus_phrases(names, texts, cfg.phrase_words, cfg.phrases_per_document, seed)
    random.Random(seed).shuffle(phrases)
    held_out = len(phrases) // 5
    return Tools(lookup), {"train": phrases[held_out:], "held_out": phrases[:held_out]}, origin


# ---- the agent ------------------------------------------------------------------------------------------


@dataclass
class Episode:
    answer: str | None = None  # None: no ANSWER line within the step limit
    calls: list[str] = field(default_factory=list)
    results: list[str] = field(default_factory=list)
    characters: int = 0  # generated by the model
    confidence: float = 1.0  # the lowest probability of any character it chose


@torch.no_grad()
def next_line(model: GPT, ids: list[int], episode: Episode, limit: int = 100) -> str:
    """The model's greedy line (up to a newline), appended to ids; counted in the episode."""
    line = []
    for _ in range(limit):
        logits, _ = model(torch.tensor([ids[-model.block_size :]]))  # (1, T, V)
        probs = F.softmax(logits[0, -1].float(), dim=-1)
        choice = int(probs.argmax())
        ids.append(choice)
        episode.characters += 1
        episode.confidence = min(episode.confidence, float(probs[choice]))
        if CHARS[choice] == "\n":
            break
        line.append(CHARS[choice])
    return "".join(line)


def agent_step(line: str, tools: Tools, episode: Episode) -> str | None:
    """One line the model wrote: an ANSWER ends the episode (returns None); a CALL is run and the RESULT
    line to append is returned (an error is a result too: the model may try again)."""
    # BEGIN EXERCISE n12.1: record an ANSWER; run a CALL with tools.run, catching ToolError as "error: ..."
    if line.startswith("ANSWER: "):
        episode.answer = line.removeprefix("ANSWER: ").strip()
        return None
    if not line.startswith("CALL: "):
        return "RESULT: error: write CALL: {json} or ANSWER: text"
    call = line.removeprefix("CALL: ")
    try:
        result = tools.run(call)
    except ToolError as err:
        result = f"error: {err}"
    episode.calls.append(call)
    episode.results.append(result)
    return f"RESULT: {result}"
    # END EXERCISE


def solve(model: GPT, task: Task, tools: Tools, use_tools: bool, max_steps: int) -> Episode:
    """Run one task: the first line is forced to start as a CALL (tools) or an ANSWER (direct)."""
    episode = Episode()
    first = "CALL: " if use_tools else "ANSWER: "
    ids = encode(f"TASK: {task.text}\n{first}")
    line = first + next_line(model, ids, episode)
    for _ in range(max_steps + 1):
        result = agent_step(line, tools, episode)
        if result is None or len(episode.calls) > max_steps or not use_tools:
            break
        ids += encode(result + "\n")
        line = next_line(model, ids, episode)
    return episode


def verified(task: Task, episode: Episode) -> bool:
    """Every call succeeded, took its numbers, dates and quotes from the task or an earlier result, and the
    answer is the last result."""
    seen = task.text
    for call, result in zip(episode.calls, episode.results):
        quoted = re.findall(r'"query":"([^"]*)"', call)
        if result.startswith("error:") or any(n not in seen for n in re.findall(r"\d[\d-]*", call)):
            return False
        if any(q not in seen for q in quoted):
            return False
        seen += f" {result}"
    return bool(episode.results) and episode.answer == episode.results[-1]


def score(tasks: list[Task], episodes: list[Episode], verify: bool) -> dict[str, float]:
    answers = [e.answer if not verify or verified(t, e) else None for t, e in zip(tasks, episodes)]
    n = len(tasks)
    return {
        "success": sum(a == t.answer for a, t in zip(answers, tasks)) / n,
        "wrong": sum(a is not None and a != t.answer for a, t in zip(answers, tasks)) / n,
        "abstain": sum(a is None for a in answers) / n,
        "calls": float(np.mean([len(e.calls) for e in episodes])),
        "characters": float(np.mean([e.characters for e in episodes])),
    }


def routed(small: list[Episode], large: list[Episode], threshold: float) -> tuple[list[Episode], float]:
    """The small model's episode unless its confidence fell under the threshold; the share handed over."""
    handed = [s.confidence < threshold for s in small]
    chosen = [
        replace(lg, characters=s.characters + lg.characters) if h else s
        for s, lg, h in zip(small, large, handed)
    ]
    return chosen, float(np.mean(handed))


# ---- training and the study -----------------------------------------------------------------------------


def train_model(
    name: str, shape: tuple[int, int, int], data: LengthBatches, cfg: Config, ctx: RunContext
) -> GPT:
    """A GPT of (layers, width, context) trained on the transcripts in its own child run."""
    torch.manual_seed(ctx.seed)
    layers, width, block = shape
    size = GPTConfig(vocab_size=len(CHARS), block_size=block, n_layer=layers, n_head=4, n_embd=width)
    model = GPT(size)
    child = ctx.child(name)
    result = fit(model, data, cfg, child)
    ctx.loss_figure(result.history, name=f"loss_{name}", title=f"Loss of the {name} model (written lines)")
    return model.eval()


def outcome_figure(rows: dict[str, dict[str, float]]) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 3.8))
    names = list(rows)
    left = np.zeros(len(names))
    for part, color in (("success", "C2"), ("wrong", "C3"), ("abstain", "0.7")):
        values = np.array([rows[n][part] for n in names])
        ax.barh(names, values, left=left, color=color, label=part)
        left += values
    ax.invert_yaxis()
    ax.set(xlabel="share of held-out tasks", xlim=(0, 1), title="What each agent does with the same tasks")
    ax.legend(loc="lower right", fontsize=8)
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    tools, phrases, origin = corpus_lookup(cfg, ctx.seed)
    splits = {
        split: make_tasks(n, ctx.seed + offset, phrases["train" if split == "train" else "held_out"])
        for split, n, offset in (
            ("train", cfg.train_tasks, 0),
            ("val", cfg.val_tasks, 1),
            ("test", cfg.test_tasks, 2),
        )
    }
    ctx.record_data({"data_source": "embedded", "data_origin": f"generated tasks; lookup over {origin}"})
    block = context_length(splits, tools)
    rows = {s: transcript_rows(t, tools) for s, t in splits.items() if s != "test"}
    # batches of transcripts of similar length, cut to their longest: a direct one is a fifth of a tool one
    data = LengthBatches({s: r[:2] for s, r in rows.items()}, {s: r[2] for s, r in rows.items()})
    models = {
        "large": train_model("large", (cfg.n_layer, cfg.n_embd, block), data, cfg, ctx),
        "small": train_model("small", (cfg.small_layer, cfg.small_embd, block), data, cfg, ctx),
    }
    test = splits["test"]
    episodes = {  # no KV cache: a character costs a forward pass over the whole transcript so far
        (name, use_tools): [solve(models[name], t, tools, use_tools, cfg.max_steps) for t in test]
        for name, use_tools in (("large", False), ("large", True), ("small", True))
    }
    handed_over, share = routed(episodes["small", True], episodes["large", True], cfg.route_threshold)
    rows = {
        "direct": score(test, episodes["large", False], verify=False),
        "tools": score(test, episodes["large", True], verify=False),
        "tools + verification": score(test, episodes["large", True], verify=True),
        "small, tools + verification": score(test, episodes["small", True], verify=True),
        "routed, tools + verification": score(test, handed_over, verify=True),
    }
    ctx.figure("outcomes", outcome_figure(rows), "Success, wrong answers and abstentions by agent")
    header = ["agent", "success", "wrong", "abstain", "calls", "characters"]
    table = [
        [name, *(f"{r[k]:.3f}" for k in header[1:4]), f"{r['calls']:.2f}", f"{r['characters']:.0f}"]
        for name, r in rows.items()
    ]
    ctx.section("Agents on the same held-out tasks", markdown_table(header, table))
    family_success = per_family(test, episodes["large", True])
    ctx.section(
        "Tools (large model) by kind of task",
        markdown_table(["kind", "success"], [[f, f"{s:.3f}"] for f, s in family_success.items()]),
    )
    ctx.section("Transcripts", examples(test, episodes["large", True]))
    params = {name: sum(p.numel() for p in m.parameters()) for name, m in models.items()}
    metrics = {
        f"{key}_{part}": value
        for key, row in zip(("direct", "tools", "verified", "small_verified", "routed"), rows.values())
        for part, value in row.items()
    }
    return (
        metrics
        | {f"family_{f}_success": s for f, s in family_success.items()}
        | {
            "verified_success": rows["tools + verification"]["success"],
            "routed_large_share": share,
            "large_params": float(params["large"]),
            "small_params": float(params["small"]),
        }
    )


def per_family(tasks: list[Task], episodes: list[Episode]) -> dict[str, float]:
    return {
        f: float(np.mean([e.answer == t.answer for t, e in zip(tasks, episodes) if t.family == f]))
        for f in FAMILIES
        if any(t.family == f for t in tasks)
    }


def examples(tasks: list[Task], episodes: list[Episode]) -> str:
    """One transcript of each kind of task, as the agent wrote it."""
    shown, blocks = set(), []
    for task, episode in zip(tasks, episodes):
        if task.family in shown:
            continue
        shown.add(task.family)
        lines = [f"TASK: {task.text}"]
        lines += [f"CALL: {c}\nRESULT: {r}" for c, r in zip(episode.calls, episode.results)]
        lines.append(f"ANSWER: {episode.answer}   (truth: {task.answer})")
        blocks.append("```\n" + "\n".join(lines) + "\n```")
    return "\n".join(blocks)
