"""Lab n12's world: three tools, generated tasks with known answers, and the transcripts a model learns.

Tools (called with validated JSON, never with `eval`):
    calculator {"expression": "372 * 41"}      integers, + - * // and parentheses, parsed with `ast`
    date_add   {"date": "2024-03-10", "days": 45}   the ISO date so many days later (or earlier)
    weekday    {"date": "2024-03-10"}           "Sunday"
    lookup     {"query": "words to look for"}   the document of the corpus whose passage BM25 ranks first
A transcript is lines a model writes (CALL, ANSWER) between lines the world writes (TASK, RESULT):

    TASK: What day of the week is 30 days after 2024-01-05?
    CALL: {"tool":"date_add","args":{"date":"2024-01-05","days":30}}
    RESULT: 2024-02-04
    CALL: {"tool":"weekday","args":{"date":"2024-02-04"}}
    RESULT: Sunday
    ANSWER: Sunday

A direct transcript is the TASK line and the ANSWER line alone: what a model without tools must do.
"""

from __future__ import annotations

import ast
import datetime as dt
import json
import operator
import random
import re
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

CHARS = sorted(set(string.ascii_letters + string.digits + string.punctuation + " \n"))
OPERATORS = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.FloorDiv: operator.floordiv,
}
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
FAMILIES = ("arithmetic", "date", "weekday", "weekday_after", "lookup")


class ToolError(ValueError):
    """A call the world refuses: unknown tool, wrong arguments, or a value out of range."""


