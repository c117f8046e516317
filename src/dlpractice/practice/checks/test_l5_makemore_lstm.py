"""Checks of lab l5: the LSTM cell written out equals torch.nn.LSTM given the same weights."""

from __future__ import annotations

import pytest

from dlpractice.practice.checks.support import cell_matches_torch


@pytest.mark.exercise("l5.1")
def test_lstm_cell_matches_torch(impl):
    """Six steps of LSTMCell.step give torch.nn.LSTM's hidden states."""
    cell_matches_torch(impl, "lstm")
