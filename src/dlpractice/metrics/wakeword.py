"""Streaming keyword detection and its error rates: smoothed window posteriors, a threshold and a
refractory period give detections; detections near an inserted keyword are hits, the rest false accepts.
FRR = missed keywords / keywords; FA/h = false accepts / hours of audio."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def smooth_posteriors(posteriors: np.ndarray, width: int) -> np.ndarray:
    """(N,) the causal moving average of the last `width` window posteriors (fewer at the start).

    A keyword lights up several overlapping windows in a row; a one-window spike (a confusable word, a
    click) does not. Averaging over the past only keeps the detector streaming: no look-ahead."""
    # BEGIN EXERCISE s6.1: the mean of posteriors[max(0, t - width + 1) : t + 1] for every t, vectorised
    sums = np.cumsum(np.concatenate([[0.0], posteriors.astype(np.float64)]))  # sums[t] = sum of the first t
    ends = np.arange(1, len(posteriors) + 1)
    starts = np.maximum(0, ends - width)
    return (sums[ends] - sums[starts]) / (ends - starts)
    # END EXERCISE


def detect(smoothed: np.ndarray, threshold: float, refractory: int) -> np.ndarray:
    """Indices where the smoothed posterior reaches the threshold, at least `refractory` windows after the
    previous detection (one keyword fires once, however many windows stay above)."""
    fired, last = [], -refractory
    for t in np.flatnonzero(smoothed >= threshold):  # only the windows above: few at useful thresholds
        if t - last >= refractory:
            fired.append(t)
            last = t
    return np.array(fired, dtype=np.int64)


@dataclass
class StreamScores:
    """One stream's smoothed posteriors, the end time (s) of each window, and its keywords (K, 2) in s."""

    smoothed: np.ndarray
    times: np.ndarray
    keywords: np.ndarray
    seconds: float


def match(times: np.ndarray, keywords: np.ndarray, tolerance: float) -> tuple[int, int]:
    """(hits, false accepts): a keyword is hit by a detection between its start and its end + tolerance;
    one detection counts for one keyword at most."""
    used = np.zeros(len(times), dtype=bool)
    hits = 0
    for start, end in keywords:
        inside = np.flatnonzero(~used & (times >= start) & (times <= end + tolerance))
        if len(inside):
            used[inside[0]] = True
            hits += 1
    return hits, int((~used).sum())


def error_rates(
    streams: Sequence[StreamScores], threshold: float, refractory: int, tolerance: float
) -> tuple[float, float]:
    """(FRR, false accepts per hour) over the streams at one threshold."""
    hits = false = keywords = 0
    for s in streams:
        h, f = match(s.times[detect(s.smoothed, threshold, refractory)], s.keywords, tolerance)
        hits, false, keywords = hits + h, false + f, keywords + len(s.keywords)
    hours = sum(s.seconds for s in streams) / 3600.0
    return (1.0 - hits / keywords if keywords else 0.0), false / hours


def threshold_at(
    negatives: Sequence[StreamScores], fa_per_hour: float, refractory: int, grid: np.ndarray
) -> float:
    """The lowest threshold of the grid whose false accepts per hour on keyword-free streams are at most
    `fa_per_hour` (the lowest: it misses the fewest keywords)."""
    for threshold in np.sort(grid):
        if error_rates(negatives, threshold, refractory, 0.0)[1] <= fa_per_hour:
            return float(threshold)
    return float(np.max(grid))


def det_curve(
    positives: Sequence[StreamScores],
    negatives: Sequence[StreamScores],
    refractory: int,
    tolerance: float,
    grid,
) -> tuple[np.ndarray, np.ndarray]:
    """(FA/h on the negatives, FRR on the positives) at every threshold of the grid."""
    fa = np.array([error_rates(negatives, t, refractory, tolerance)[1] for t in grid])
    frr = np.array([error_rates(positives, t, refractory, tolerance)[0] for t in grid])
    return fa, frr
