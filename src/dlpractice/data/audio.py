"""Audio I/O and features: STFT, mel filterbank, log-mel, MFCC, deltas, SpecAugment, noise at an SNR.

Everything is computed with `torch` (the STFT is `torch.stft`) and our own mel filterbank, and each
feature matches `librosa`'s default on the same input (checked in tests/data/test_audio.py):

    stft(wave, n_fft, hop)           == librosa.stft(wave, n_fft=, hop_length=)        (center, zero pad)
    mel_filterbank(sr, n_fft, n)     == librosa.filters.mel(sr=, n_fft=, n_mels=)      (Slaney scale + norm)
    mel_spectrogram(wave, sr, ...)   == librosa.feature.melspectrogram(y=, sr=, ...)   (power 2)
    log_mel(wave, sr, ...)           == librosa.power_to_db(melspectrogram(...))       (ref 1, top_db 80)
    mfcc(wave, sr, n_mfcc, ...)      == librosa.feature.mfcc(y=, sr=, n_mfcc=, ...)    (DCT-II, ortho)
    deltas(features, width, order)   == librosa.feature.delta(features, width=, order=)

Waves are float tensors shaped (B, T) or (T,); features come back (B, n, frames) or (n, frames).
Simplified: mono only, Slaney mel scale only (no HTK), `power_to_db` with `ref=1.0`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from dlpractice.errors import DlpError

# The defaults of the speech labs: 25 ms windows every 10 ms at 16 kHz, and the same shares at 22.05 kHz.
N_FFT = 512
HOP = 160


def load_audio(path: str | Path, sr: int | None = None) -> tuple[np.ndarray, int]:
    """A sound file as a mono float32 wave (T,) in [-1, 1] and its sample rate (resampled to `sr`)."""
    try:
        wave, file_sr = sf.read(str(path), dtype="float32", always_2d=True)  # (T, channels)
    except (sf.LibsndfileError, RuntimeError, OSError) as err:
        raise DlpError(f"cannot read audio file {path}: {err}") from None
    mono = wave.mean(axis=1)
    if sr is not None and sr != file_sr:
        return resample(mono, file_sr, sr), sr
    return mono, file_sr


def save_audio(path: str | Path, wave: np.ndarray | torch.Tensor, sr: int) -> Path:
    """Write a mono wave (T,) as 16-bit PCM WAV, clipped to [-1, 1]."""
    samples = np.clip(np.asarray(wave, dtype=np.float32).reshape(-1), -1.0, 1.0)
    path = Path(path)
    sf.write(str(path), samples, sr, subtype="PCM_16")
    return path


def resample(wave: np.ndarray, sr: int, target_sr: int) -> np.ndarray:
    """`librosa.resample` (soxr, high quality) as float32: the one resampler every lab uses."""
    import librosa

    return librosa.resample(np.asarray(wave, dtype=np.float32), orig_sr=sr, target_sr=target_sr)


def as_batch(wave: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, bool]:
    """(B, T) float tensor, and whether the input was a single (T,) wave to squeeze back."""
    wave = torch.as_tensor(wave)
    if not wave.is_floating_point():
        raise DlpError(f"audio must be a float wave, got dtype {wave.dtype}")
    if wave.dim() not in (1, 2):
        raise DlpError(f"audio must be shaped (T,) or (B, T), got {tuple(wave.shape)}")
    return (wave.unsqueeze(0), True) if wave.dim() == 1 else (wave, False)


def stft(wave: torch.Tensor, n_fft: int = N_FFT, hop_length: int = HOP) -> torch.Tensor:
    """Complex STFT (B, n_fft // 2 + 1, frames): periodic Hann window, centred frames, zero padding."""
    batch, single = as_batch(wave)
    window = torch.hann_window(n_fft, dtype=batch.dtype, device=batch.device)
    # librosa pads with zeros since 0.10 (torch's default is "reflect"), so frame t is centred on t * hop.
    spec = torch.stft(
        batch,
        n_fft,
        hop_length=hop_length,
        window=window,
        center=True,
        pad_mode="constant",
        return_complex=True,
    )  # (B, F, frames)
    return spec[0] if single else spec


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """Slaney's mel scale: linear (3 mels / 200 Hz) below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    log_part = 15.0 + np.log(np.maximum(hz, 1e-10) / 1000.0) / (math.log(6.4) / 27.0)
    return np.where(hz >= 1000.0, log_part, linear)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of `hz_to_mel`."""
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    log_part = 1000.0 * np.exp((math.log(6.4) / 27.0) * (mel - 15.0))
    return np.where(mel >= 15.0, log_part, linear)


def mel_filterbank(
    sr: int, n_fft: int, n_mels: int, fmin: float = 0.0, fmax: float | None = None
) -> torch.Tensor:
    """Triangular mel filters (n_mels, n_fft // 2 + 1), float32, each with unit area (Slaney norm).

    Filter m rises from centre m - 1 to centre m and falls to centre m + 1, where the n_mels + 2
    centres are evenly spaced on the mel scale between fmin and fmax (default sr / 2).
    """
    fmax = sr / 2 if fmax is None else fmax
    # BEGIN EXERCISE s1.1: n_mels + 2 edges evenly spaced in mel, triangles over the bins, unit area
    bin_hz = np.fft.rfftfreq(n_fft, d=1.0 / sr)  # (F,) frequency of each STFT bin
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))  # (n_mels + 2,)
    widths = np.diff(edges_hz)  # (n_mels + 1,)
    offsets = edges_hz[:, None] - bin_hz[None, :]  # (n_mels + 2, F): edge minus bin frequency
    rising = -offsets[:-2] / widths[:-1, None]  # (n_mels, F): 0 at the left edge, 1 at the centre
    falling = offsets[2:] / widths[1:, None]  # (n_mels, F): 1 at the centre, 0 at the right edge
    weights = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2:] - edges_hz[:-2]))[:, None]  # unit area: wide filters are lower
    # END EXERCISE
    return torch.from_numpy(weights).float()


