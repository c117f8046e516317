"""Checks of lab n12: one step of the agent loop (an ANSWER ends the task; a CALL is run, its RESULT
returned and recorded; a bad call is an error the model reads, never a crash)."""

from __future__ import annotations

import pytest

from dlpractice.data.agent_tasks import Tools


def tools() -> object:
    return Tools(lookup=lambda query: f"doc about {query}")


@pytest.mark.exercise("n12.1")
def test_an_answer_line_ends_the_episode(impl) -> None:
    episode = impl.Episode()
    assert impl.agent_step("ANSWER: 42", tools(), episode) is None, (
        "an ANSWER returns None: nothing to append"
    )
    assert episode.answer == "42", "the answer is the text after 'ANSWER: '"
    assert episode.calls == [] and episode.results == [], "an ANSWER is neither a call nor a result"


@pytest.mark.exercise("n12.1")
def test_a_call_is_run_and_its_result_recorded(impl) -> None:
    episode = impl.Episode()
    result = impl.agent_step('CALL: {"tool":"calculator","args":{"expression":"12 * 34"}}', tools(), episode)
    assert result == "RESULT: 408", "a CALL's JSON goes to tools.run; its answer comes back as 'RESULT: ...'"
    assert episode.calls == ['{"tool":"calculator","args":{"expression":"12 * 34"}}'], (
        "episode.calls records the call's JSON, without 'CALL: '"
    )
    assert episode.results == ["408"], "episode.results records the result, without 'RESULT: '"
    assert episode.answer is None, "a CALL does not end the episode"
    impl.agent_step('CALL: {"tool":"weekday","args":{"date":"2024-01-05"}}', tools(), episode)
    assert episode.results == ["408", "Friday"], "each call appends its result"


@pytest.mark.exercise("n12.1")
@pytest.mark.parametrize(
    "call",
    [
        '{"tool":"calculator","args":{"expression":"__import__(\'os\')"}}',  # never eval'd
        '{"tool":"weekday","args":{"day":"2024-01-05"}}',  # wrong argument
        "not json at all",
    ],
)
def test_a_bad_call_is_an_error_result_not_a_crash(impl, call: str) -> None:
    episode = impl.Episode()
    result = impl.agent_step(f"CALL: {call}", tools(), episode)
    assert result.startswith("RESULT: error: "), "a ToolError becomes 'RESULT: error: <why>' for the model"
    assert episode.results[0].startswith("error: "), "the error is recorded as the call's result"
    assert episode.answer is None, "a bad call does not end the episode"
