"""Checks of lab r4: distinct-n on replies counted by hand, top-k and nucleus filtering against transformers'
logits warpers, and beam search with length normalisation against an exhaustive search of a toy model."""

from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from dlpractice.data.seq2seq import BOS, EOS, PAD
from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("r4.1")
def test_distinct_n_counts_different_ngrams_over_all_ngrams(impl) -> None:
    """Every n-gram inside each reply, none across two replies; different ones over all of them."""
    replies = [["a", "b", "a", "b"], ["a", "b", "c"], ["d"]]
    # unigrams: a b a b a b c d -> 4 different of 8; bigrams: ab ba ab ab bc -> 3 of 5 (none spans replies)
    assert impl.distinct_n(replies, 1) == pytest.approx(4 / 8), "distinct-1 should be 4 different / 8 words"
    assert impl.distinct_n(replies, 2) == pytest.approx(3 / 5), (
        "distinct-2 should be 3 different / 5 bigrams: a bigram never joins the end of one reply to the next"
    )
    assert impl.distinct_n([["x", "y"]] * 3, 3) == 0.0, "replies shorter than n have no n-gram: 0"
    assert impl.distinct_n([["same", "reply"]] * 10, 2) == pytest.approx(0.1), (
        "ten copies of one reply: 1 different bigram of 10"
    )


@pytest.mark.exercise("r4.2")
@pytest.mark.parametrize(("top_k", "top_p"), [(5, 1.0), (0, 0.9), (0, 0.5), (8, 0.8), (1, 1.0), (0, 0.01)])
def test_filter_logits_matches_transformers_warpers(impl, top_k: int, top_p: float) -> None:
    """-inf outside the top k, then outside the nucleus: what transformers' TopK then TopP warpers keep."""
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    logits = torch.randn(6, 30, generator=torch.Generator().manual_seed(top_k + int(100 * top_p)))
    expected = logits.clone()
    if top_k:
        expected = TopKLogitsWarper(top_k)(None, expected)
    if top_p < 1.0:
        expected = TopPLogitsWarper(top_p)(None, expected)
    out = impl.filter_logits(logits.clone(), top_k, top_p)
    kept, expected_kept = torch.isfinite(out), torch.isfinite(expected)
    assert torch.equal(kept, expected_kept), (
        f"top_k={top_k}, top_p={top_p}: {int(kept.sum())} tokens kept, transformers keeps "
        f"{int(expected_kept.sum())} (nucleus: the fewest most likely tokens whose mass reaches top_p)"
    )
    assert_close(
        out[kept], logits[kept], "the tokens kept should keep their logits unchanged", atol=0, rtol=0
    )


class TableModel(nn.Module):
    """A toy decoder: the next-token logits are a fixed random function of (source, prefix); <pad> and <s>
    never come next."""

    vocab = 6

    def encode(self, src: torch.Tensor, src_len: torch.Tensor) -> tuple[torch.Tensor]:
        return (src,)

    def next_logits(self, state: tuple[torch.Tensor], prefix: torch.Tensor) -> torch.Tensor:
        rows = []
        for source, seq in zip(state[0].tolist(), prefix.tolist()):
            seed = (
                1_000_003 * sum(source) + 7919 * len(seq) + sum(31**i * t for i, t in enumerate(seq))
            ) % 2**31
            logits = 2 * torch.randn(self.vocab, generator=torch.Generator().manual_seed(seed))
            logits[[PAD, BOS]] = float("-inf")
            rows.append(logits)
        return torch.stack(rows)


def exhaustive_best(model: TableModel, source: list[int], max_steps: int, alpha: float) -> list[int]:
    """Every reply (ended by </s>, or cut at max_steps), scored by log-probability / length ** alpha."""
    words = [t for t in range(model.vocab) if t not in (PAD, BOS, EOS)]
    replies = [[BOS, *b, EOS] for n in range(max_steps) for b in itertools.product(words, repeat=n)]
    replies += [[BOS, *b] for b in itertools.product(words, repeat=max_steps)]

    def score(seq: list[int]) -> float:
        state = (torch.tensor([source]),)
        steps = range(1, len(seq))
        logp = sum(
            float(model.next_logits(state, torch.tensor([seq[:t]])).log_softmax(-1)[0, seq[t]]) for t in steps
        )
        return logp / (len(seq) - 1) ** alpha

    return max(replies, key=score)


@pytest.mark.exercise("r4.3")
@pytest.mark.parametrize("alpha", [0.0, 1.0, 2.0])
def test_wide_beam_finds_the_best_length_normalised_reply(impl, alpha: float) -> None:
    """A beam wide enough to keep every prefix returns the reply an exhaustive search ranks first."""
    model, max_steps = TableModel(), 3
    src = torch.tensor([[5, 3, 4], [4, 4, 3], [3, 5, 5], [5, 5, 4]])
    out = impl.beam_replies(model, src, torch.full((4,), 3), max_steps, beam=64, alpha=alpha)
    for row, source in zip(out.tolist(), src.tolist()):
        got = [t for t in row if t != PAD]
        expected = exhaustive_best(model, source, max_steps, alpha)
        assert got == expected, (
            f"alpha={alpha}: beam search chose {got}, the best by log-probability / length ** alpha is "
            f"{expected} (finished replies are ranked by their normalised score)"
        )


@pytest.mark.exercise("r4.3")
def test_one_beam_without_normalisation_is_greedy(impl) -> None:
    """beam=1, alpha=0 picks the most likely token at every step, as greedy decoding does."""
    from dlpractice.models.seq2seq import greedy_decode

    model, src = TableModel(), torch.tensor([[5, 3, 4], [4, 4, 3], [3, 5, 5]])
    out = impl.beam_replies(model, src, torch.full((3,), 3), 5, beam=1, alpha=0.0)
    greedy = greedy_decode(model, src, torch.full((3,), 3), 5)
    for got, expected in zip(out.tolist(), greedy.tolist()):
        got, expected = [t for t in got if t != PAD], [t for t in expected if t != PAD]
        assert got == expected, f"one beam, alpha 0 gave {got}; greedy decoding gives {expected}"
