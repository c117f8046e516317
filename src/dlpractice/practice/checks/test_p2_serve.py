"""Checks of lab p2: latency percentiles by nearest rank, the way a latency target reads ("p99 under
50 ms": 99 % of the requests took at most 50 ms)."""

from __future__ import annotations

import random

import pytest


@pytest.mark.exercise("p2.1")
def test_percentile_is_the_value_at_the_nearest_rank(impl) -> None:
    values = [40.0, 10.0, 30.0, 20.0]  # unsorted, as latencies arrive
    assert impl.percentile(values, 50) == 20.0, (
        "p50 of 10, 20, 30, 40 is 20: half the values are at or below it (an interpolation would say 25)"
    )
    assert impl.percentile(values, 75) == 30.0, "75 % of 4 values is 3: rank 3, counting from 1"
    assert impl.percentile(values, 76) == 40.0, "76 % of 4 values is 3.04: rank 4, counting from 1"
    assert impl.percentile(values, 100) == 40.0, "p100 is the largest value"
    assert impl.percentile(values, 0.1) == 10.0, "a tiny q is the smallest value, never an index below it"
    assert values == [40.0, 10.0, 30.0, 20.0], "the caller's list is left as it was"


@pytest.mark.exercise("p2.1")
def test_percentile_of_a_hundred_latencies(impl) -> None:
    values = [float(v) for v in range(1, 101)]
    random.Random(0).shuffle(values)
    assert impl.percentile(values, 99) == 99.0, "99 of the 100 values are at or below 99"
    assert impl.percentile(values, 50) == 50.0, "50 of the 100 values are at or below 50"
    assert impl.percentile(values, 7) == 7.0, "7 % of 100 is rank 7 (7 / 100 * 100 is 7.000000000000001)"
    assert impl.percentile([5.0], 99) == 5.0, "one value is every percentile"
