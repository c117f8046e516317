"""Figures of audio and its features: a waveform with its phonemes, spectrograms, the mel filterbank,
MFCCs and deltas, SpecAugment masks, and one utterance under several noises. Each returns matplotlib
figures for a run's report (`ctx.figure`)."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.data.audio import (
    HOP,
    N_FFT,
    deltas,
    log_mel,
    mel_filterbank,
    mfcc,
    power_to_db,
    spec_augment,
    stft,
)
from dlpractice.data.speech import Utterance, degrade


def show_spectrogram(ax: plt.Axes, values: np.ndarray, sr: int, title: str, ylabel: str) -> None:
    """(channels, frames) as an image, time in seconds on x."""
    seconds = values.shape[-1] * HOP / sr
    image = ax.imshow(
        values, origin="lower", aspect="auto", cmap="magma", extent=(0, seconds, 0, values.shape[0])
    )
    ax.set(title=title, ylabel=ylabel)
    plt.colorbar(image, ax=ax, pad=0.01)


def feature_figures(utt: Utterance, n_mels: int) -> list[tuple[str, plt.Figure, str]]:
    """(name, figure, title): waveform + phonemes, STFT, mel filterbank, log-mel, MFCC + deltas."""
    wave = torch.from_numpy(utt.audio)
    out = []

    fig, ax = plt.subplots(figsize=(11, 3))
    ax.plot(np.arange(len(utt.audio)) / utt.sr, utt.audio, lw=0.5, color="tab:blue")
    for i, p in enumerate(utt.phonemes):  # alternate shading so neighbouring phonemes stay apart
        ax.axvspan(p.start / utt.sr, p.end / utt.sr, color="tab:orange", alpha=0.12 if i % 2 else 0.25, lw=0)
        ax.text(
            (p.start + p.end) / 2 / utt.sr, 0.92 * np.abs(utt.audio).max(), p.symbol, ha="center", fontsize=8
        )
    ax.set(
        title=f'"{utt.text}" ({utt.speaker.name}), phonemes from eSpeak', xlabel="seconds", ylabel="amplitude"
    )
    out.append(("waveform", fig, "Waveform and phoneme spans"))

    fig, axes = plt.subplots(3, 1, figsize=(9, 6.5), sharex=True)
    power_db = power_to_db(stft(wave, N_FFT, HOP).abs()[None] ** 2)[0].numpy()  # (F, frames)
    show_spectrogram(axes[0], power_db, utt.sr, f"|STFT|² in dB ({N_FFT}-point, hop {HOP})", "FFT bin")
    show_spectrogram(
        axes[1], log_mel(wave, utt.sr, n_mels).numpy(), utt.sr, f"log-mel ({n_mels} bands)", "mel band"
    )
    coefficients = mfcc(wave, utt.sr, 13, n_mels)  # (13, frames)
    stacked = torch.cat([coefficients, deltas(coefficients), deltas(coefficients, order=2)])  # (39, frames)
    normalised = (stacked - stacked.mean(-1, keepdim=True)) / (stacked.std(-1, keepdim=True) + 1e-8)
    show_spectrogram(
        axes[2], normalised.numpy(), utt.sr, "MFCC 0-12, Δ, ΔΔ (each row standardised)", "coefficient"
    )
    axes[2].set_xlabel("seconds")
    out.append(("spectrograms", fig, "STFT, log-mel, MFCC and deltas"))

    fig, ax = plt.subplots(figsize=(11, 3))
    filters = mel_filterbank(utt.sr, N_FFT, n_mels).numpy()
    hz = np.fft.rfftfreq(N_FFT, 1 / utt.sr)
    ax.plot(hz, filters.T, lw=0.8)
    ax.set(title=f"Mel filterbank: {n_mels} triangles, unit area (Slaney)", xlabel="Hz", ylabel="weight")
    out.append(("mel_filterbank", fig, "The mel filterbank"))
    return out


def augmentation_figure(utt: Utterance, n_mels: int, seed: int) -> plt.Figure:
    """The log-mel spectrogram before and after SpecAugment (two frequency and two time masks)."""
    spec = log_mel(torch.from_numpy(utt.audio), utt.sr, n_mels)[None]  # (1, n_mels, frames)
    masked = spec_augment(spec, torch.Generator().manual_seed(seed), 2, 8, 2, 25)
    fig, axes = plt.subplots(2, 1, figsize=(9, 4), sharex=True)
    show_spectrogram(axes[0], spec[0].numpy(), utt.sr, "log-mel", "mel band")
    show_spectrogram(
        axes[1], masked[0].numpy(), utt.sr, "after SpecAugment (masks filled with the mean)", "mel band"
    )
    axes[1].set_xlabel("seconds")
    return fig


def noise_figure(
    utt: Utterance, n_mels: int, rng: np.random.Generator
) -> tuple[plt.Figure, dict[str, np.ndarray]]:
    """Log-mel of the utterance under white, babble, music noise at 10 dB and in a 0.5 s room; the waves."""
    versions = {
        f"{kind}_10db": degrade(utt, rng, kind, 10.0, None).audio for kind in ("white", "babble", "music")
    }
    versions["reverb_0.5s"] = degrade(utt, rng, None, None, 0.5).audio
    fig, axes = plt.subplots(len(versions), 1, figsize=(9, 1.8 * len(versions)), sharex=True)
    for ax, (name, wave) in zip(axes, versions.items(), strict=True):
        show_spectrogram(
            ax, log_mel(torch.from_numpy(wave), utt.sr, n_mels).numpy(), utt.sr, name, "mel band"
        )
    axes[-1].set_xlabel("seconds")
    return fig, versions
