"""Lab s3's figures: a conversation's true and found turns, verification's DET curve and score
histograms, and a t-SNE map of speaker embeddings."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from dlpractice.metrics.diarization import Turn, error_rates, speaker_mapping, speaker_overlap

DET_TICKS = np.array([0.001, 0.01, 0.05, 0.2, 0.5])


def timeline_figure(reference: list[Turn], hypothesis: list[Turn]) -> plt.Figure:
    """The reference turns above the hypothesis; a hypothesis speaker takes the colour of the reference
    speaker DER's mapping matched it to (grey: unmatched)."""
    ref_names, hyp_names, overlap = speaker_overlap(reference, hypothesis)
    colours = {name: plt.cm.tab10(i % 10) for i, name in enumerate(ref_names)}
    matched = {hyp_names[h]: colours[ref_names[r]] for r, h in speaker_mapping(overlap)}
    fig, axes = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True)
    rows = (
        (axes[0], reference, ref_names, colours, "reference"),
        (axes[1], hypothesis, hyp_names, matched, "hypothesis (colour of the matched reference speaker)"),
    )
    for ax, turns, names, palette, title in rows:
        for row, name in enumerate(names):
            spans = [(t.start, t.end - t.start) for t in turns if t.speaker == name]
            ax.broken_barh(spans, (row - 0.4, 0.8), color=palette.get(name, "lightgrey"))
        ax.set(yticks=range(len(names)), yticklabels=names, title=title)
    axes[1].set_xlabel("seconds")
    fig.tight_layout()
    return fig


def verification_figure(scores: np.ndarray, same: np.ndarray, title: str) -> plt.Figure:
    """The DET curve (miss against false-accept rate on normal-deviate axes) and the score histograms."""
    from scipy.stats import norm

    _, p_miss, p_fa = error_rates(scores, same)
    fig, (det, hist) = plt.subplots(1, 2, figsize=(10, 4))
    low = 0.5 / max(int(same.sum()), int((~same).sum()))  # below one error in the larger class
    det.plot(norm.ppf(np.clip(p_fa, low, 1 - low)), norm.ppf(np.clip(p_miss, low, 1 - low)))
    labels = [f"{t:.1%}" for t in DET_TICKS]
    limits = norm.ppf([min(low, DET_TICKS[0] / 2), 0.6])
    det.set(xticks=norm.ppf(DET_TICKS), xticklabels=labels, xlabel="false-accept rate", xlim=limits)
    det.set(yticks=norm.ppf(DET_TICKS), yticklabels=labels, ylabel="miss rate", ylim=limits)
    det.set(title=f"DET curve ({title}; an axis' lowest value = no error)")
    hist.hist(scores[~same], bins=50, alpha=0.6, density=True, label="different speakers")
    hist.hist(scores[same], bins=50, alpha=0.6, density=True, label="same speaker")
    hist.set(xlabel="cosine score", title="Trial scores")
    hist.legend()
    fig.tight_layout()
    return fig


def tsne_figure(vectors: np.ndarray, ids: np.ndarray, seed: int, title: str) -> plt.Figure:
    """(N, E) embeddings in 2-D (scikit-learn's t-SNE), one colour a speaker."""
    from sklearn.manifold import TSNE

    perplexity = min(30.0, max(2.0, (len(vectors) - 1) / 3))
    points = TSNE(2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(vectors)
    fig, ax = plt.subplots(figsize=(6, 5))
    ax.scatter(points[:, 0], points[:, 1], c=[plt.cm.tab10(i % 10) for i in ids], s=14)
    ax.set(title=title, xticks=[], yticks=[])
    fig.tight_layout()
    return fig
