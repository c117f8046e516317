"""Lab n12: the agent loop runs calls and stops at an answer or the step limit; verification keeps only
answers grounded in the task and the tools; routing hands low-confidence tasks over; the smoke run."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from dlpractice.data.agent_tasks import CHARS, Task, Tools, call_line, encode, model_written, transcript_rows
from dlpractice.labs.nlp.n12_agents import (
    Episode,
    routed,
    score,
    solve,
    verified,
)
from dlpractice.runner import RunSpec, start_run


class Scripted(nn.Module):
    """A 'model' that writes a fixed text, one character per call, whatever the context: the loop's
    behaviour is then known exactly."""

    block_size = 512

    def __init__(self, text: str):
        super().__init__()
        self.text, self.at = text, 0

    def forward(self, idx: torch.Tensor, targets=None):
        logits = torch.full((1, idx.size(1), len(CHARS)), -10.0)
        logits[0, -1, CHARS.index(self.text[self.at])] = 10.0
        self.at += 1
        return logits, None


def tools() -> Tools:
    return Tools(lookup=lambda query: "doc")


WEEKDAY_AFTER = Task(
    "weekday_after",
    "What day of the week is 30 days after 2024-01-05?",
    "Sunday",
    [call_line("date_add", date="2024-01-05", days=30), call_line("weekday", date="2024-02-04")],
)


def test_the_loop_runs_each_call_and_ends_at_the_answer():
    calls = WEEKDAY_AFTER.calls
    script = f"{calls[0]}\nCALL: {calls[1]}\nANSWER: Sunday\n"
    episode = solve(Scripted(script), WEEKDAY_AFTER, tools(), use_tools=True, max_steps=4)
    assert episode.calls == calls and episode.results == ["2024-02-04", "Sunday"]
    assert episode.answer == "Sunday" and episode.characters == len(script)
    assert verified(WEEKDAY_AFTER, episode)


def test_the_step_limit_stops_an_agent_that_never_answers():
    call = WEEKDAY_AFTER.calls[1]
    episode = solve(Scripted(f"{call}\n" + f"CALL: {call}\n" * 10), WEEKDAY_AFTER, tools(), True, max_steps=2)
    assert len(episode.calls) == 3 and episode.answer is None  # the call over the limit is the last one run


def test_direct_answers_make_no_calls():
    episode = solve(Scripted("Friday\n"), WEEKDAY_AFTER, tools(), use_tools=False, max_steps=4)
    assert episode.answer == "Friday" and episode.calls == []
    assert score([WEEKDAY_AFTER], [episode], verify=False)["wrong"] == 1.0
    assert score([WEEKDAY_AFTER], [episode], verify=True)["abstain"] == 1.0  # no tool result to stand on


@pytest.mark.parametrize(
    ("calls", "results", "answer", "ok"),
    [
        (["date_add 2024-01-05 30", "weekday 2024-02-04"], ["2024-02-04", "Sunday"], "Sunday", True),
        (["date_add 2024-01-05 31", "weekday 2024-02-05"], ["2024-02-05", "Monday"], "Monday", False),  # 31
        (["date_add 2024-01-05 30"], ["2024-02-04"], "Sunday", False),  # answer is not the result
        (["weekday 2024-02-04"], ["error: not an ISO date"], "Sunday", False),
    ],
)
def test_verification_keeps_only_grounded_answers(calls, results, answer, ok):
    episode = Episode(answer=answer, calls=calls, results=results)
    assert verified(WEEKDAY_AFTER, episode) is ok


def test_a_lookup_quote_must_come_from_the_task():
    task = Task(
        "lookup",
        'Which document says "alpha beta gamma"?',
        "doc",
        [call_line("lookup", query="alpha beta gamma")],
    )
    good = Episode(answer="doc", calls=task.calls, results=["doc"])
    made_up = Episode(answer="doc", calls=[call_line("lookup", query="alpha beta delta")], results=["doc"])
    assert verified(task, good) and not verified(task, made_up)


def test_routing_hands_unsure_tasks_to_the_large_model_and_counts_both():
    small = [
        Episode(answer="a", confidence=0.9, characters=10),
        Episode(answer="b", confidence=0.2, characters=10),
    ]
    large = [Episode(answer="A", characters=30), Episode(answer="B", characters=30)]
    chosen, share = routed(small, large, threshold=0.5)
    assert [e.answer for e in chosen] == ["a", "B"] and share == 0.5
    assert [e.characters for e in chosen] == [10, 40]  # the small model's attempt was paid for too


def test_only_model_written_lines_are_learned():
    text = "TASK: t\nCALL: {}\nRESULT: 3\nANSWER: 3\n"
    mask = model_written(text)
    assert "".join(c for c, m in zip(text, mask) if m) == "CALL: {}\nANSWER: 3\n"
    x, y, lengths = transcript_rows([WEEKDAY_AFTER], tools())
    assert x.shape == y.shape == (2, int(lengths.max()))  # the tool transcript and the direct one
    assert lengths.tolist() == [
        int((y[0] >= 0).nonzero().max()) + 1,
        len(f"TASK: {WEEKDAY_AFTER.text}\nANSWER: Sunday"),
    ]
    learned = "".join(CHARS[int(t)] for t in y[1] if t >= 0)
    assert learned == "ANSWER: Sunday\n"  # the direct row: the whole ANSWER line is predicted, no more
    assert x[1, 0] == encode("T")[0] and (y[0] >= 0).sum() > 0


@pytest.mark.slow
def test_smoke_run(tmp_path, monkeypatch):
    monkeypatch.setenv("DLP_HOME", str(tmp_path))
    outcome = start_run(RunSpec("n12", "smoke", data="embedded"))
    m = outcome.metrics
    assert all(np.isfinite(v) for v in m.values())
    assert 0 <= m["verified_success"] <= 1 and m["large_params"] > m["small_params"]
    for agent in ("direct", "tools", "verified", "small_verified", "routed"):
        assert m[f"{agent}_success"] + m[f"{agent}_wrong"] + m[f"{agent}_abstain"] == pytest.approx(1)
    assert m["verified_wrong"] <= m["tools_wrong"]  # verification only ever withholds answers
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= {
        "outcomes",
        "loss_large",
        "loss_small",
    }
    assert "Agents on the same held-out tasks" in outcome.report.read_text()
    json.loads((outcome.run_dir / "run.json").read_text())
