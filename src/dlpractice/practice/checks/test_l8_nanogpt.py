"""Checks of lab l8: sampling the next token with a temperature and top-k."""

from __future__ import annotations

import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("l8.1")
def test_top_k_samples_only_the_k_largest(impl):
    """top_k=2 draws only the two largest logits, in proportion to their softmax."""
    logits = torch.tensor([[0.0, 3.0, 1.0, 2.5, -1.0]]).repeat(400, 1)  # (B, V)
    picked = impl.sample_next(logits, 1.0, 2, torch.Generator().manual_seed(0))
    assert picked.shape == (400, 1) and picked.dtype == torch.long, (
        f"one token id per row, shape (B, 1), dtype long; got {tuple(picked.shape)} {picked.dtype}"
    )
    drawn = set(picked.flatten().tolist())
    assert drawn == {1, 3}, (
        f"with top_k=2 only ids 1 and 3 (the two largest logits) may be drawn; got {drawn}"
    )
    share = (picked == 1).float().mean().item()  # softmax over (3.0, 2.5): 0.62 for index 1
    assert 0.5 < share < 0.75, (
        f"id 1 should be drawn about 62 % of the time (softmax of 3.0 and 2.5), {share:.0%}"
    )


@pytest.mark.exercise("l8.1")
def test_temperature_sharpens_and_flattens(impl):
    """Logits are divided by the temperature: near 0 it is greedy, large it is uniform, 1 is the softmax."""
    logits = torch.tensor([[2.0, 1.0, 0.0]]).repeat(2000, 1)
    cold = impl.sample_next(logits, 0.05, None, torch.Generator().manual_seed(0))
    assert (cold == 0).all(), "temperature 0.05 should (almost) always pick the largest logit: divide by it"
    hot = impl.sample_next(logits, 100.0, None, torch.Generator().manual_seed(0))
    shares = torch.bincount(hot.flatten(), minlength=3).float() / 2000
    assert (shares > 0.28).all(), (
        f"temperature 100 should draw the 3 ids about equally, got {shares.tolist()}"
    )
    plain = impl.sample_next(logits, 1.0, None, torch.Generator().manual_seed(0))
    expected = torch.softmax(logits[0], 0)
    observed = torch.bincount(plain.flatten(), minlength=3).float() / 2000
    assert_close(
        observed, expected, "at temperature 1 the ids should be drawn with softmax(logits)", atol=0.04, rtol=0
    )
