"""Our attention pieces agree with PyTorch's: SDPA (masks included) and nn.MultiheadAttention with copied
weights, to 1e-5; rotary positions depend on relative position only."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.nn.attention import (
    LearnedPositions,
    MultiHeadAttention,
    RotaryEmbedding,
    SinusoidalPositions,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_table,
)


def qkv(b=2, h=3, tq=5, tk=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, h, tq, d, generator=g),
        torch.randn(b, h, tk, d, generator=g),
        torch.randn(b, h, tk, d, generator=g),
    )


@pytest.mark.exercise("n3.1")
def test_sdpa_matches_torch(impl) -> None:
    sdpa = impl.scaled_dot_product_attention
    q, k, v = qkv()
    out, weights = sdpa(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5), atol=1e-5, rtol=0)
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    out, weights = sdpa(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    assert (weights[~mask.expand_as(weights)] == 0).all()


@pytest.mark.exercise("n3.2")
def test_causal_mask_matches_torch_is_causal(impl) -> None:
    make_causal = impl.causal_mask
    assert make_causal(3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    assert make_causal(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]
    q, k, v = qkv(tk=5)
    out, _ = scaled_dot_product_attention(q, k, v, make_causal(5))
    expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


@pytest.mark.exercise("n3.3")
def test_padding_mask_ignores_padded_keys(impl) -> None:
    make_padding = impl.padding_mask
    mask = make_padding(torch.tensor([2, 4]), 5)
    assert mask.shape == (2, 1, 1, 5)
    assert mask[:, 0, 0].tolist() == [[True, True, False, False, False], [True, True, True, True, False]]
    q, k, v = qkv(tk=5)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    short, _ = scaled_dot_product_attention(q[:1], k[:1, :, :2], v[:1, :, :2])  # padding cut off instead
    torch.testing.assert_close(out[:1], short, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "check",
    [
        test_sdpa_matches_torch,
        test_causal_mask_matches_torch_is_causal,
        test_padding_mask_ignores_padded_keys,
    ],
)
def test_exercise_checks_fail_on_the_stub(check, stub) -> None:
    with pytest.raises(NotImplementedError):
        check(stub)


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
