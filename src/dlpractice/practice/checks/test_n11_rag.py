"""Checks of lab n11: reciprocal-rank fusion against the formula, computed the slow way."""

from __future__ import annotations

import random

import pytest


def fused_scores(rankings: list[list[int]], k: int) -> dict[int, float]:
    """Every item's RRF score, item by item: the sum over the rankings that hold it of 1 / (k + rank)."""
    items = {item for ranking in rankings for item in ranking}
    return {i: sum(1 / (k + r.index(i) + 1) for r in rankings if i in r) for i in items}


@pytest.mark.exercise("n11.1")
def test_reciprocal_rank_fusion(impl) -> None:
    fused = impl.reciprocal_rank_fusion([[10, 20, 30], [30, 10]], k=60)
    assert fused == [10, 30, 20], (
        f"10 is 1st and 2nd (1/61 + 1/62), 30 is 3rd and 1st (1/63 + 1/61), 20 is 2nd in one ranking only "
        f"(1/62): expected [10, 30, 20], got {fused}"
    )
    assert impl.reciprocal_rank_fusion([[1, 2], [2, 1]], k=60) == [1, 2], (
        "1 and 2 score the same (1/61 + 1/62 each): ties go to the lower id"
    )
    assert impl.reciprocal_rank_fusion([[4, 5], [6, 5]], k=1) == [5, 4, 6], (
        "with k=1, an item 2nd in both rankings (1/3 + 1/3) beats one that is 1st in one (1/2): rank counts "
        "from 1, and missing from a ranking adds nothing"
    )
    rng = random.Random(0)
    for _ in range(50):
        rankings = [rng.sample(range(30), rng.randint(0, 12)) for _ in range(rng.randint(1, 4))]
        k = rng.randint(1, 80)
        scores = fused_scores(rankings, k)
        expected = sorted(scores, key=lambda i: (-scores[i], i))
        got = impl.reciprocal_rank_fusion(rankings, k=k)
        assert list(got) == expected, f"rankings {rankings}, k={k}: expected {expected}, got {list(got)}"
