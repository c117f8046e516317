"""Checks of lab s1: the mel filterbank, against librosa.filters.mel on the same settings."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("s1.1")
@pytest.mark.parametrize(
    "sr, n_fft, n_mels, fmin, fmax", [(16000, 512, 40, 0.0, None), (22050, 1024, 80, 60.0, 7600.0)]
)
def test_mel_filterbank_matches_librosa(impl, sr, n_fft, n_mels, fmin, fmax) -> None:
    """Slaney-scale triangles with unit area, one row per mel band, one column per STFT bin."""
    filters = impl.mel_filterbank(sr, n_fft, n_mels, fmin, fmax)
    assert isinstance(filters, torch.Tensor), f"return a torch.Tensor, got {type(filters).__name__}"
    assert tuple(filters.shape) == (n_mels, n_fft // 2 + 1), (
        f"expected shape (n_mels, n_fft // 2 + 1) = {(n_mels, n_fft // 2 + 1)}, got {tuple(filters.shape)}"
    )
    expected = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=fmax)
    peaks = filters.numpy().argmax(1)
    assert np.array_equal(peaks, expected.argmax(1)), (
        "the filters peak at the wrong bins: space the n_mels + 2 edges evenly in mel, not in Hz"
    )
    assert_close(
        filters.double(),
        torch.from_numpy(expected).double(),
        "each filter should be a triangle scaled to unit area, 2 / (right edge - left edge) in Hz",
        atol=1e-5 * float(expected.max()),
        rtol=0,
    )