def calculate(expression: str) -> int:
    """An integer expression of + - * // and parentheses; anything else (names, calls, powers) refused."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and type(node.value) is int:
            return node.value
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp) and type(node.op) in OPERATORS:
            left, right = value(node.left), value(node.right)
            if isinstance(node.op, ast.FloorDiv) and right == 0:
                raise ToolError("division by zero")
            return OPERATORS[type(node.op)](left, right)
        raise ToolError(f"not allowed in an expression: {ast.dump(node)[:40]}")

    if len(expression) > 100:
        raise ToolError("expression over 100 characters")
    try:
        return value(ast.parse(expression, mode="eval").body)
    except SyntaxError:
        raise ToolError(f"not an expression: {expression!r}") from None


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ToolError(f"not an ISO date (YYYY-MM-DD): {text!r}") from None


def date_add(date: str, days: int) -> str:
    if abs(days) > 100_000:
        raise ToolError("days out of range")
    return (parse_date(date) + dt.timedelta(days=days)).isoformat()


def weekday(date: str) -> str:
    return WEEKDAYS[parse_date(date).weekday()]


# tool -> (function, {argument: type}); a call must name exactly these arguments, with these types
SIGNATURES: dict[str, dict[str, type]] = {
    "calculator": {"expression": str},
    "date_add": {"date": str, "days": int},
    "weekday": {"date": str},
    "lookup": {"query": str},
}


@dataclass
class Tools:
    """The tools, with `lookup` over a corpus: (query) -> the name of its best document."""

    lookup: Callable[[str], str]

    def run(self, line: str) -> str:
        """Parse a CALL line's JSON, check it against SIGNATURES, run it: the RESULT line's text."""
        name, args = validated_call(line)
        if name == "calculator":
            return str(calculate(args["expression"]))
        if name == "date_add":
            return date_add(args["date"], args["days"])
        if name == "weekday":
            return weekday(args["date"])
        return self.lookup(args["query"])


def validated_call(line: str) -> tuple[str, dict[str, Any]]:
    """(tool, arguments) of a call like {"tool": "weekday", "args": {"date": "2024-01-05"}}, or ToolError."""
    try:
        call = json.loads(line)
    except json.JSONDecodeError:
        raise ToolError("the call is not JSON") from None
    if not isinstance(call, dict) or set(call) != {"tool", "args"} or not isinstance(call["args"], dict):
        raise ToolError('a call is {"tool": NAME, "args": {...}}')
    name, args = call["tool"], call["args"]
    if name not in SIGNATURES:
        raise ToolError(f"unknown tool {name!r}")
    expected = SIGNATURES[name]
    if set(args) != set(expected) or not all(type(args[k]) is t for k, t in expected.items()):
        raise ToolError(f"{name} takes {', '.join(f'{k}: {t.__name__}' for k, t in expected.items())}")
    return name, args


def call_line(tool: str, **args: Any) -> str:
    return json.dumps({"tool": tool, "args": args}, separators=(",", ":"))


@dataclass
class Task:
    family: str
    text: str
    answer: str
    calls: list[str] = field(default_factory=list)  # the CALL lines that solve it, in order


def random_date(rng: random.Random) -> str:
    return (dt.date(2000, 1, 1) + dt.timedelta(days=rng.randrange(365 * 40))).isoformat()


def make_task(family: str, rng: random.Random, phrases: list[tuple[str, str]]) -> Task:
    """One task of a family, with its answer and the calls that find it. `phrases`: (words, document)."""
    if family == "arithmetic":
        a, b, op = rng.randrange(10, 1000), rng.randrange(10, 100), rng.choice("+-*")
        expression = f"{a} {op} {b}"
        return Task(
            family,
            f"What is {expression}?",
            str(calculate(expression)),
            [call_line("calculator", expression=expression)],
        )
    date, days = random_date(rng), rng.randrange(1, 400)
    if family == "date":
        return Task(
            family,
            f"What date is {days} days after {date}?",
            date_add(date, days),
            [call_line("date_add", date=date, days=days)],
        )
    if family == "weekday":
        return Task(
            family, f"What day of the week is {date}?", weekday(date), [call_line("weekday", date=date)]
        )
    if family == "weekday_after":
        later = date_add(date, days)
        calls = [call_line("date_add", date=date, days=days), call_line("weekday", date=later)]
        return Task(family, f"What day of the week is {days} days after {date}?", weekday(later), calls)
    words, document = rng.choice(phrases)
    return Task(family, f'Which document says "{words}"?', document, [call_line("lookup", query=words)])


def make_tasks(
    n: int, seed: int, phrases: list[tuple[str, str]], families: tuple[str, ...] = FAMILIES
) -> list[Task]:
    rng = random.Random(seed)
    return [make_task(families[i % len(families)], rng, phrases) for i in range(n)]


def transcript(task: Task, tools: Tools | None) -> str:
    """The lines of a solved task: with tools (CALL and RESULT lines), or direct (tools None)."""
    lines = [f"TASK: {task.text}"]
    for call in task.calls if tools else []:
        lines += [f"CALL: {call}", f"RESULT: {tools.run(call)}"]
    return "\n".join([*lines, f"ANSWER: {task.answer}"]) + "\n"


def corpus_phrases(
    names: list[str], texts: list[str], n_words: int, per_document: int, seed: int
) -> list[tuple[str, str]]:
    """(n_words consecutive plain words, the one document that has them), up to `per_document` from each
    document: what lookup tasks quote. A phrase found in two documents has no one answer: left out."""
    rng = random.Random(seed)
    words = {
        name: [w for w in re.findall(r"[A-Za-z]+", text) if len(w) > 2] for name, text in zip(names, texts)
    }
    grams = {
        name: [" ".join(w[i : i + n_words]) for i in range(len(w) - n_words + 1)] for name, w in words.items()
    }
    documents_with = Counter(g for found in grams.values() for g in set(found))
    phrases = []
    for name, found in grams.items():
        unique = sorted({g for g in found if documents_with[g] == 1})
        if all(c in CHARS for c in name):
            phrases += [(g, name) for g in rng.sample(unique, min(per_document, len(unique)))]
    return phrases


# ---- what a model learns from: characters, and which of them it writes ----------------------------------

INDEX = {c: i for i, c in enumerate(CHARS)}
IGNORE = -100  # cross_entropy's ignore_index: positions the world writes (TASK, RESULT) and padding


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
