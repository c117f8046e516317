"""Checks of lab n3: scaled dot-product attention, the causal mask and the padding mask, against
PyTorch's F.scaled_dot_product_attention."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from dlpractice.nn.attention import scaled_dot_product_attention
from dlpractice.practice.checks.support import assert_close


def qkv(b=2, h=3, tq=5, tk=7, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.randn(b, h, tq, d, generator=g),
        torch.randn(b, h, tk, d, generator=g),
        torch.randn(b, h, tk, d, generator=g),
    )


def assert_like_torch(
    out: torch.Tensor, inputs: tuple[torch.Tensor, ...], expected_what: str, **options
) -> None:
    """`out` equals F.scaled_dot_product_attention(*inputs, **options) to float32 precision."""
    expected = F.scaled_dot_product_attention(*inputs, **options)
    assert_close(out, expected, expected_what, atol=1e-5, rtol=1e-5)


@pytest.mark.exercise("n3.1")
def test_sdpa_matches_torch(impl) -> None:
    """softmax(q k^T / sqrt(d)) v, masked keys getting zero weight: PyTorch's result."""
    sdpa = impl.scaled_dot_product_attention
    q, k, v = qkv()
    out, weights = sdpa(q, k, v)
    assert_like_torch(out, (q, k, v), "the output should be softmax(q k^T / sqrt(d)) v, PyTorch's")
    assert_close(
        weights.sum(-1),
        torch.ones(2, 3, 5),
        "each query's weights should sum to 1 over the keys",
        atol=1e-5,
        rtol=0,
    )
    mask = torch.rand(2, 1, 5, 7, generator=torch.Generator().manual_seed(1)) > 0.3
    mask[..., 0] = True  # every query sees at least one key
    out, weights = sdpa(q, k, v, mask)
    assert_like_torch(
        out,
        (q, k, v),
        "with a mask the output should be PyTorch's (False = the key is not seen)",
        attn_mask=mask,
    )
    assert (weights[~mask.expand_as(weights)] == 0).all(), "a masked key should get exactly zero weight"


@pytest.mark.exercise("n3.2")
def test_causal_mask_matches_torch_is_causal(impl) -> None:
    """Query i sees keys 0..i (shifted right when there are more keys than queries)."""
    make_causal = impl.causal_mask
    square = make_causal(3).tolist()
    assert square == [[True, False, False], [True, True, False], [True, True, True]], (
        f"causal_mask(3) should be lower-triangular True (a query sees itself and the past), got {square}"
    )
    wide = make_causal(2, 4).tolist()
    assert wide == [[True, True, True, False], [True, True, True, True]], (
        f"causal_mask(2, 4): the 2 queries are the last 2 of 4 positions, so they see 3 and 4 keys; "
        f"got {wide}"
    )
    q, k, v = qkv(tk=5)
    out, _ = scaled_dot_product_attention(q, k, v, make_causal(5))
    assert_like_torch(
        out, (q, k, v), "attention under causal_mask(5) should equal PyTorch's is_causal=True", is_causal=True
    )


@pytest.mark.exercise("n3.3")
def test_padding_mask_ignores_padded_keys(impl) -> None:
    """(B, 1, 1, T) True on real keys: attention then ignores the padding as if it were cut off."""
    make_padding = impl.padding_mask
    mask = make_padding(torch.tensor([2, 4]), 5)
    assert mask.shape == (2, 1, 1, 5), (
        f"the mask should be (B, 1, 1, T) = (2, 1, 1, 5), got {tuple(mask.shape)}"
    )
    rows = mask[:, 0, 0].tolist()
    assert rows == [[True, True, False, False, False], [True, True, True, True, False]], (
        f"lengths (2, 4) over 5 positions should mark the first 2 and the first 4 keys True; got {rows}"
    )
    q, k, v = qkv(tk=5)
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    short, _ = scaled_dot_product_attention(q[:1], k[:1, :, :2], v[:1, :, :2])  # padding cut off instead
    assert_close(
        out[:1],
        short,
        "attention with the mask should equal attention with the padding cut off",
        atol=1e-5,
        rtol=1e-5,
    )
