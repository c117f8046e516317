"""Checks of lab s5: the length regulator against torch.repeat_interleave, and the Griffin-Lim step against
librosa.griffinlim on the same magnitude (zero initial phase, the same momentum)."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("s5.1")
def test_each_phoneme_is_repeated_for_its_duration(impl) -> None:
    hidden = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    durations = torch.tensor([[2, 0, 3, 1, 1], [1, 1, 1, 0, 0], [0, 4, 0, 0, 2]])
    frames, lengths = impl.length_regulate(hidden, durations)
    assert frames.shape == (3, 7, 4), f"(B, longest total, D) = (3, 7, 4) expected, got {tuple(frames.shape)}"
    assert lengths.tolist() == [7, 3, 6], f"lengths are the durations' sums [7, 3, 6], got {lengths.tolist()}"
    for b in range(3):
        expected = hidden[b].repeat_interleave(durations[b], dim=0)
        n = len(expected)
        assert_close(frames[b, :n], expected, f"row {b}: phoneme i repeated durations[i] times, in order")
        assert frames[b, n:].abs().sum() == 0, f"row {b}: frames past the utterance's end must be zeros"


@pytest.mark.exercise("s5.1")
def test_zero_durations_skip_a_phoneme_and_gradients_reach_every_used_one(impl) -> None:
    hidden = torch.randn(1, 3, 2, requires_grad=True)
    frames, _ = impl.length_regulate(hidden, torch.tensor([[0, 2, 1]]))
    assert_close(frames[0], hidden[0, [1, 1, 2]].detach(), "a phoneme of 0 frames is left out")
    frames.sum().backward()
    expected = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])
    assert_close(hidden.grad[0], expected, "each phoneme's gradient is the sum over its frames (gather)")


@pytest.mark.exercise("s5.2")
def test_griffin_lim_matches_librosa(impl) -> None:
    wave = np.random.default_rng(0).standard_normal(4000)
    magnitude = np.abs(librosa.stft(wave, n_fft=256, hop_length=64))
    for n_iter in (1, 2, 8):
        ours = impl.griffin_lim(torch.from_numpy(magnitude), 256, 64, n_iter=n_iter).numpy()
        theirs = librosa.griffinlim(magnitude, n_iter=n_iter, hop_length=64, n_fft=256, init=None)
        assert_close(
            ours,
            theirs,
            f"{n_iter} iterations: rebuild, subtract momentum/(1+momentum) of the last",
            atol=1e-8,
        )


@pytest.mark.exercise("s5.2")
def test_griffin_lim_finds_a_consistent_phase(impl) -> None:
    t = np.arange(6000) / 8000
    wave = np.sin(2 * np.pi * 440 * t) + 0.5 * np.sin(2 * np.pi * 1250 * t)
    magnitude = torch.from_numpy(np.abs(librosa.stft(wave, n_fft=256, hop_length=64)))

    def spectral_error(n_iter: int) -> float:
        rebuilt = impl.griffin_lim(magnitude, 256, 64, n_iter=n_iter)
        found = torch.from_numpy(np.abs(librosa.stft(rebuilt.numpy(), n_fft=256, hop_length=64)))
        return float((found - magnitude[:, : found.shape[1]]).norm() / magnitude.norm())

    few, many = spectral_error(2), spectral_error(30)
    assert many < 0.5 * few, (
        f"more iterations must bring |STFT| closer to the target: {few:.3f} -> {many:.3f}"
    )
