"""Checks of lab f8: random search draws each axis on its own scale."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.exercise("f8.1")
def test_sample_config_draws_each_axis_on_its_scale(impl) -> None:
    """Uniform for linear axes, log-uniform for log axes, whole numbers for int axes, all within bounds."""
    configs = [impl.sample_config(np.random.default_rng(0)) for _ in range(2)]
    assert configs[0] == configs[1], (
        "the same generator state should give the same configuration: draw from rng"
    )
    rng = np.random.default_rng(0)
    configs = [impl.sample_config(rng) for _ in range(4000)]
    assert all(set(c) == set(impl.SPACE) for c in configs), (
        "each configuration should set every axis of SPACE"
    )
    for name, (low, high, scale) in impl.SPACE.items():
        values = np.array([c[name] for c in configs], dtype=float)
        assert low <= values.min() and values.max() <= high, (
            f"{name} should stay within [{low}, {high}]; drew {values.min():.4g} to {values.max():.4g}"
        )
        middle = np.sqrt(low * high) if scale.startswith("log") else (low + high) / 2
        below = (values < middle).mean()
        assert 0.45 < below < 0.55, (
            f"{name} ({scale} scale) should fall below {middle:.4g}, the middle of its scale, "
            "half of the time; "
            f"it did {below:.0%} of the time"
            + (": draw the logarithm uniformly" if scale.startswith("log") else "")
        )
        if scale.endswith("int"):
            assert all(isinstance(c[name], int) for c in configs), f"{name} should be a Python int"
        if scale == "int":
            assert set(values.tolist()) == set(range(int(low), int(high) + 1)), (
                f"{name} should take every whole number from {low} to {high}, ends included"
            )
