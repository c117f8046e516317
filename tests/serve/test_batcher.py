"""The dynamic batcher: concurrent requests share model calls, each caller gets its own answer."""

from __future__ import annotations

import asyncio
import time

import pytest

from dlpractice.batcher import Batcher


def doubling(calls: list[list[int]], seconds: float = 0.0):
    def predict(items: list[int]) -> list[int]:
        calls.append(list(items))
        time.sleep(seconds)  # a model call's cost: requests arriving meanwhile form the next batch
        return [2 * i for i in items]

    return predict


async def submit_all(batcher: Batcher, items: list[int]) -> list[int]:
    return await asyncio.gather(*(batcher.submit(i) for i in items))


def test_concurrent_requests_become_fewer_calls_with_each_answer_routed_to_its_caller():
    calls: list[list[int]] = []
    batcher = Batcher(doubling(calls, 0.01), max_batch=16, max_wait_ms=50)
    answers = asyncio.run(submit_all(batcher, list(range(40))))
    assert answers == [2 * i for i in range(40)]
    assert len(calls) == 3 and [len(c) for c in calls] == [16, 16, 8]
    assert batcher.stats.calls == 3 and batcher.stats.items == 40 and batcher.stats.mean_batch == 40 / 3


def test_max_batch_1_is_one_call_per_request():
    calls: list[list[int]] = []
    answers = asyncio.run(submit_all(Batcher(doubling(calls), max_batch=1, max_wait_ms=50), [3, 4, 5]))
    assert answers == [6, 8, 10] and calls == [[3], [4], [5]]


def test_a_lone_request_waits_about_max_wait_not_longer():
    async def one() -> float:
        batcher = Batcher(doubling([]), max_batch=16, max_wait_ms=30)
        started = time.perf_counter()
        assert await batcher.submit(7) == 14
        return time.perf_counter() - started

    assert 0.025 <= asyncio.run(one()) < 1.0


def test_an_error_reaches_every_caller_of_its_batch_and_the_next_batch_runs():
    def predict(items: list[int]) -> list[int]:
        if 0 in items:
            raise ZeroDivisionError("zero")
        return [10 // i for i in items]

    async def scenario() -> list[object]:
        batcher = Batcher(predict, max_batch=8, max_wait_ms=20)
        first = await asyncio.gather(*(batcher.submit(i) for i in (0, 1, 2)), return_exceptions=True)
        return [*first, await batcher.submit(5)]

    *failed, after = asyncio.run(scenario())
    assert all(isinstance(e, ZeroDivisionError) for e in failed) and after == 2


def test_settings_are_checked():
    with pytest.raises(ValueError, match="max_batch"):
        Batcher(doubling([]), max_batch=0)
