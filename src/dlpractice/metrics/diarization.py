"""Diarisation and speaker-verification metrics: DER with a forgiveness collar, EER and minDCF, and RTTM.

DER (diarisation error rate) = (missed speech + false alarm + speaker confusion) / reference speech, all
in seconds of speaker time (two reference speakers talking for 1 s count 2 s). Hypothesis speakers are
anonymous ("spk0"), so each is first mapped to at most one reference speaker, the one-to-one mapping
that maximises the time they talk together (the Hungarian algorithm on their co-occurrence matrix).
The collar is NIST's: `collar` seconds each side of every reference boundary are not scored, where
even people disagree on when a turn starts. pyannote.metrics calls the same thing `collar=2 * collar`
(the whole width), and its DiarizationErrorRate gives the same numbers (tests/metrics).

EER: the rate at which false accepts equal misses as the threshold on a trial's score moves. minDCF: the
lowest detection cost c_miss P_miss p_target + c_fa P_fa (1 - p_target) over thresholds, divided by
that of the best trivial system (accept all or reject all), NIST SRE's normalised form.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from dlpractice.errors import DlpError

COLLAR = 0.25  # seconds each side of a reference boundary (NIST md-eval's default)


@dataclass(frozen=True)
class Turn:
    """A stretch of one speaker's speech, in seconds."""

    speaker: str
    start: float
    end: float


@dataclass
class DERParts:
    """Seconds of speaker time: missed, falsely detected, given to the wrong speaker, and in the reference."""

    missed: float = 0.0
    false_alarm: float = 0.0
    confusion: float = 0.0
    total: float = 0.0

    @property
    def der(self) -> float:
        return (self.missed + self.false_alarm + self.confusion) / max(self.total, 1e-12)

    def __add__(self, other: DERParts) -> DERParts:
        return DERParts(
            self.missed + other.missed,
            self.false_alarm + other.false_alarm,
            self.confusion + other.confusion,
            self.total + other.total,
        )


def speaker_mapping(overlap: np.ndarray) -> list[tuple[int, int]]:
    """(reference row, hypothesis column) pairs of the one-to-one mapping with the most shared time:
    `overlap[r, h]` is how long reference speaker r and hypothesis speaker h talk at once."""
    # BEGIN EXERCISE s3.2: the one-to-one assignment maximising the total overlap (scipy's Hungarian solver)
    rows, columns = linear_sum_assignment(overlap, maximize=True)
    return [(int(r), int(h)) for r, h in zip(rows, columns) if overlap[r, h] > 0]
    # END EXERCISE


