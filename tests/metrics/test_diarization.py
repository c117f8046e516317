"""DER by hand against pyannote.metrics on the same RTTMs (collars, overlap, extra and missing speakers);
EER against scikit-learn's ROC curve; minDCF against a sweep written out; RTTM round trips."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from sklearn.metrics import roc_curve

from dlpractice.errors import DlpError
from dlpractice.metrics import diarization as dia
from dlpractice.metrics.diarization import Turn


def random_turns(rng: np.random.Generator, speakers: list[str], n: int, length: float) -> list[Turn]:
    """About n turns at random places: speakers overlap each other, but a speaker never overlaps itself
    (pyannote would count such a stretch twice; an RTTM of real turns has none)."""
    turns = []
    for speaker in speakers:
        end = 0.0
        for _ in range(max(1, n // len(speakers))):
            start = end + float(rng.uniform(0.0, 2 * length / n))
            end = start + float(rng.uniform(0.2, 3.0))
            turns.append(Turn(speaker, start, end))
    return turns


def pyannote_der(reference: list[Turn], hypothesis: list[Turn], collar: float) -> dict[str, float]:
    from pyannote.core import Annotation, Segment
    from pyannote.metrics.diarization import DiarizationErrorRate

    def annotation(turns: list[Turn]) -> Annotation:
        out = Annotation()
        for i, t in enumerate(turns):
            out[Segment(t.start, t.end), i] = t.speaker
        return out

    metric = DiarizationErrorRate(collar=2 * collar)  # pyannote's collar is the whole width
    return metric(annotation(reference), annotation(hypothesis), detailed=True)


@pytest.mark.parametrize("seed", range(12))
def test_der_equals_pyannote_on_random_recordings(seed: int) -> None:
    rng = np.random.default_rng(seed)
    reference = random_turns(rng, ["A", "B", "C"], 8, 30.0)
    hypothesis = random_turns(rng, ["s0", "s1", "s2", "s3"][: 2 + seed % 3], 9, 30.0)
    for collar in (0.0, 0.25):
        ours = dia.der_parts(reference, hypothesis, collar)
        theirs = pyannote_der(reference, hypothesis, collar)
        assert ours.total == pytest.approx(theirs["total"], abs=1e-6)
        assert ours.missed == pytest.approx(theirs["missed detection"], abs=1e-6)
        assert ours.false_alarm == pytest.approx(theirs["false alarm"], abs=1e-6)
        assert ours.confusion == pytest.approx(theirs["confusion"], abs=1e-6)
        assert ours.der == pytest.approx(theirs["diarization error rate"], abs=1e-9)


def test_renamed_speakers_cost_nothing_and_a_swap_costs_its_time() -> None:
    reference = [Turn("A", 0, 4), Turn("B", 5, 9)]
    renamed = [Turn("x", 0, 4), Turn("y", 5, 9)]
    assert dia.der_parts(reference, renamed, collar=0.0).der == 0.0
    one_label = [Turn("x", 0, 4), Turn("x", 5, 9)]  # B's 4 s go to A's speaker
    assert dia.der_parts(reference, one_label, collar=0.0).confusion == pytest.approx(4.0)
    shifted = [Turn("x", 0.2, 4.2), Turn("y", 5, 9)]  # inside the 0.25 s collar
    assert dia.der_parts(reference, shifted).der == pytest.approx(0.0)


def test_mapping_maximises_the_total_overlap() -> None:
    overlap = np.array([[5.0, 4.0, 0.0], [4.0, 0.0, 0.0], [0.0, 3.0, 1.0]])  # greedy takes (0, 0) and loses
    pairs = dia.speaker_mapping(overlap)
    best = max(sum(overlap[r, p[r]] for r in range(3)) for p in itertools.permutations(range(3)))
    assert sum(overlap[r, h] for r, h in pairs) == best == 9.0


def test_corpus_der_sums_components_as_pyannote_accumulates() -> None:
    from pyannote.metrics.diarization import DiarizationErrorRate

    rng = np.random.default_rng(3)
    pairs = [
        (random_turns(rng, ["A", "B"], 5, 20.0), random_turns(rng, ["u", "v"], 5, 20.0)) for _ in range(3)
    ]
    metric = DiarizationErrorRate(collar=0.5)
    for reference, hypothesis in pairs:
        metric(*(to_annotation(t) for t in (reference, hypothesis)))
    assert dia.corpus_der(pairs).der == pytest.approx(abs(metric), abs=1e-9)


def to_annotation(turns: list[Turn]):
    from pyannote.core import Annotation, Segment

    out = Annotation()
    for i, t in enumerate(turns):
        out[Segment(t.start, t.end), i] = t.speaker
    return out


def test_rttm_round_trip_and_a_bad_line(tmp_path) -> None:
    turns = {"conv0": [Turn("A", 0.5, 2.25), Turn("B", 2.0, 3.0)], "conv1": [Turn("C", 1.0, 1.5)]}
    path = dia.write_rttm(tmp_path / "ref.rttm", turns)
    assert dia.read_rttm(path) == turns
    (tmp_path / "bad.rttm").write_text("SPEAKER conv0 1 zero 1.0 <NA> <NA> A <NA> <NA>\n")
    with pytest.raises(DlpError, match="bad.rttm:1"):
        dia.read_rttm(tmp_path / "bad.rttm")


def test_eer_equals_the_roc_crossing_of_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.3
    scores = rng.normal(labels * 1.5, 1.0)
    fpr, tpr, _ = roc_curve(labels, scores)
    fnr = 1 - tpr
    i = int(np.flatnonzero(fnr <= fpr)[0])  # the ROC segment where fnr crosses fpr
    a, b = fpr[i - 1] - fnr[i - 1], fnr[i] - fpr[i]  # the gaps at its ends, both >= 0 here
    expected = fnr[i - 1] + (fnr[i] - fnr[i - 1]) * (-a) / (-(a) - b) if a + b else fpr[i]
    eer, _ = dia.equal_error_rate(scores, labels)
    assert eer == pytest.approx(expected, abs=1e-9)
    assert dia.equal_error_rate(np.array([0.9, 0.8, 0.1]), np.array([True, True, False]))[0] == 0.0


def test_min_dcf_is_the_lowest_normalised_cost_over_thresholds() -> None:
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.2
    scores = rng.normal(labels * 2.0, 1.0)
    costs = [
        (np.mean(scores[labels] < t) * 0.01 + np.mean(scores[~labels] >= t) * 0.99) / 0.01
        for t in [*np.unique(scores), np.inf]
    ]
    assert dia.min_dcf(scores, labels) == pytest.approx(min(costs), abs=1e-12)
    assert dia.min_dcf(np.array([1.0, 0.0]), np.array([True, False])) == 0.0


def test_trials_are_every_pair_once() -> None:
    vectors = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    scores, same = dia.trial_scores(vectors, np.array([0, 0, 1]))
    np.testing.assert_allclose(scores, [1.0, 0.0, 0.0])
    np.testing.assert_array_equal(same, [True, False, False])
