"""A diarisation pipeline: voice activity, uniform overlapping windows, speaker embeddings, clustering.

    speech = energy VAD on 10 ms frames (models/vad.py)
    windows = `window` frames every `hop` frames, kept when at least a third of their frames are speech
    vectors = embed(the window's speech frames only, mean-normalised)          (N, E), unit length
    labels = cluster(vectors): agglomerative (cosine, average linkage, cut at a distance threshold) or
             spectral (a pruned cosine affinity; the number of speakers from the eigengap)
    each speech frame takes the label of the nearest window centre; runs of a label are the turns

The number of speakers is never given: agglomerative clustering finds it through its threshold (tuned on
development conversations), spectral clustering through the largest gap between consecutive eigenvalues
of the affinity's normalised Laplacian (k well-separated groups give k eigenvalues near 0, then a jump).
Simplified: one speaker per frame, so overlapped speech is at best half right; no re-segmentation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import torch

from dlpractice.metrics.diarization import Turn, corpus_der
from dlpractice.models.vad import energy_vad, frame_energy_db

FRAME_SECONDS = 0.01
MIN_SPEECH_SHARE = 1 / 3  # a window with less speech than this is not embedded
THRESHOLDS = tuple(np.round(np.arange(0.05, 1.0, 0.05), 2))  # agglomerative cosine-distance cuts tried
PRUNES = (0.1, 0.2, 0.3, 0.5)  # spectral: shares of each affinity row kept


@dataclass(frozen=True)
class DiarizationSettings:
    window: int = 150  # frames (1.5 s)
    hop: int = 50  # frames
    vad_margin_db: float = 10.0  # speech: this far above the recording's noise floor
    clustering: str = "spectral"  # or "agglomerative"
    threshold: float = 0.5  # agglomerative: cosine distance at which clusters stop merging
    max_speakers: int = 6  # spectral: the most the eigengap may choose
    prune: float = 0.3  # spectral: each row of the affinity keeps its strongest share of entries
    min_context: int = 1  # frames an embedder needs at least (the x-vector TDNN: 15)


def embedder(model: torch.nn.Module, context: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """(1, T, F) features -> (1, E): the model's `embed`, the input padded to at least `context` frames."""

    def embed(x: torch.Tensor) -> torch.Tensor:
        return model.embed(torch.nn.functional.pad(x, (0, 0, 0, max(0, context - x.shape[1]))))

    return embed


def speech_frames(wave: np.ndarray, margin_db: float, n_frames: int) -> np.ndarray:
    """(n_frames,) bool from the energy VAD on 16 kHz audio."""
    energy = frame_energy_db(torch.as_tensor(wave, dtype=torch.float32)).numpy()
    decisions = energy_vad(energy, margin_db).astype(bool)
    return np.pad(decisions, (0, max(0, n_frames - len(decisions))))[:n_frames]


def speech_windows(speech: np.ndarray, window: int, hop: int) -> list[np.ndarray]:
    """Frame indices of each window's speech frames, for windows with enough speech."""
    last = max(len(speech) - window, 0)
    starts = list(range(0, last + 1, hop)) + ([last] if last % hop else [])
    chosen = []
    for start in starts:
        frames = start + np.flatnonzero(speech[start : start + window])
        if len(frames) >= MIN_SPEECH_SHARE * min(window, len(speech)):
            chosen.append(frames)
    return chosen


@torch.no_grad()
def embed_windows(
    embed: Callable[[torch.Tensor], torch.Tensor],
    feats: torch.Tensor,
    windows: list[np.ndarray],
    context: int,
) -> np.ndarray:
    """(N, E) unit-length embeddings of the windows' speech frames of (frames, F) features, each window
    mean-normalised on its own (as training utterances were), padded with zeros up to `context` frames."""
    vectors = []
    for frames in windows:
        x = feats[torch.as_tensor(frames)]
        x = torch.nn.functional.pad(x - x.mean(0), (0, 0, 0, max(0, context - len(x))))
        vectors.append(embed(x[None])[0])
    out = torch.stack(vectors).numpy() if vectors else np.zeros((0, 1), np.float32)
    return out / np.linalg.norm(out, axis=1, keepdims=True).clip(1e-12)


def pruned_affinity(vectors: np.ndarray, keep: float) -> np.ndarray:
    """(N, N) cosine similarities with each row's weakest entries zeroed (all but its top `keep` share),
    symmetrised: the p-pruning of Park et al. (2019) that keeps the graph's clusters apart."""
    similarity = np.clip(vectors @ vectors.T, 0.0, 1.0)
    n_keep = max(2, int(np.ceil(keep * len(similarity))))
    cut = -np.sort(-similarity, axis=1)[:, min(n_keep, len(similarity)) - 1 : n_keep]  # (N, 1)
    pruned = np.where(similarity >= cut, similarity, 0.0)
    return (pruned + pruned.T) / 2


def eigengap_speakers(affinity: np.ndarray, max_speakers: int) -> int:
    """The number of clusters: argmax_k of lambda_{k+1} - lambda_k over the normalised Laplacian's
    ascending eigenvalues, k = 1..max_speakers."""
    degree = affinity.sum(1).clip(1e-12)
    scaled = affinity / np.sqrt(degree[:, None] * degree[None, :])
    eigenvalues = np.sort(np.linalg.eigvalsh(np.eye(len(affinity)) - scaled))
    top = min(max_speakers, len(affinity) - 1)
    if top < 2:
        return 1
    gaps = np.diff(eigenvalues[: top + 1])  # gaps[k - 1] = lambda_{k+1} - lambda_k
    return int(np.argmax(gaps)) + 1


