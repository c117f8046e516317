"""Voice-activity detectors on a 10 ms frame grid at 16 kHz: an energy threshold, a small learned frame
classifier, and silero-vad (the packaged model) as the pretrained reference.

Frame t of a recording is centred on sample t * HOP (16 kHz), as `data.audio.stft` centres its frames,
so every detector's decisions line up with `Recording.frame_labels(HOP / SR, n_frames)`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import torch
from scipy.ndimage import median_filter
from sklearn.metrics import f1_score
from torch import nn

from dlpractice.data.audio import power_to_db, stft
from dlpractice.data.speech import intervals_mask
from dlpractice.errors import DlpError

SR = 16000  # silero-vad's rate; the others follow it so that all see the same audio
HOP = 160  # 10 ms
SILERO_CHUNK = 512  # silero scores 32 ms chunks at 16 kHz
MARGINS_DB = tuple(np.arange(1.0, 30.0, 0.5))  # the energy VAD's candidate thresholds above the floor


def frame_energy_db(wave: torch.Tensor, n_fft: int = 400) -> torch.Tensor:
    """Energy of each 25 ms frame in dB (frames,), on the HOP grid."""
    power = stft(wave, n_fft, HOP).abs().pow(2).mean(-2)  # (frames,)
    return power_to_db(power[None], top_db=None)[0]


def energy_vad(energy_db: np.ndarray, margin_db: float, smooth: int = 11) -> np.ndarray:
    """Speech where a frame is `margin_db` above the recording's noise floor (its 10th-percentile frame),
    then a median filter over `smooth` frames removes isolated flips. (frames,) int64."""
    floor = np.percentile(energy_db, 10)
    decisions = (energy_db > floor + margin_db).astype(np.int64)
    return median_filter(decisions, size=smooth, mode="nearest")


def tune_energy_margin(
    energies: list[np.ndarray], labels: list[np.ndarray], margins: tuple[float, ...] = MARGINS_DB
) -> tuple[float, float]:
    """The margin (dB) with the best pooled frame F1 on these recordings, and that F1."""
    truth = np.concatenate(labels)
    scores = [frame_f1(truth, np.concatenate([energy_vad(e, m) for e in energies])) for m in margins]
    best = int(np.argmax(scores))
    return float(margins[best]), float(scores[best])


def frame_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    """F1 of the speech class over frames (scikit-learn)."""
    return float(f1_score(truth, predicted, zero_division=0.0))


class FrameVAD(nn.Module):
    """Log-mel frames in, a speech logit per frame out: dilated 1-D convolutions over time.

    Input normalisation is a BatchNorm over mel channels (running statistics at test time). Four layers
    with dilations 1, 2, 4, 8 and kernel 5 see 61 frames (0.6 s) around each frame, enough to tell a
    vowel from a burst of noise by its context. Padding keeps one output per input frame.
    """

    def __init__(self, n_mels: int = 40, channels: int = 64, layers: int = 4, kernel: int = 5):
        super().__init__()
        self.norm = nn.BatchNorm1d(n_mels)
        blocks: list[nn.Module] = []
        width = n_mels
        for i in range(layers):
            dilation = 2**i
            blocks += [
                nn.Conv1d(width, channels, kernel, padding=dilation * (kernel - 1) // 2, dilation=dilation),
                nn.BatchNorm1d(channels),
                nn.ReLU(),
            ]
            width = channels
        self.body = nn.Sequential(*blocks)
        self.head = nn.Conv1d(channels, 1, 1)

    def forward(
        self, features: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """features (B, n_mels, T), targets (B, T) in {0, 1} (-1 = padding) -> logits (B, T), loss."""
        logits = self.head(self.body(self.norm(features)))[:, 0]  # (B, T)
        if targets is None:
            return logits, None
        keep = targets >= 0
        loss = nn.functional.binary_cross_entropy_with_logits(logits[keep], targets[keep].float())
        return logits, loss


def load_silero() -> torch.jit.ScriptModule:
    """silero-vad's packaged TorchScript model (no download)."""
    try:
        from silero_vad import load_silero_vad
    except ImportError:
        raise DlpError("silero-vad is not installed: pip install 'dlpractice[speech]'") from None
    return load_silero_vad()


