"""Checks of lab l6: the GRU cell written out equals torch.nn.GRU given the same weights."""

from __future__ import annotations

import pytest

from dlpractice.practice.checks.support import cell_matches_torch


@pytest.mark.exercise("l6.1")
def test_gru_cell_matches_torch(impl):
    """Six steps of GRUCell.step give torch.nn.GRU's hidden states."""
    cell_matches_torch(impl, "gru")
