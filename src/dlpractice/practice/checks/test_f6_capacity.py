"""Checks of lab f6: the shift augmentation moves each image by at most one pixel, without wrapping."""

from __future__ import annotations

import pytest
import torch


def lit_pixels(out: torch.Tensor, side: int) -> tuple[set[int], set[int]]:
    """Rows and columns where the single lit pixel of each image ended up."""
    where = out.argmax(1)
    return set((where // side).tolist()), set((where % side).tolist())


@pytest.mark.exercise("f6.1")
def test_shift_images_moves_by_at_most_one_pixel(impl) -> None:
    """Each image moves by -1, 0 or +1 pixel along each axis; what leaves the edge is lost, never wrapped."""
    x = torch.zeros(200, 64)
    x[:, 3 * 8 + 4] = 1.0  # one lit pixel at row 3, column 4
    out = impl.shift_images(x, torch.Generator().manual_seed(0))
    assert out.shape == (200, 64), (
        f"the output should keep the input's shape (200, 64), got {tuple(out.shape)}"
    )
    assert torch.equal(out.sum(1), torch.ones(200)), "a pixel away from the edge should move, not vanish"
    rows, cols = lit_pixels(out, 8)
    assert rows == {2, 3, 4} and cols == {3, 4, 5}, (
        f"a pixel at row 3, column 4 should land on rows {{2, 3, 4}} and columns {{3, 4, 5}}; "
        f"got rows {sorted(rows)}, columns {sorted(cols)}"
    )
    corner = torch.zeros(200, 64)
    corner[:, 0] = 1.0  # lit at row 0, column 0: shifted up or left, it falls off the edge
    out = impl.shift_images(corner, torch.Generator().manual_seed(0)).reshape(200, 8, 8)
    assert out[:, 2:, :].abs().sum() == 0 and out[:, :, 2:].abs().sum() == 0, (
        "a corner pixel shifted off the edge came back on the other side: pad with zeros instead of rolling"
    )
    assert set(out.sum((1, 2)).tolist()) == {0.0, 1.0}, (
        "a corner pixel should fall off the image in some shifts and stay in others"
    )
    mnist = torch.zeros(200, 28 * 28)
    mnist[:, 10 * 28 + 20] = 1.0  # 28x28 images: the side comes from the input, not a constant
    out = impl.shift_images(mnist, torch.Generator().manual_seed(0))
    assert out.shape == (200, 784) and torch.equal(out.sum(1), torch.ones(200)), (
        "28x28 images (784 pixels) should work too: take the side from the input, not the constant 8"
    )
    rows, cols = lit_pixels(out, 28)
    assert rows == {9, 10, 11} and cols == {19, 20, 21}, (
        f"on 28x28 images a pixel at row 10, column 20 should land on rows 9-11 and columns 19-21; "
        f"got rows {sorted(rows)}, columns {sorted(cols)}"
    )