def silero_probabilities(model, wave: np.ndarray) -> np.ndarray:
    """Speech probability of each 32 ms chunk of a 16 kHz wave (chunks,)."""
    model.reset_states()
    with torch.no_grad():
        return model.audio_forward(torch.from_numpy(np.ascontiguousarray(wave, np.float32)), SR)[0].numpy()


def silero_frames(probs: np.ndarray, n_frames: int, threshold: float = 0.5) -> np.ndarray:
    """Chunk probabilities above `threshold`, read at each 10 ms frame's centre. (n_frames,) int64."""
    chunk = np.minimum(np.arange(n_frames) * HOP // SILERO_CHUNK, len(probs) - 1)
    return (probs[chunk] > threshold).astype(np.int64)


def silero_segment_frames(probs: np.ndarray, n_samples: int, n_frames: int) -> np.ndarray:
    """silero's own post-processing (get_speech_timestamps: min durations, padding) on the frame grid."""
    from silero_vad import get_speech_timestamps_from_probs

    segments = get_speech_timestamps_from_probs(list(probs), audio_length_samples=n_samples)
    mask = intervals_mask(np.array([(s["start"], s["end"]) for s in segments]).reshape(-1, 2), n_samples)
    return mask[np.minimum(np.arange(n_frames) * HOP, n_samples - 1)].astype(np.int64)


def vad_scores_figure(metrics: dict[str, float], methods: dict[str, str], snrs: tuple) -> plt.Figure:
    """Frame F1 of each detector at each SNR (metric keys `<method>_f1_<snr name>`)."""
    names = ["clean" if s is None else f"{s:g}db" for s in snrs]
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / len(methods)
    for i, (key, label) in enumerate(methods.items()):
        ax.bar(
            np.arange(len(names)) + i * width, [metrics[f"{key}_f1_{n}"] for n in names], width, label=label
        )
    ax.set_xticks(
        np.arange(len(names)) + 0.4 - width / 2, ["clean" if s is None else f"{s:g} dB" for s in snrs]
    )
    lowest = min(metrics[f"{key}_f1_{n}"] for key in methods for n in names)
    ax.set(
        ylim=(min(0.5, lowest - 0.05), 1.0),
        ylabel="frame F1 (speech)",
        title="Voice activity, held-out recordings",
    )
    ax.legend(fontsize=8, loc="lower left")
    return fig


def vad_figure(
    wave: np.ndarray, truth: np.ndarray, learned: np.ndarray, silero: np.ndarray, energy: np.ndarray
):
    """A recording's waveform over its true speech, and each detector's output along time."""
    fig, axes = plt.subplots(2, 1, figsize=(12, 5), sharex=True, height_ratios=(2, 1.4))
    frames = np.arange(len(truth)) * HOP / SR
    axes[0].plot(np.arange(len(wave)) / SR, wave, lw=0.3, color="gray")
    axes[0].fill_between(
        frames, -1, 1, where=truth > 0, color="tab:green", alpha=0.2, lw=0, label="true speech"
    )
    axes[0].set(ylim=(-1, 1), ylabel="amplitude")
    axes[0].legend(loc="upper right", fontsize=8)
    chunks = np.arange(len(silero)) * SILERO_CHUNK / SR
    axes[1].plot(frames, learned, lw=0.8, label="learned VAD p(speech)")
    axes[1].step(chunks, silero, where="post", lw=0.8, label="silero-vad p(speech)")
    axes[1].plot(frames, energy * 1.05, lw=0.8, label="energy VAD decision", color="tab:red")
    axes[1].plot(frames, truth * 1.1, lw=0.8, color="tab:green", label="truth")
    axes[1].set(xlabel="seconds", ylabel="speech", ylim=(-0.05, 1.2))
    axes[1].legend(loc="lower right", fontsize=7, ncol=4)
    return fig
