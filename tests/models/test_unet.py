"""The U-Net of models/unet.py: shapes, the loss is per-pixel cross-entropy, skips carry detail, it learns."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.models.unet import UNet


def test_logits_keep_the_input_size_and_the_loss_is_pixel_cross_entropy() -> None:
    torch.manual_seed(0)
    model = UNet(5, width=4, depth=3)
    x, targets = torch.rand(2, 3, 32, 48), torch.randint(0, 5, (2, 32, 48))
    logits, loss = model(x, targets)
    assert logits.shape == (2, 5, 32, 48)
    reference = F.cross_entropy(logits.permute(0, 2, 3, 1).reshape(-1, 5), targets.reshape(-1))
    assert loss.item() == pytest.approx(reference.item(), rel=1e-6)
    assert model(x)[1] is None


def test_a_side_that_does_not_divide_by_two_to_the_depth_is_refused() -> None:
    with pytest.raises(ValueError, match="divide by 8"):
        UNet(3, width=4, depth=3)(torch.rand(1, 3, 30, 32))


def test_each_output_pixel_depends_on_its_own_input_pixel_through_the_skips() -> None:
    """Changing one input pixel changes the logits there: the full-resolution skip reaches the head."""
    torch.manual_seed(0)
    model = UNet(2, width=4, depth=2).eval()
    x = torch.rand(1, 3, 16, 16, requires_grad=True)
    model(x)[0][0, 1, 5, 7].backward()
    assert x.grad[0, :, 5, 7].abs().sum() > 0
    assert x.grad[0, :, 5, 7].abs().sum() >= x.grad[0].abs().amax(0).mean()  # the nearest pixel matters most


def test_it_learns_to_segment_a_bright_square() -> None:
    torch.manual_seed(0)
    x = torch.rand(16, 3, 16, 16) * 0.3
    targets = torch.zeros(16, 16, 16, dtype=torch.long)
    for i in range(16):
        r, c = torch.randint(0, 10, (2,))
        x[i, :, r : r + 6, c : c + 6] += 0.7
        targets[i, r : r + 6, c : c + 6] = 1
    model = UNet(2, width=4, depth=2)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(40):
        loss = model(x, targets)[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    accuracy = (model(x)[0].argmax(1) == targets).float().mean()
    assert accuracy > 0.95
