"""Checks of lab s3: attentive statistics pooling (each channel's softmax-weighted mean and std over time,
against the weighted moments written out with numpy) and DER's speaker matching (the one-to-one mapping
with the most shared time, against every permutation)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close

FLOOR = 1e-5  # the variance floor the docstring names


def expected_pooling(h: torch.Tensor, attention: torch.Tensor) -> np.ndarray:
    h64, a64 = h.double().numpy(), attention.double().numpy()
    weights = np.exp(a64 - a64.max(-1, keepdims=True))
    weights /= weights.sum(-1, keepdims=True)  # softmax over time, per example and channel
    mean = (weights * h64).sum(-1)
    variance = (weights * (h64 - mean[..., None]) ** 2).sum(-1)
    return np.concatenate([mean, np.sqrt(variance + FLOOR)], axis=1)


@pytest.mark.exercise("s3.1")
def test_attentive_pooling_weights_frames_by_a_softmax_over_time(impl):
    torch.manual_seed(0)
    h, attention = torch.randn(2, 3, 9) * 2 + 1, torch.randn(2, 3, 9) * 3  # (B, C, T) each
    got = impl.attentive_statistics_pooling(h, attention)
    assert tuple(got.shape) == (2, 6), f"expected (B, 2C) = (2, 6), got {tuple(got.shape)}"
    assert_close(
        got.double().numpy(),
        expected_pooling(h, attention),
        "w = softmax(attention) over time per channel; mean = sum w h; std = sqrt(sum w (h - mean)^2 + 1e-5)",
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.exercise("s3.1")
def test_equal_attention_gives_plain_statistics(impl):
    torch.manual_seed(1)
    h = torch.randn(3, 4, 11)
    got = impl.attentive_statistics_pooling(h, torch.zeros_like(h))
    std, mean = torch.std_mean(h, dim=-1, unbiased=False)
    assert_close(
        got,
        torch.cat([mean, (std**2 + FLOOR).sqrt()], dim=1),
        "with all attention logits equal, the plain mean and population std over time",
        rtol=1e-4,
        atol=1e-5,
    )


@pytest.mark.exercise("s3.1")
def test_one_dominant_frame_takes_the_mean_and_leaves_no_spread(impl):
    h = torch.arange(12.0).reshape(1, 2, 6)
    attention = torch.full((1, 2, 6), -50.0)
    attention[0, 0, 4], attention[0, 1, 1] = 50.0, 50.0  # each channel looks at one frame only
    got = impl.attentive_statistics_pooling(h, attention)
    expected = torch.tensor([[4.0, 7.0, FLOOR**0.5, FLOOR**0.5]])
    assert_close(
        got, expected, "the softmax is over time (the last axis), for each channel alone", atol=1e-4, rtol=0
    )


def best_total(overlap: np.ndarray) -> float:
    rows, columns = overlap.shape
    if rows > columns:
        return best_total(overlap.T)
    return max(
        sum(overlap[r, p[r]] for r in range(rows)) for p in itertools.permutations(range(columns), rows)
    )


def check_mapping(pairs, overlap: np.ndarray) -> None:
    pairs = [(int(r), int(h)) for r, h in pairs]
    assert len({r for r, _ in pairs}) == len(pairs), f"each reference speaker maps once: {pairs}"
    assert len({h for _, h in pairs}) == len(pairs), f"each hypothesis speaker maps once: {pairs}"
    got = sum(overlap[r, h] for r, h in pairs)
    assert got == pytest.approx(best_total(overlap)), (
        f"the mapping should share the most time: {best_total(overlap)} s, got {got} s with {pairs}"
    )


@pytest.mark.exercise("s3.2")
def test_mapping_beats_greedy_matching(impl):
    overlap = np.array([[5.0, 4.0, 0.0], [4.0, 0.0, 0.0], [0.0, 3.0, 1.0]])  # greedy: 5 + 0 + 1 = 6 < 9
    check_mapping(impl.speaker_mapping(overlap), overlap)


@pytest.mark.exercise("s3.2")
def test_mapping_with_more_or_fewer_hypothesis_speakers(impl):
    rng = np.random.default_rng(0)
    for shape in ((2, 4), (4, 2), (3, 3)):
        overlap = rng.uniform(0, 10, size=shape).round(2)
        check_mapping(impl.speaker_mapping(overlap), overlap)


@pytest.mark.exercise("s3.2")
def test_speakers_that_never_talk_together_are_not_paired(impl):
    overlap = np.array([[3.0, 0.0], [0.0, 0.0]])  # reference speaker 1 was never found
    pairs = [(int(r), int(h)) for r, h in impl.speaker_mapping(overlap)]
    assert pairs == [(0, 0)], f"a pair that shares no time maps nothing; expected [(0, 0)], got {pairs}"
