"""Checks of lab l7: masked self-attention never lets a position see the ones after it."""

from __future__ import annotations

import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("l7.1")
def test_changing_a_later_token_leaves_earlier_logits_unchanged(impl):
    """Change token 6: the logits at positions 0-5 stay the same, those from 6 on change."""
    torch.manual_seed(3)
    model = impl.Transformer(27, 10, 16, 4, 2).eval()
    idx = torch.randint(27, (2, 10))
    changed = idx.clone()
    changed[:, 6] = (idx[:, 6] + 1) % 27
    before, after = model.logits_all(idx), model.logits_all(changed)
    assert_close(
        before[:, :6],
        after[:, :6],
        "changing token 6 changed the logits before position 6: mask the future (keys after the query) "
        "before the softmax",
        atol=1e-6,
        rtol=0,
    )
    assert not torch.allclose(before[:, 6:], after[:, 6:]), (
        "changing token 6 should change the logits from position 6 on: each position attends to itself"
    )
