"""CTC: our forward-algorithm loss against F.ctc_loss, and the decoders against brute force."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from torch.nn import functional as F

from dlpractice.models import ctc


def random_batch(seed: int, T: int = 12, B: int = 4, C: int = 5, S: int = 4):
    """Log-probs (T, B, C), targets (B, S) with repeats, and lengths with padding in both."""
    g = torch.Generator().manual_seed(seed)
    log_probs = torch.randn(T, B, C, generator=g, dtype=torch.float64).log_softmax(-1)
    targets = torch.randint(1, C, (B, S), generator=g)
    targets[0, 1] = targets[0, 0]  # a repeated symbol needs a blank between
    input_lengths = torch.tensor([T, T - 2, 7, T])[:B]
    target_lengths = torch.tensor([S, 3, 2, 0])[:B]  # the last: an empty transcript (all blanks)
    return log_probs, targets, input_lengths, target_lengths


@pytest.mark.parametrize("reduction", ["none", "sum", "mean"])
@pytest.mark.parametrize("seed", range(3))
def test_ctc_loss_and_gradient_match_torch(seed: int, reduction: str) -> None:
    """Gradients are compared on the logits: torch's backward returns, for the log-probs, the gradient of
    the logits under log_softmax (equal after log_softmax's backward, not before)."""
    log_probs, targets, input_lengths, target_lengths = random_batch(seed)
    ours_in = log_probs.clone().requires_grad_()
    theirs_in = log_probs.clone().requires_grad_()
    args = (targets, input_lengths, target_lengths)
    ours = ctc.ctc_loss(ours_in.log_softmax(-1), *args, reduction=reduction)
    theirs = F.ctc_loss(theirs_in.log_softmax(-1), *args, reduction=reduction)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    ours.sum().backward()
    theirs.sum().backward()
    torch.testing.assert_close(ours_in.grad, theirs_in.grad, rtol=1e-8, atol=1e-10)


def all_alignments_probability(log_probs: torch.Tensor, labels: tuple[int, ...]) -> float:
    """p(labels) summed over every frame path that collapses to them: the definition, enumerated."""
    T, C = log_probs.shape
    total = 0.0
    for path in itertools.product(range(C), repeat=T):
        if tuple(ctc.greedy_decode(F.one_hot(torch.tensor(path), C).float())) == labels:
            total += math.exp(sum(log_probs[t, s].item() for t, s in enumerate(path)))
    return total


def test_loss_is_the_sum_over_alignments() -> None:
    log_probs = torch.randn(5, 1, 3, generator=torch.Generator().manual_seed(1)).log_softmax(-1)
    labels = (1, 1)
    loss = ctc.ctc_loss(
        log_probs, torch.tensor([labels]), torch.tensor([5]), torch.tensor([2]), reduction="sum"
    )
    assert math.exp(-loss.item()) == pytest.approx(
        all_alignments_probability(log_probs[:, 0], labels), rel=1e-5
    )


def test_greedy_decode_merges_repeats_then_drops_blanks() -> None:
    frames = [0, 1, 1, 0, 1, 2, 2, 0, 0, 3]  # 1 1 | 1 2 2 | 3 -> 1 1 2 3
    log_probs = F.one_hot(torch.tensor(frames), 4).float()
    assert ctc.greedy_decode(log_probs) == [1, 1, 2, 3]


def labelling_log_prob(log_probs: torch.Tensor, labels: list[int]) -> float:
    T = log_probs.shape[0]
    target = torch.tensor([labels or [0]])
    loss = ctc.ctc_loss(
        log_probs[:, None], target, torch.tensor([T]), torch.tensor([len(labels)]), reduction="sum"
    )
    return -loss.item()


@pytest.mark.parametrize("seed", range(4))
def test_prefix_beam_search_finds_the_most_probable_labelling(seed: int) -> None:
    """With a wide beam, prefix beam search is exact: its best equals the best of every labelling."""
    g = torch.Generator().manual_seed(seed)
    log_probs = (torch.randn(6, 3, generator=g, dtype=torch.float64) * 2).log_softmax(-1)  # (T, C)
    candidates = [list(p) for n in range(7) for p in itertools.product((1, 2), repeat=n)]
    best = max(candidates, key=lambda labels: labelling_log_prob(log_probs, labels))
    found, score = ctc.prefix_beam_search(log_probs, "ab", beam=64)
    assert found == best
    assert score == pytest.approx(labelling_log_prob(log_probs, best), abs=1e-9)


def test_language_model_changes_the_choice() -> None:
    """Two equally likely symbols: an LM that has only seen "ab" picks b after a."""
    log_probs = torch.tensor([[-9.0, 0.0, -9.0], [-0.01, -9.0, -9.0], [-9.0, math.log(0.5), math.log(0.5)]])
    lm = ctc.CharNgramLM(["ab"] * 20, "ab", order=2)
    with_lm, _ = ctc.prefix_beam_search(log_probs, "ab", beam=4, lm=lm, lm_weight=1.0)
    assert with_lm == [1, 2]
    assert sum(math.exp(lm.log_prob(c, "a")) for c in lm.vocab) == pytest.approx(1.0)


def test_recognizer_learns_a_toy_task() -> None:
    """Frames that spell their labels (one-hot rows, padded): the model learns to read them back."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    targets = torch.randint(1, 4, (32, 3), generator=g)
    features = F.one_hot(targets.repeat_interleave(6, dim=1), 4).float()  # (32, 18, 4)
    features = torch.cat([features, torch.zeros(32, 4, 4)], 1)  # padding frames at the end
    lengths = torch.full((32,), 18)
    model = ctc.CTCRecognizer(4, 3, channels=16, hidden=16, layers=1, dropout=0.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(60):
        logits, loss_value = model(features, lengths, targets)
        opt.zero_grad()
        loss_value.backward()
        opt.step()
    model.eval()
    logits, _ = model(features, lengths)
    assert logits.shape == (32, 11, 4)
    decoded = [ctc.greedy_decode(row[:n]) for row, n in zip(logits, model.output_lengths(lengths))]
    assert sum(d == t.tolist() for d, t in zip(decoded, targets)) >= 30
