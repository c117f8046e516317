"""Checks of lab n9: a replay batch mixes the new domain with a share of the old one."""

from __future__ import annotations

import pytest
import torch

from dlpractice.data.shakespeare import TokenStream


def streams() -> tuple[TokenStream, TokenStream]:
    """New text: ids 0-99 in order; old text: ids 1000-1099 (a window shows where it came from)."""
    new = TokenStream({"train": torch.arange(100)}, block_size=5)
    old = TokenStream({"train": torch.arange(1000, 1100)}, block_size=5)
    return new, old


@pytest.mark.exercise("n9.1")
def test_replay_batch_puts_the_old_rows_after_the_new(impl):
    """A quarter of 8 rows replay old text, after the 6 new ones; targets are the inputs shifted by one."""
    new, old = streams()
    x, y = impl.ReplayStream(new, old, 0.25).train_batch(8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (8, 5), f"inputs and targets should be (8, 5), got {tuple(x.shape)}"
    from_old = (x >= 1000).all(1).tolist()
    assert from_old == [False] * 6 + [True] * 2, (
        f"rows 0-5 should be new text and rows 6-7 old text (replay 0.25 of 8 rows); got old rows at "
        f"{[i for i, o in enumerate(from_old) if o]}"
    )
    assert torch.equal(y, x + 1), "each target row should be its input window shifted by one token"


@pytest.mark.exercise("n9.1")
def test_replay_share_is_rounded_and_zero_means_new_only(impl):
    """round(replay * batch_size) old rows: 0.0 keeps every row new, 0.5 of 5 rows replays 2."""
    new, old = streams()
    x, _ = impl.ReplayStream(new, old, 0.0).train_batch(6, torch.Generator().manual_seed(1))
    assert x.shape == (6, 5) and (x < 1000).all(), "replay 0.0 should draw every row from the new domain"
    x, _ = impl.ReplayStream(new, old, 0.5).train_batch(5, torch.Generator().manual_seed(1))
    assert x.shape == (5, 5), f"a batch of 5 rows should stay 5 rows with replay, got {tuple(x.shape)}"
    n_old = int((x >= 1000).all(1).sum())
    assert n_old == round(0.5 * 5), f"replay 0.5 of 5 rows: round(2.5) = 2 old rows, got {n_old}"
    a = impl.ReplayStream(new, old, 0.5).train_batch(5, torch.Generator().manual_seed(7))[0]
    b = impl.ReplayStream(new, old, 0.5).train_batch(5, torch.Generator().manual_seed(7))[0]
    assert torch.equal(a, b), "draw every window from the generator passed in, so a batch is reproducible"
