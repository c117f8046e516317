"""The TTS models of lab s5: the length regulator, FastSpeech and Tacotron's shapes, masks and losses, the
location-sensitive attention, and Griffin-Lim with the mel inversion against librosa on the same input."""

from __future__ import annotations

import librosa
import numpy as np
import pytest
import torch

from dlpractice.data.audio import mel_spectrogram, power_to_db
from dlpractice.models import tts


def test_length_regulator_repeats_each_phoneme_for_its_duration() -> None:
    hidden = torch.randn(2, 4, 3)
    durations = torch.tensor([[1, 0, 2, 3], [2, 2, 0, 0]])
    frames, lengths = tts.length_regulate(hidden, durations)
    assert frames.shape == (2, 6, 3) and lengths.tolist() == [6, 4]
    torch.testing.assert_close(frames[0], hidden[0].repeat_interleave(durations[0], 0))
    torch.testing.assert_close(frames[1, :4], hidden[1].repeat_interleave(durations[1], 0))
    assert frames[1, 4:].abs().sum() == 0


def test_griffin_lim_matches_librosa_on_the_same_magnitude() -> None:
    wave = np.random.default_rng(1).standard_normal(6000)
    magnitude = np.abs(librosa.stft(wave, n_fft=512, hop_length=128))
    ours = tts.griffin_lim(torch.from_numpy(magnitude), 512, 128, n_iter=12).numpy()
    theirs = librosa.griffinlim(magnitude, n_iter=12, hop_length=128, n_fft=512, init=None)
    np.testing.assert_allclose(ours, theirs, atol=1e-9)


def test_the_mel_inversion_fits_the_mel_as_well_as_librosas_nnls() -> None:
    """Many spectra share a mel spectrum; what matters is that the one found has the given mel: the
    pseudo-inverse with negatives clipped fits it as closely as librosa's non-negative least squares."""
    t = np.arange(8000) / 22050
    noise = 0.05 * np.random.default_rng(0).standard_normal(8000)
    wave = torch.tensor(np.sin(2 * np.pi * 300 * t) * np.exp(-3 * t) + noise, dtype=torch.float64)
    db = power_to_db(mel_spectrogram(wave, 22050, 40, 1024, 256), top_db=None)  # (40, T)
    ours = tts.mel_to_magnitude(db, 22050, 1024).numpy()
    theirs = librosa.feature.inverse.mel_to_stft(10 ** (db.numpy() / 10), sr=22050, n_fft=1024)
    filters = librosa.filters.mel(sr=22050, n_fft=1024, n_mels=40)

    def misfit_db(magnitude: np.ndarray) -> float:
        again = librosa.power_to_db(filters @ magnitude**2, top_db=None)
        return float(np.abs(again - db.numpy()).mean())

    assert misfit_db(ours) < misfit_db(theirs) + 0.05
    assert misfit_db(ours) < 1.0


def batch(vocab: int = 9, n_mels: int = 6) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids = torch.tensor([[3, 4, 5, 6], [2, 7, 0, 0]])
    durations = torch.tensor([[2, 3, 1, 4], [3, 2, 0, 0]])
    mel = torch.randn(2, 10, n_mels, generator=torch.Generator().manual_seed(0))
    mel[1, 5:] = 0
    return ids, durations, mel


def test_fastspeech_frames_follow_the_durations_and_padding_does_not_count() -> None:
    torch.manual_seed(0)
    model = tts.FastSpeech(9, 6, d=16, heads=2, layers=1, postnet=8).eval()
    ids, durations, mel = batch()
    out, loss = model(ids, durations, mel)
    assert out.shape == (2, 10, 6) and torch.isfinite(loss)
    assert out[1, 5:].abs().sum() == 0  # the second utterance has 5 frames
    changed = mel.clone()
    changed[1, 5:] = 100.0  # padding frames of the target: no effect on the loss
    assert torch.allclose(model(ids, durations, changed)[1], loss)
    alone, _ = model(ids[1:, :2], durations[1:, :2], mel[1:, :5])
    torch.testing.assert_close(alone[0], out[1, :5], atol=1e-5, rtol=1e-4)  # padding changes no output
    synthesized, predicted = model.synthesize(ids[0])
    assert synthesized.shape == (int(predicted.sum()), 6) and len(predicted) == 4


def test_fastspeech_learns_a_batch() -> None:
    torch.manual_seed(0)
    model = tts.FastSpeech(9, 6, d=16, heads=2, layers=1, dropout=0.0, postnet=8)
    optimiser = torch.optim.Adam(model.parameters(), 3e-3)
    ids, durations, mel = batch()
    first = model(ids, durations, mel)[1].item()
    for _ in range(60):
        loss = model(ids, durations, mel)[1]
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    assert loss.item() < 0.6 * first


def test_location_sensitive_attention_ignores_padding() -> None:
    attention = tts.LocationSensitiveAttention(8, 4, dim=6, filters=3, kernel=5)
    memory = torch.randn(2, 5, 4)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    context, weights = attention(
        torch.randn(2, 8), attention.memory(memory), memory, torch.zeros(2, 2, 5), mask
    )
    assert context.shape == (2, 4)
    torch.testing.assert_close(weights.sum(1), torch.ones(2))
    assert weights[1, 3:].sum() == 0
    torch.testing.assert_close(context[1], weights[1] @ memory[1])


def test_guided_attention_prefers_the_diagonal() -> None:
    eye = torch.eye(6)[None]  # step t attends to phoneme t
    backwards = eye.flip(2)
    lengths = torch.tensor([6])
    assert tts.guided_attention_loss(eye, lengths, lengths) < 0.01
    assert tts.guided_attention_loss(backwards, lengths, lengths) > 0.1  # most rows far off: 0.75 / 6


def test_tacotron_teacher_forced_shapes_and_free_running_synthesis() -> None:
    torch.manual_seed(0)
    model = tts.Tacotron(9, 6, d=16, rnn=16, reduction=2, postnet=8)
    ids, durations, mel = batch()
    out, loss = model(ids, durations, mel)
    assert out.shape == mel.shape and torch.isfinite(loss)
    assert model.alignments.shape == (2, 5, 4)  # 10 frames / 2 per step; 4 phonemes
    torch.testing.assert_close(model.alignments.sum(-1), torch.ones(2, 5))
    assert model.alignments[1, :, 2:].sum() == 0  # never on the second utterance's padding
    model.eval()
    frames, alignment = model.synthesize(ids[0], max_steps=7)
    assert frames.shape == (2 * len(alignment), 6) and 1 <= len(alignment) <= 7


@pytest.mark.parametrize("reduction", [1, 3])
def test_tacotron_steps_cover_every_frame(reduction: int) -> None:
    model = tts.Tacotron(9, 6, d=16, rnn=16, reduction=reduction, postnet=8)
    ids, durations, mel = batch()
    out, _ = model(ids, durations, mel)
    assert out.shape == mel.shape
    assert model.alignments.shape[1] == -(-10 // reduction)
