"""Our attention pieces agree with PyTorch's: SDPA (masks included) and nn.MultiheadAttention with copied
weights, to 1e-5; rotary positions depend on relative position only."""

import pytest
import torch
from torch import nn

from dlpractice.nn.attention import (
    LearnedPositions,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositions,
    causal_mask,
    padding_mask,
    sinusoidal_table,
)


@pytest.mark.parametrize("cross", [False, True])
def test_multi_head_matches_nn_multihead_attention(cross: bool) -> None:
    torch.manual_seed(0)
    theirs = nn.MultiheadAttention(16, 4, batch_first=True).eval()
    ours = MultiHeadAttention(16, 4).copy_from_torch(theirs).eval()
    x, memory = torch.randn(3, 6, 16), torch.randn(3, 9, 16)
    lengths = torch.tensor([9, 4, 7]) if cross else torch.tensor([6, 3, 5])
    keys = memory if cross else x
    ours_mask = padding_mask(lengths, keys.size(1))
    if not cross:
        ours_mask = ours_mask & causal_mask(6)
    expected, expected_weights = theirs(
        x,
        keys,
        keys,
        key_padding_mask=~ours_mask[:, 0, 0] if cross else None,
        attn_mask=None if cross else ~(ours_mask[:, 0].repeat_interleave(4, 0)),
        average_attn_weights=False,
    )
    ours.keep_weights = True
    out = ours(x, memory if cross else None, ours_mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.weights, expected_weights, atol=1e-5, rtol=1e-5)


def test_multi_head_gradients_match() -> None:
    torch.manual_seed(1)
    theirs = nn.MultiheadAttention(8, 2, batch_first=True)
    ours = MultiHeadAttention(8, 2).copy_from_torch(theirs)
    x = torch.randn(2, 5, 8)
    theirs(x, x, x, need_weights=False)[0].square().sum().backward()
    ours(x).square().sum().backward()
    torch.testing.assert_close(ours.q_proj.weight.grad, theirs.in_proj_weight.grad[:8], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(ours.out_proj.weight.grad, theirs.out_proj.weight.grad, atol=1e-5, rtol=1e-5)


def test_sinusoidal_table_formula_and_lookup() -> None:
    table = sinusoidal_table(50, 16)
    assert table.shape == (50, 16)
    p, i = 7, 3
    assert table[p, 2 * i].item() == pytest.approx(torch.sin(torch.tensor(p / 10000 ** (2 * i / 16))).item())
    assert table[p, 2 * i + 1].item() == pytest.approx(
        torch.cos(torch.tensor(p / 10000 ** (2 * i / 16))).item()
    )
    positions = torch.tensor([[0, 1, 2], [5, 6, 7]])
    torch.testing.assert_close(SinusoidalPositions(50, 16)(positions), table[positions])
    assert LearnedPositions(50, 16)(positions).shape == (2, 3, 16)


def test_rotary_scores_depend_on_relative_position_only() -> None:
    rope = RotaryEmbedding(8)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, 1, 1, 8, generator=g), torch.randn(1, 1, 1, 8, generator=g)
    scores = [(rope(q, offset=m) * rope(k, offset=m - 3)).sum().item() for m in (3, 10, 40)]
    assert scores == pytest.approx([scores[0]] * 3, abs=1e-5)
    x = torch.randn(2, 3, 6, 8, generator=g)
    torch.testing.assert_close(rope(x).norm(dim=-1), x.norm(dim=-1))  # a rotation keeps lengths
    torch.testing.assert_close(rope(x)[..., 0, :], x[..., 0, :])  # position 0 is not rotated