def spectral_labels(vectors: np.ndarray, settings: DiarizationSettings, seed: int = 0) -> np.ndarray:
    from sklearn.cluster import SpectralClustering

    if len(vectors) < 3:
        return np.zeros(len(vectors), dtype=np.int64)
    affinity = pruned_affinity(vectors, settings.prune)
    k = eigengap_speakers(affinity, settings.max_speakers)
    if k == 1:
        return np.zeros(len(vectors), dtype=np.int64)
    return SpectralClustering(k, affinity="precomputed", random_state=seed).fit_predict(affinity)


def agglomerative_labels(vectors: np.ndarray, settings: DiarizationSettings) -> np.ndarray:
    from sklearn.cluster import AgglomerativeClustering

    if len(vectors) < 2:
        return np.zeros(len(vectors), dtype=np.int64)
    clustering = AgglomerativeClustering(
        n_clusters=None, metric="cosine", linkage="average", distance_threshold=settings.threshold
    )
    return clustering.fit_predict(vectors)


def cluster(vectors: np.ndarray, settings: DiarizationSettings, seed: int = 0) -> np.ndarray:
    if settings.clustering == "spectral":
        return spectral_labels(vectors, settings, seed)
    return agglomerative_labels(vectors, settings)


def frame_labels(speech: np.ndarray, windows: list[np.ndarray], labels: np.ndarray) -> np.ndarray:
    """(frames,) int: each speech frame takes the label of the window whose speech is centred nearest;
    -1 is silence (and everything when no window was embedded)."""
    out = np.full(len(speech), -1, dtype=np.int64)
    if not windows:
        return out
    centres = np.array([w.mean() for w in windows])  # (N,) the middle of each window's speech
    speaking = np.flatnonzero(speech)
    nearest = np.abs(speaking[:, None] - centres[None, :]).argmin(1)
    out[speaking] = labels[nearest]
    return out


def turns_of(labels: np.ndarray, min_frames: int = 10) -> list[Turn]:
    """Runs of one label as turns (seconds); runs shorter than min_frames are dropped, and a label's turns
    separated by a shorter gap are joined (a pause inside a sentence)."""
    turns: list[Turn] = []
    change = np.flatnonzero(np.diff(labels) != 0) + 1
    for start, end in zip(np.r_[0, change], np.r_[change, len(labels)]):
        label = int(labels[start])
        if label < 0 or end - start < min_frames:
            continue
        speaker, s, e = f"speaker{label + 1}", start * FRAME_SECONDS, end * FRAME_SECONDS
        if turns and turns[-1].speaker == speaker and s - turns[-1].end < min_frames * FRAME_SECONDS * 3:
            s = turns.pop().start
        turns.append(Turn(speaker, s, e))
    return turns


@dataclass
class Prepared:
    """A recording up to the clustering: its speech frames, embedded windows and their vectors."""

    speech: np.ndarray  # (frames,) bool
    windows: list[np.ndarray]  # each window's speech frame indices
    vectors: np.ndarray  # (N, E) unit-length embeddings


def prepare(
    wave: np.ndarray,
    feats: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    settings: DiarizationSettings,
) -> Prepared:
    """VAD, windows and embeddings of a 16 kHz recording with (frames, F) features."""
    speech = speech_frames(wave, settings.vad_margin_db, len(feats))
    windows = speech_windows(speech, settings.window, settings.hop)
    return Prepared(speech, windows, embed_windows(embed, feats, windows, settings.min_context))


def assign(prepared: Prepared, settings: DiarizationSettings, seed: int = 0) -> list[Turn]:
    """Cluster the windows and turn the labels into turns."""
    if not prepared.windows:
        return []
    labels = cluster(prepared.vectors, settings, seed)
    return turns_of(frame_labels(prepared.speech, prepared.windows, labels))


def diarize(
    wave: np.ndarray,
    feats: torch.Tensor,
    embed: Callable[[torch.Tensor], torch.Tensor],
    settings: DiarizationSettings,
    seed: int = 0,
) -> list[Turn]:
    """Who speaks when in a 16 kHz recording, from its (frames, F) features."""
    return assign(prepare(wave, feats, embed, settings), settings, seed)


def candidates(base: DiarizationSettings) -> list[DiarizationSettings]:
    return [replace(base, clustering="agglomerative", threshold=float(t)) for t in THRESHOLDS] + [
        replace(base, clustering="spectral", prune=p) for p in PRUNES
    ]


def tune(
    prepared: list[Prepared], references: list[list[Turn]], base: DiarizationSettings, seed: int = 0
) -> dict[str, DiarizationSettings]:
    """The settings with the lowest DER on development recordings, per clustering method."""
    best: dict[str, tuple[DiarizationSettings, float]] = {}
    for settings in candidates(base):
        der = corpus_der((ref, assign(p, settings, seed)) for p, ref in zip(prepared, references)).der
        if settings.clustering not in best or der < best[settings.clustering][1]:
            best[settings.clustering] = (settings, der)
    return {method: settings for method, (settings, _) in best.items()}
