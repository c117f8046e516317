"""Checks of lab f7: the padding collate function and one epoch of training."""

from __future__ import annotations

import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("f7.1")
def test_pad_collate(impl) -> None:
    """Sequences padded on the right with zeros to the longest, with their lengths and labels."""
    batch = [(torch.tensor([1.0, 2.0]), 0), (torch.tensor([3.0]), 1), (torch.tensor([4.0, 5.0, 6.0]), 1)]
    padded, lengths, labels = impl.pad_collate(batch)
    assert_close(
        padded,
        torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [4.0, 5.0, 6.0]]),
        "the batch should be each sequence followed by zeros up to the longest length (padded on the right)",
    )
    assert lengths.tolist() == [2, 1, 3], f"the lengths should be [2, 1, 3], got {lengths.tolist()}"
    assert labels.tolist() == [0, 1, 1], f"the labels should be [0, 1, 1], got {labels.tolist()}"


@pytest.mark.exercise("f7.2")
def test_train_epoch_learns(impl) -> None:
    """15 epochs on the spirals lower the mean loss by 30 %, and the model is left in training mode."""
    torch.manual_seed(0)
    data = impl.Spirals(50, 0.1, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
    model = impl.Classifier(32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [impl.train_epoch(model, loader, optimizer) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0], (
        f"the epoch's mean loss should fall by 30 % over 15 epochs, went from {losses[0]:.3f} to "
        f"{losses[-1]:.3f}: zero_grad, backward, step, in that order, for every batch"
    )
    assert model.training, "train_epoch should leave the model in training mode (model.train())"
