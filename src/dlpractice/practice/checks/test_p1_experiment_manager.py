"""Checks of lab p1: a search's best counts as a gain only when it beats the default by more than the
seed noise (a multiple of the sample standard deviation over seeds)."""

from __future__ import annotations

import statistics

import pytest


@pytest.mark.exercise("p1.1")
def test_significant_gain_compares_the_gain_with_the_seed_noise(impl) -> None:
    seeds = [2.0, 2.1, 2.2]  # sample std (n - 1) = 0.1; the population std (n) would be 0.0816
    gain, beats = impl.significant_gain(1.7, 2.0, seeds, 2.0)
    assert gain == pytest.approx(0.3), "the gain is the default's loss minus the best loss (lower is better)"
    assert beats, "a gain of 0.3 exceeds 2 × the seed std of 0.1"
    _, beats = impl.significant_gain(1.85, 2.0, seeds, 2.0)
    assert not beats, "a gain of 0.15 is within 2 × the seed std of 0.1: noise, not a result"
    gain, beats = impl.significant_gain(2.3, 2.0, seeds, 2.0)
    assert gain == pytest.approx(-0.3) and not beats, (
        "a best loss above the default's is a loss, not a gain: keep the sign"
    )


@pytest.mark.exercise("p1.1")
def test_significant_gain_uses_the_sample_standard_deviation(impl) -> None:
    seeds = [1.0, 1.3]
    std = statistics.stdev(seeds)  # 0.212; the population std would be 0.15
    _, beats = impl.significant_gain(1.0 - 0.35, 1.0, seeds, 2.0)  # 0.35 < 2 × 0.212, but > 2 × 0.15
    assert not beats, (
        f"with two seeds the spread is the sample std (divide by n - 1): {std:.3f}; "
        "a gain of 0.35 is not more than twice that"
    )
    _, beats = impl.significant_gain(1.0 - 0.35, 1.0, seeds, 1.5)
    assert beats, "sigmas sets how many standard deviations the gain must exceed"