def elementary_intervals(
    reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The timeline cut at every boundary: (K,) durations, a (K,) scored mask (outside the collars) and
    (K,) midpoints, to ask who talks in each piece."""
    cuts = {t for turn in [*reference, *hypothesis] for t in (turn.start, turn.end)}
    cuts |= {t + d for turn in reference for t in (turn.start, turn.end) for d in (-collar, collar)}
    edges = np.array(sorted(cuts))
    durations, mids = np.diff(edges), (edges[1:] + edges[:-1]) / 2
    boundaries = np.array([t for turn in reference for t in (turn.start, turn.end)])
    scored = np.ones(len(mids), dtype=bool)
    if collar > 0 and len(boundaries):
        scored = np.abs(mids[:, None] - boundaries[None, :]).min(1) > collar
    return durations, scored, mids


def activity(turns: Sequence[Turn], mids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Speaker names and (S, K) bool: speaker s talks at midpoint k."""
    names = sorted({t.speaker for t in turns})
    active = np.zeros((len(names), len(mids)), dtype=bool)
    for t in turns:
        active[names.index(t.speaker)] |= (mids > t.start) & (mids < t.end)
    return names, active


def together(ref: np.ndarray, hyp: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(R, H) seconds that reference speaker r and hypothesis speaker h talk at once, from (R, K) and
    (H, K) activity over elementary intervals of (K,) scored seconds."""
    return (ref[:, None, :] & hyp[None, :, :]).astype(float) @ weights


def speaker_overlap(
    reference: Sequence[Turn], hypothesis: Sequence[Turn]
) -> tuple[list[str], list[str], np.ndarray]:
    """Reference names, hypothesis names and their (R, H) seconds of talking at once (no collar)."""
    durations, _, mids = elementary_intervals(reference, hypothesis, 0.0)
    ref_names, ref = activity(reference, mids)
    hyp_names, hyp = activity(hypothesis, mids)
    return ref_names, hyp_names, together(ref, hyp, durations)


def der_parts(reference: Sequence[Turn], hypothesis: Sequence[Turn], collar: float = COLLAR) -> DERParts:
    """One recording's DER components, exact (on elementary intervals, no frame grid)."""
    if not reference and not hypothesis:
        return DERParts()
    durations, scored, mids = elementary_intervals(reference, hypothesis, collar)
    weights = durations * scored  # (K,) seconds that count
    _, ref = activity(reference, mids)  # (R, K)
    _, hyp = activity(hypothesis, mids)  # (H, K)
    n_ref, n_hyp = ref.sum(0), hyp.sum(0)  # (K,)
    overlap = together(ref, hyp, weights)
    correct = sum(((ref[r] & hyp[h]) * weights).sum() for r, h in speaker_mapping(overlap))
    return DERParts(
        missed=float((np.maximum(n_ref - n_hyp, 0) * weights).sum()),
        false_alarm=float((np.maximum(n_hyp - n_ref, 0) * weights).sum()),
        confusion=float((np.minimum(n_ref, n_hyp) * weights).sum() - correct),
        total=float((n_ref * weights).sum()),
    )


def corpus_der(pairs: Iterable[tuple[Sequence[Turn], Sequence[Turn]]], collar: float = COLLAR) -> DERParts:
    """The components summed over recordings: a long recording weighs more (as md-eval and pyannote)."""
    total = DERParts()
    for reference, hypothesis in pairs:
        total = total + der_parts(reference, hypothesis, collar)
    return total


def write_rttm(path: Path, recordings: dict[str, Sequence[Turn]]) -> Path:
    """NIST RTTM: one `SPEAKER <file> 1 <start> <duration> <NA> <NA> <speaker> <NA> <NA>` line a turn."""
    lines = [
        f"SPEAKER {name} 1 {t.start:.3f} {t.end - t.start:.3f} <NA> <NA> {t.speaker} <NA> <NA>"
        for name, turns in recordings.items()
        for t in turns
    ]
    Path(path).write_text("\n".join(lines) + "\n")
    return Path(path)


def read_rttm(path: Path) -> dict[str, list[Turn]]:
    """The turns of every recording in an RTTM file (SPEAKER lines; others are skipped)."""
    recordings: dict[str, list[Turn]] = {}
    for number, line in enumerate(Path(path).read_text().splitlines(), 1):
        fields = line.split()
        if not fields or fields[0] != "SPEAKER":
            continue
        try:
            start, duration = float(fields[3]), float(fields[4])
            recordings.setdefault(fields[1], []).append(Turn(fields[7], start, start + duration))
        except (IndexError, ValueError):
            raise DlpError(f"{path}:{number} is not an RTTM SPEAKER line: {line.strip()!r}") from None
    return recordings


def error_rates(scores: np.ndarray, is_target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Thresholds (every distinct score, ascending, plus +inf) with P_miss and P_fa when accepting
    score >= threshold. (N+1,) each."""
    order = np.argsort(scores, kind="stable")
    s, t = scores[order], is_target[order].astype(bool)
    thresholds = np.append(np.unique(s), np.inf)
    below = np.searchsorted(s, thresholds, side="left")  # trials under each threshold: rejected
    targets_below = np.concatenate([[0], np.cumsum(t)])[below]
    p_miss = targets_below / max(t.sum(), 1)
    p_fa = ((~t).sum() - (below - targets_below)) / max((~t).sum(), 1)
    return thresholds, p_miss, p_fa


def equal_error_rate(scores: np.ndarray, is_target: np.ndarray) -> tuple[float, float]:
    """(EER, threshold): where P_miss and P_fa cross, interpolated linearly between the two thresholds
    around the crossing (as the ROC convex hull would)."""
    thresholds, p_miss, p_fa = error_rates(np.asarray(scores, float), np.asarray(is_target))
    i = int(np.flatnonzero(p_miss >= p_fa)[0])  # p_miss rises and p_fa falls with the threshold
    if i == 0:
        return float(p_fa[0]), float(thresholds[0])
    gap_before, gap_after = p_fa[i - 1] - p_miss[i - 1], p_miss[i] - p_fa[i]
    w = gap_before / max(gap_before + gap_after, 1e-12)
    eer = (1 - w) * p_miss[i - 1] + w * p_miss[i]  # the straight line's crossing of p_miss = p_fa
    return float(eer), float(thresholds[i - 1] if w < 0.5 else thresholds[i])


def min_dcf(
    scores: np.ndarray, is_target: np.ndarray, p_target: float = 0.01, c_miss: float = 1.0, c_fa: float = 1.0
) -> float:
    """The normalised minimum detection cost over all thresholds (NIST SRE)."""
    _, p_miss, p_fa = error_rates(np.asarray(scores, float), np.asarray(is_target))
    cost = c_miss * p_miss * p_target + c_fa * p_fa * (1 - p_target)
    return float(cost.min() / min(c_miss * p_target, c_fa * (1 - p_target)))


def trial_scores(embeddings: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every pair i < j as a verification trial: (P,) cosine scores and (P,) same-speaker flags."""
    unit = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True).clip(1e-12)
    i, j = np.triu_indices(len(unit), k=1)
    return (unit[i] * unit[j]).sum(1), labels[i] == labels[j]


def verification(embeddings: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """EER (with its threshold) and minDCF over every pair of the embeddings as a trial."""
    scores, same = trial_scores(embeddings, labels)
    eer, threshold = equal_error_rate(scores, same)
    return {"eer": eer, "min_dcf": min_dcf(scores, same), "eer_threshold": threshold}
