"""Checks of lab n5: one decoder step with Bahdanau or Luong attention, against the equations."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("n5.1")
@pytest.mark.parametrize("variant", ["gru-bahdanau", "lstm-luong", "gru-luong", "lstm-bahdanau"])
def test_decoder_steps_match_a_hand_computation(impl, variant: str) -> None:
    """run_decoder over a tiny model equals the equations written out here, step by step."""
    torch.manual_seed(0)
    cell, attention = variant.split("-")
    model = impl.Seq2SeqRNN(
        cell, attention, SimpleNamespace(n_embd=4, n_hidden=6, tf_start=1.0, tf_end=0.5), vocab=7
    ).eval()
    memory, h = torch.randn(2, 5, 6), torch.randn(2, 6)  # (B, S, H), (B, H)
    mask = torch.tensor([[True] * 5, [True] * 3 + [False] * 2])
    tokens = torch.randint(1, 7, (2, 4))  # (B, T)
    with torch.no_grad():
        logits = model.run_decoder((memory, mask, h, torch.zeros_like(h)), tokens)  # (B, T, V)

    def attend(scores: torch.Tensor) -> torch.Tensor:  # scores (B, S) -> context (B, H)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), -1)
        return torch.einsum("bs,bsh->bh", weights, memory)

    c, feed, expected = torch.zeros_like(h), torch.zeros_like(h), []
    with torch.no_grad():
        for t in range(tokens.size(1)):
            x = model.embed.weight[tokens[:, t]]  # (B, E)
            if attention == "bahdanau":  # additive, with the previous state
                q = h @ model.w_query.weight.T
                feed = attend(torch.tanh(q[:, None] + memory) @ model.v.weight[0])
            if cell == "lstm":
                h, c = model.cell(torch.cat([x, feed], -1), (h, c))
            else:
                h = model.cell(torch.cat([x, feed], -1), h)
            if attention == "bahdanau":
                expected.append(torch.cat([h, feed, x], -1) @ model.out.weight.T + model.out.bias)
            else:  # "general", with the new state; h~ = tanh(W [context; h]) is fed to the next step
                context = attend(torch.einsum("bsh,bh->bs", memory, h @ model.w_score.weight.T))
                combine = model.w_combine
                feed = torch.tanh(torch.cat([context, h], -1) @ combine.weight.T + combine.bias)
                expected.append(feed @ model.out.weight.T + model.out.bias)
    when = (
        "the previous state, before the cell" if attention == "bahdanau" else "the new state, after the cell"
    )
    assert_close(
        logits,
        torch.stack(expected, 1),
        f"{cell.upper()} with {attention} attention: the logits should follow the equations "
        f"({attention} attends with {when})",
    )
