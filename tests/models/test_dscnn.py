"""The DS-CNN: shapes, its loss is cross-entropy, a separable block equals a per-channel correlation
(SciPy) followed by a channel mix, and it costs far fewer weights than a full convolution."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from scipy.signal import correlate2d

from dlpractice.models.dscnn import DSCNN, SeparableBlock


def test_logits_loss_and_embedding_shapes() -> None:
    torch.manual_seed(0)
    model = DSCNN(40, 2, channels=16, blocks=2).eval()
    x, y = torch.randn(3, 101, 40), torch.tensor([0, 1, 1])
    logits, loss = model(x, y)
    assert logits.shape == (3, 2) and model.embed(x).shape == (3, 16)
    torch.testing.assert_close(loss, F.cross_entropy(logits, y))
    assert model(x)[1] is None


def test_depthwise_convolution_is_a_correlation_per_channel() -> None:
    torch.manual_seed(1)
    block = SeparableBlock(3)
    h = torch.randn(1, 3, 9, 7)
    got = block.depthwise(h)[0].detach().numpy()
    weights = block.depthwise.weight.detach().numpy()  # (C, 1, 3, 3)
    for c in range(3):
        expected = correlate2d(h[0, c].numpy(), weights[c, 0], mode="same")
        np.testing.assert_allclose(got[c], expected, rtol=1e-5, atol=1e-5)


def test_separable_block_costs_a_fraction_of_a_full_convolution() -> None:
    block = SeparableBlock(64)
    separable = block.depthwise.weight.numel() + block.pointwise.weight.numel()
    assert separable == 64 * 9 + 64 * 64
    assert separable < 0.15 * torch.nn.Conv2d(64, 64, 3).weight.numel()


def test_it_learns_a_tiny_problem() -> None:
    torch.manual_seed(2)
    model = DSCNN(8, 2, channels=8, blocks=1, dropout=0.0)
    x = torch.randn(16, 20, 8)
    y = (x[:, :, :4].mean((1, 2)) > 0).long()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(60):
        _, loss = model(x, y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.2
