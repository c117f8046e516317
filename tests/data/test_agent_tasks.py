"""Lab n12's tools and tasks: calls are validated JSON, never evaluated; every generated task's calls
lead to its answer; only the lines a model writes are learned."""

from __future__ import annotations

import datetime as dt
import random

import pytest

from dlpractice.data.agent_tasks import (
    FAMILIES,
    ToolError,
    Tools,
    calculate,
    corpus_phrases,
    make_tasks,
    transcript,
    validated_call,
)

PHRASES = [("the quick brown fox", "doc-a"), ("lazy dogs sleep all day", "doc-b")]


def tools() -> Tools:
    return Tools(lookup=dict(PHRASES).get)


@pytest.mark.parametrize(
    "expression", ["__import__('os').system('true')", "2 ** 100000", "open('x')", "x + 1", "1.5 * 2", "1 +"]
)
def test_the_calculator_refuses_anything_but_integer_arithmetic(expression):
    with pytest.raises(ToolError):
        calculate(expression)


def test_the_calculator_agrees_with_python_on_integer_arithmetic():
    rng = random.Random(0)
    for _ in range(200):
        a, b, c = rng.randrange(-999, 999), rng.randrange(1, 99), rng.randrange(-50, 50)
        for expression in (f"{a} * {b} - {c}", f"({a} + {c}) // {b}", f"-{b} * ({a} - {c})"):
            assert calculate(expression) == eval(expression)  # the reference: Python itself, on our own input


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"tool": "shell", "args": {}}', "unknown tool"),
        ('{"tool": "date_add", "args": {"date": "2024-01-01", "days": "3"}}', "days: int"),
        ('{"tool": "weekday", "args": {"date": "2024-01-01", "extra": 1}}', "weekday takes date: str"),
        ('{"tool": "weekday"}', '{"tool": NAME, "args"'),
        ("CALL weekday", "not JSON"),
    ],
)
def test_calls_are_checked_against_their_signatures(line, message):
    with pytest.raises(ToolError, match=message):
        validated_call(line)


def test_every_task_is_solved_by_its_own_calls_and_dates_agree_with_datetime():
    for task in make_tasks(300, seed=1, phrases=PHRASES):
        results = [tools().run(call) for call in task.calls]
        assert results[-1] == task.answer, task
    start = dt.date(2024, 1, 5)
    assert tools().run('{"tool":"date_add","args":{"date":"2024-01-05","days":30}}') == str(
        start + dt.timedelta(30)
    )
    assert tools().run('{"tool":"weekday","args":{"date":"2024-01-05"}}') == start.strftime("%A")


def test_tasks_are_seeded_and_cover_every_family():
    first, again = make_tasks(50, 3, PHRASES), make_tasks(50, 3, PHRASES)
    assert [t.text for t in first] == [t.text for t in again]
    assert {t.family for t in first} == set(FAMILIES)
    assert [t.text for t in make_tasks(50, 4, PHRASES)] != [t.text for t in first]


def test_transcripts_with_and_without_tools():
    task = make_tasks(4, 0, PHRASES)[3]  # weekday_after: two calls
    assert task.family == "weekday_after"
    lines = transcript(task, tools()).splitlines()
    assert [line.split(":")[0] for line in lines] == ["TASK", "CALL", "RESULT", "CALL", "RESULT", "ANSWER"]
    assert transcript(task, None).splitlines() == [f"TASK: {task.text}", f"ANSWER: {task.answer}"]


def test_a_quoted_phrase_comes_from_exactly_one_document():
    texts = ["alpha beta gamma delta epsilon", "alpha beta gamma zeta", "other words only here"]
    phrases = corpus_phrases(["one", "two", "three"], texts, n_words=3, per_document=5, seed=0)
    assert ("alpha beta gamma", "one") not in phrases and ("alpha beta gamma", "two") not in phrases
    assert ("beta gamma delta", "one") in phrases and ("beta gamma zeta", "two") in phrases
    assert ("other words only", "three") in phrases