def mel_spectrogram(
    wave: torch.Tensor,
    sr: int,
    n_mels: int = 40,
    n_fft: int = N_FFT,
    hop_length: int = HOP,
    fmin: float = 0.0,
    fmax: float | None = None,
) -> torch.Tensor:
    """Mel power spectrogram (B, n_mels, frames): |STFT|^2 through the mel filterbank."""
    power = stft(wave, n_fft, hop_length).abs() ** 2  # (B, F, frames)
    filters = mel_filterbank(sr, n_fft, n_mels, fmin, fmax).to(power.dtype)  # (n_mels, F)
    return filters @ power


def power_to_db(power: torch.Tensor, amin: float = 1e-10, top_db: float | None = 80.0) -> torch.Tensor:
    """10 log10(power), floored at amin and at `top_db` below each example's maximum (like librosa)."""
    db = 10.0 * torch.log10(power.clamp_min(amin))
    if top_db is None:
        return db
    peak = db.flatten(-2).amax(-1)[..., None, None]  # per example: (B, 1, 1) or (1, 1)
    return torch.maximum(db, peak - top_db)


def log_mel(
    wave: torch.Tensor,
    sr: int,
    n_mels: int = 40,
    n_fft: int = N_FFT,
    hop_length: int = HOP,
    top_db: float | None = 80.0,
) -> torch.Tensor:
    """Log-mel spectrogram in dB (B, n_mels, frames)."""
    return power_to_db(mel_spectrogram(wave, sr, n_mels, n_fft, hop_length), top_db=top_db)


