"""Checks of lab n7: the CRF's log-partition and Viterbi decoding against enumerating every tag path, and
the alignment of word labels to sub-word tokens."""

from __future__ import annotations

import itertools

import pytest
import torch

from dlpractice.models import crf as crf_module
from dlpractice.practice.checks.support import assert_close

K = 3  # tags in the brute-force checks: 3 tags, up to 5 tokens = 243 paths


def random_crf(seed: int) -> tuple[crf_module.CRF, torch.Tensor, torch.Tensor]:
    """A CRF with random scores and a batch of 4 sentences of lengths 5, 3, 1 and 4 (padded to 5)."""
    torch.manual_seed(seed)
    model = crf_module.CRF(K)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1.5)
    emissions = torch.randn(4, 5, K) * 2
    mask = torch.arange(5)[None, :] < torch.tensor([5, 3, 1, 4])[:, None]
    return model, emissions, mask


def hand_score(model: crf_module.CRF, emissions: torch.Tensor, path: tuple[int, ...]) -> torch.Tensor:
    """start + emissions + transitions + end of one path, written as the sum it is."""
    score = model.start[path[0]] + model.end[path[-1]]
    score = score + sum(emissions[t, tag] for t, tag in enumerate(path))
    return score + sum(model.transitions[a, b] for a, b in itertools.pairwise(path))


def all_paths(model, emissions, length) -> dict[tuple[int, ...], torch.Tensor]:
    return {p: hand_score(model, emissions[:length], p) for p in itertools.product(range(K), repeat=length)}


@pytest.mark.exercise("n7.1")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_log_partition_equals_brute_force(impl, seed):
    """log Z = logsumexp over every tag path of the sentence's real tokens."""
    model, emissions, mask = random_crf(seed)
    model.__class__ = impl.CRF  # the learner's methods on the same parameters
    got = model.log_partition(emissions, mask)
    assert got.shape == (4,), f"one log Z per sentence: shape (4,), got {tuple(got.shape)}"
    for b, length in enumerate(mask.sum(1).tolist()):
        want = torch.logsumexp(torch.stack(list(all_paths(model, emissions[b], length).values())), 0)
        assert_close(
            got[b],
            want,
            f"sentence {b} ({length} real tokens): log Z should be the logsumexp of the scores of all "
            f"{K}^{length} paths (padding steps left out, end scores added)",
            rtol=1e-5,
            atol=1e-5,
        )


@pytest.mark.exercise("n7.1")
def test_log_partition_gradient_is_the_tag_marginals(impl):
    """d log Z / d emissions[t, k] = P(tag_t = k): sums to 1 at each real token, 0 on padding."""
    model, emissions, mask = random_crf(3)
    model.__class__ = impl.CRF
    emissions.requires_grad_(True)
    model.log_partition(emissions, mask).sum().backward()
    assert_close(
        emissions.grad.sum(-1),
        mask.float(),
        "the gradient of log Z over the tags should sum to 1 at each real token and 0 on padding "
        "(they are the tag marginals)",
        rtol=1e-5,
        atol=1e-5,
    )
    nll = model.nll(emissions.detach(), torch.zeros(4, 5, dtype=torch.long), mask)
    assert nll.item() > 0, f"the negative log-likelihood of a path should be positive, got {nll.item():.4f}"


@pytest.mark.exercise("n7.2")
@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_viterbi_finds_the_brute_force_best_path(impl, seed):
    """Viterbi returns, per sentence, the highest-scoring tag path of its real tokens."""
    model, emissions, mask = random_crf(seed)
    model.__class__ = impl.CRF
    paths = model.viterbi(emissions, mask)
    lengths = mask.sum(1).tolist()
    assert [len(p) for p in paths] == lengths, (
        f"one tag per real token: path lengths {lengths}, got {[len(p) for p in paths]}"
    )
    for b, path in enumerate(paths):
        scores = all_paths(model, emissions[b], len(path))
        best = max(scores, key=lambda p: scores[p].item())
        assert tuple(path) == best, (
            f"sentence {b}: the best path is {list(best)} (end scores included), got {list(path)}"
        )


@pytest.mark.exercise("n7.2")
def test_viterbi_follows_strong_transitions(impl):
    """Flat emissions and one transition far above the rest: the best path takes it at every step."""
    model = impl.CRF(K)
    with torch.no_grad():
        model.transitions.fill_(0.0)
        model.transitions[0, 2] = model.transitions[2, 0] = 5.0
        model.start.copy_(torch.tensor([3.0, 0.0, 0.0]))
        model.end.fill_(0.0)
    paths = model.viterbi(torch.zeros(2, 6, K), torch.tensor([[True] * 6, [True] * 3 + [False] * 3]))
    assert paths == [[0, 2, 0, 2, 0, 2], [0, 2, 0]], (
        f"start on tag 0, then alternate 0-2 (the strong transitions), stopping at each length; got {paths}"
    )


@pytest.mark.exercise("n7.3")
def test_first_sub_word_carries_the_label(impl):
    """Only a word's first piece carries its label; other pieces and special tokens get -100."""
    # "[CLS] kw ##as ##niewski met blair [SEP]": word 0 is three pieces
    word_ids = [None, 0, 0, 0, 1, 2, None]
    got = impl.align_labels(word_ids, [1, 0, 1])
    assert got == [-100, 1, -100, -100, 0, 1, -100], (
        f"word ids {word_ids} with labels [1, 0, 1] should align to [-100, 1, -100, -100, 0, 1, -100] "
        f"(the first piece of each word only); got {got}"
    )


@pytest.mark.exercise("n7.3")
def test_alignment_of_adjacent_split_words_and_truncation(impl):
    """Adjacent split words each label their first piece; a word cut off by truncation is simply absent."""
    from dlpractice.labs.nlp import n7_ner

    word_ids = [None, 0, 1, 1, 2, 2, 2, 3, None]  # word 4 was cut off by max_length
    labels = impl.align_labels(word_ids, [5, 6, 3, 4, 0])
    want = [-100, 5, 6, -100, 3, -100, -100, 4, -100]
    assert labels == want, f"word ids {word_ids} should align to {want}; got {labels}"
    assert n7_ner.word_predictions(word_ids, labels, 5) == [5, 6, 3, 4, 0], (
        "reading the labels back per word should give the word labels"
    )
