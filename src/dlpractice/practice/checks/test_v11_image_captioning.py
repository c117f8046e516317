"""Checks of lab v11: corpus BLEU (clipped counts, brevity penalty), one beam-search step, and the soft
attention over the CNN's grid."""

from __future__ import annotations

import itertools
import math
import random
import warnings

import pytest
import torch
from torch import nn

from dlpractice.practice.checks.support import assert_close

PAD, BOS, EOS = 0, 1, 2


@pytest.mark.exercise("v11.1")
def test_bleu_clips_each_ngram_to_the_reference_that_has_it_most(impl) -> None:
    hyp = ["the"] * 7
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]]
    got = impl.corpus_bleu([hyp], [refs], max_n=1)[0]
    assert got == pytest.approx(2 / 7), (
        f"expected BLEU-1 2/7 = {2 / 7:.4f}, got {got:.4f}: 'the' counts at most as often as in the one "
        "reference that has it most (2 times), not the sum over references, and not 7 times"
    )


@pytest.mark.exercise("v11.1")
def test_brevity_penalty_uses_the_closest_reference_length(impl) -> None:
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]]
    got = impl.corpus_bleu([["the", "cat"]], [refs], max_n=2)
    expected = math.exp(1 - 6 / 2)  # both precisions are 1; the closest reference has 6 words
    assert got == pytest.approx([expected, expected]), (
        f"expected {expected:.4f} for BLEU-1 and BLEU-2 of 'the cat' (precisions 1, brevity penalty "
        f"exp(1 - 6/2) with the closest reference length 6), got {[round(g, 4) for g in got]}"
    )
    tie = impl.corpus_bleu(
        [["a", "red", "blue", "star"]], [[["a", "red", "star"], ["a", "red", "blue", "x", "y"]]]
    )
    assert tie[0] == pytest.approx(1.0), (
        f"expected BLEU-1 1.0 (every word is in a reference), got {tie[0]:.4f}: references of 3 and 5 words "
        "are equally close to 4; take the shorter (3), so the hypothesis is longer and there is no penalty"
    )


@pytest.mark.exercise("v11.1")
def test_corpus_bleu_pools_counts_over_the_corpus_like_nltk(impl) -> None:
    from nltk.translate.bleu_score import corpus_bleu

    rng = random.Random(0)
    vocab = ["a", "red", "blue", "circle", "square", "left", "of", "above", "the"]
    for _ in range(10):
        hyps = [[rng.choice(vocab) for _ in range(rng.randint(4, 9))] for _ in range(rng.randint(2, 6))]
        refs = [[[rng.choice(vocab) for _ in range(rng.randint(2, 9))] for _ in range(3)] for _ in hyps]
        for hyp, rs in zip(hyps, refs):
            rs[0][:4] = hyp[:4]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            expected = corpus_bleu(refs, hyps, weights=[(1.0,), (0.5, 0.5), (1 / 3,) * 3, (0.25,) * 4])
        assert_close(
            impl.corpus_bleu(hyps, refs),
            expected,
            "BLEU-1..4 should equal nltk's corpus_bleu: sum clipped matches and n-gram counts over all "
            "captions first, then take the geometric mean of the precisions times one brevity penalty",
            atol=1e-9,
            rtol=0,
        )


@pytest.mark.exercise("v11.2")
def test_beam_step_keeps_the_best_extensions_of_all_beams(impl) -> None:
    generator = torch.Generator().manual_seed(1)
    b, k, v = 2, 3, 6
    scores = -torch.rand(b, k, generator=generator) * 3
    logp = torch.randn(b, k, v, generator=generator).log_softmax(-1)
    finished = torch.tensor([[False, True, False], [False, False, False]])
    new, parent, token = impl.beam_step(scores, logp, finished)
    for i in range(b):
        options = []
        for beam, word in itertools.product(range(k), range(v)):
            done = bool(finished[i, beam])
            extra = (0.0 if word == PAD else float("-inf")) if done else float(logp[i, beam, word])
            options.append((float(scores[i, beam]) + extra, beam, word))
        best = sorted(options, key=lambda o: -o[0])[:k]
        assert new[i].tolist() == pytest.approx([o[0] for o in best]), (
            f"image {i}: expected the new scores {[round(o[0], 4) for o in best]}, got "
            f"{[round(s, 4) for s in new[i].tolist()]}: each extension scores the beam's score so far plus "
            "the word's log-probability, and the best k of all k·V extensions are kept (not k per beam)"
        )
        assert list(zip(parent[i].tolist(), token[i].tolist())) == [(o[1], o[2]) for o in best], (
            f"image {i}: expected (beam, word) {[(o[1], o[2]) for o in best]}, got "
            f"{list(zip(parent[i].tolist(), token[i].tolist()))}: index // V is the beam, index % V the word"
        )
    assert (token[0][parent[0] == 1] == PAD).all(), "a finished beam may only grow by <pad>"


class ToyModel(nn.Module):
    """Greedy takes word 4 (p 0.5) but then cannot end well; word 5 (p 0.4) ends at once with p 0.9."""

    def __init__(self):
        super().__init__()
        self.encoder = lambda images: torch.zeros(len(images), 1, 1)

    def next_logits(self, grid: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        probs = torch.full((len(prefix), 7), 1e-6)
        for row, seq in enumerate(prefix.tolist()):
            if len(seq) == 1:
                probs[row, [4, 5, EOS]] = torch.tensor([0.5, 0.4, 0.1])
            elif seq[-1] == 4:
                probs[row, [EOS, 6]] = torch.tensor([0.3, 0.7])
            elif seq[-1] == 5:
                probs[row, [EOS, 6]] = torch.tensor([0.9, 0.1])
            else:
                probs[row, 6] = 1.0
        return probs.log()


@pytest.mark.exercise("v11.2")
def test_beam_search_finds_the_likelier_caption_greedy_misses(impl) -> None:
    found = impl.beam_search(ToyModel(), torch.zeros(2, 3, 4, 4), beam=3, max_len=2, alpha=0.0)
    assert found == [[5], [5]], (
        f"expected the caption [5] (p 0.4 x 0.9 = 0.36) for both pictures, got {found}: greedy's word 4 "
        "leads only to p 0.5 x 0.3 = 0.15 or longer, less likely captions"
    )


@pytest.mark.exercise("v11.3")
def test_soft_attention_weights_the_grid_by_softmax_of_the_scores(impl) -> None:
    generator = torch.Generator().manual_seed(0)
    query, keys = torch.randn(3, 5, generator=generator), torch.randn(3, 7, 5, generator=generator)
    values = torch.randn(3, 7, 4, generator=generator)
    torch.manual_seed(0)
    score = nn.Linear(5, 1)
    context, weights = impl.soft_attention(query, keys, values, score)
    assert tuple(weights.shape) == (3, 7) and tuple(context.shape) == (3, 4), (
        f"expected weights (B, G) = (3, 7) and context (B, C) = (3, 4), got {tuple(weights.shape)} and "
        f"{tuple(context.shape)}"
    )
    with torch.no_grad():
        e = score(torch.tanh(keys + query[:, None])).squeeze(-1)  # (3, 7)
        alpha = torch.exp(e) / torch.exp(e).sum(1, keepdim=True)
        assert_close(
            weights.detach(),
            alpha,
            "the weights should be softmax over the 7 grid cells of score(tanh(key + query)), "
            "each row summing to 1",
        )
        assert_close(
            context.detach(),
            (alpha[..., None] * values).sum(1),
            "the context should be the sum of the values (the grid) weighted by the attention weights",
        )