def dct_matrix(n_out: int, n_in: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Orthonormal DCT-II (n_out, n_in): row k is the k-th cosine, so `dct @ x` decorrelates a spectrum."""
    n = torch.arange(n_in, dtype=torch.float64)
    k = torch.arange(n_out, dtype=torch.float64)[:, None]
    basis = torch.cos(math.pi / n_in * (n + 0.5) * k) * math.sqrt(2.0 / n_in)
    basis[0] /= math.sqrt(2.0)
    return basis.to(dtype)


def mfcc(
    wave: torch.Tensor,
    sr: int,
    n_mfcc: int = 13,
    n_mels: int = 40,
    n_fft: int = N_FFT,
    hop_length: int = HOP,
) -> torch.Tensor:
    """MFCCs (B, n_mfcc, frames): the DCT of the log-mel spectrogram, keeping the first n_mfcc cosines."""
    db = log_mel(wave, sr, n_mels, n_fft, hop_length)  # (B, n_mels, frames)
    return dct_matrix(n_mfcc, n_mels, db.dtype) @ db


def deltas(features: torch.Tensor, width: int = 9, order: int = 1) -> torch.Tensor:
    """Derivative along the last (time) axis: a Savitzky-Golay fit of degree `order` over `width` frames.

    Inside, frame t gets the `order`-th derivative of the least-squares polynomial through frames
    t - width // 2 .. t + width // 2. That derivative is constant over one window, so the first and
    last width // 2 frames take the value of the nearest full window (librosa's mode="interp").
    """
    if width < 3 or width % 2 == 0:
        raise DlpError(f"deltas width must be odd and >= 3, got {width}")
    if features.shape[-1] < width:
        raise DlpError(f"deltas need at least width={width} frames, got {features.shape[-1]}")
    half = width // 2
    offsets = np.arange(-half, half + 1, dtype=np.float64)
    vandermonde = offsets[:, None] ** np.arange(order + 1)  # (width, order + 1)
    # Row `order` of the pseudo-inverse: the fit's order-th coefficient; times order! = the derivative.
    taps = np.linalg.pinv(vandermonde)[order] * math.factorial(order)  # (width,)
    kernel = torch.as_tensor(taps, dtype=features.dtype)
    windows = features.unfold(-1, width, 1)  # (..., frames - width + 1, width)
    inner = windows @ kernel  # (..., frames - width + 1)
    left = inner[..., :1].expand(*inner.shape[:-1], half)
    right = inner[..., -1:].expand(*inner.shape[:-1], half)
    return torch.cat([left, inner, right], dim=-1)


def random_band(size: int, max_width: int, generator: torch.Generator) -> tuple[int, int]:
    """(start, width) of a band of width 0..max_width that fits in `size` positions."""
    width = int(torch.randint(0, min(max_width, size) + 1, (1,), generator=generator))
    start = int(torch.randint(0, size - width + 1, (1,), generator=generator))
    return start, width


def spec_augment(
    spec: torch.Tensor,
    generator: torch.Generator,
    freq_masks: int = 2,
    max_freq_width: int = 8,
    time_masks: int = 2,
    max_time_width: int = 20,
    fill: float | None = None,
) -> torch.Tensor:
    """SpecAugment (Park et al., 2019) without time warping: zero out random bands of channels and frames.

    `spec` is (B, n_mels, frames); each example gets its own masks of width 0..max_width, filled with
    `fill` (default: the example's mean, so a log spectrogram is not pushed towards -inf).
    """
    out = spec.clone()
    for example in out:  # (n_mels, frames), a view: masking it masks `out`
        value = example.mean() if fill is None else fill
        for _ in range(freq_masks):
            start, width = random_band(example.shape[0], max_freq_width, generator)
            example[start : start + width, :] = value
        for _ in range(time_masks):
            start, width = random_band(example.shape[1], max_time_width, generator)
            example[:, start : start + width] = value
    return out


def add_noise(
    signal: np.ndarray, noise: np.ndarray, snr_db: float, active: np.ndarray | None = None
) -> np.ndarray:
    """signal + noise scaled so that 10 log10(P_signal / P_noise) = snr_db; noise is tiled/cut to length.

    `active` (bool, like `signal`) measures the signal's power only where it is True (e.g. where
    speech sounds), so the SNR of a recording does not depend on how much silence it holds.
    """
    signal = np.asarray(signal, dtype=np.float32)
    noise = np.resize(np.asarray(noise, dtype=np.float32), signal.shape)  # repeats a short noise
    measured = signal if active is None else signal[active]
    signal_power = float(np.mean(np.square(measured, dtype=np.float64))) if measured.size else 0.0
    noise_power = float(np.mean(np.square(noise, dtype=np.float64)))
    if noise_power == 0.0:
        raise DlpError("noise is silent: cannot scale it to an SNR")
    scale = math.sqrt(signal_power / (noise_power * 10.0 ** (snr_db / 10.0)))
    return (signal + scale * noise).astype(np.float32)


def snr_db(signal: np.ndarray, noise: np.ndarray) -> float:
    """The measured SNR of a signal and the noise added to it, in dB."""
    return 10.0 * math.log10(
        float(np.mean(np.square(signal, dtype=np.float64)))
        / float(np.mean(np.square(noise, dtype=np.float64)))
    )


def librosa_differences(wave: np.ndarray, sr: int, n_mels: int = 40, n_mfcc: int = 13) -> dict[str, float]:
    """Largest |ours - librosa| of each feature on the same wave (float64), with librosa's defaults."""
    import librosa

    y = np.asarray(wave, dtype=np.float64)
    x = torch.from_numpy(y)
    options = {"n_fft": N_FFT, "hop_length": HOP}
    mel = librosa.feature.melspectrogram(y=y, sr=sr, n_mels=n_mels, **options)
    coefficients = librosa.feature.mfcc(y=y, sr=sr, n_mfcc=n_mfcc, n_mels=n_mels, **options)
    pairs = {
        "stft": (stft(x).numpy(), librosa.stft(y, **options)),
        "mel_filterbank": (
            mel_filterbank(sr, N_FFT, n_mels).numpy(),
            librosa.filters.mel(sr=sr, n_fft=N_FFT, n_mels=n_mels),
        ),
        "mel_spectrogram": (mel_spectrogram(x, sr, n_mels).numpy(), mel),
        "log_mel_db": (log_mel(x, sr, n_mels).numpy(), librosa.power_to_db(mel)),
        "mfcc": (mfcc(x, sr, n_mfcc, n_mels).numpy(), coefficients),
        "delta": (deltas(torch.from_numpy(coefficients)).numpy(), librosa.feature.delta(coefficients)),
    }
    return {name: float(np.abs(ours - theirs).max()) for name, (ours, theirs) in pairs.items()}
