"""Checks of lab l4: the RNN cell written out equals torch.nn.RNN given the same weights."""

from __future__ import annotations

import pytest

from dlpractice.practice.checks.support import cell_matches_torch


@pytest.mark.exercise("l4.1")
def test_rnn_cell_matches_torch(impl):
    """Six steps of RNNCell.step give torch.nn.RNN's hidden states."""
    cell_matches_torch(impl, "rnn")
