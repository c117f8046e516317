"""Lab s3: the conversations' truth, the ECAPA model, the pipeline's clustering pieces (against
scikit-learn), and the smoke preset end to end with its figures, RTTMs and the served predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.data import conversations as cv
from dlpractice.data.audio import resample
from dlpractice.metrics.diarization import Turn
from dlpractice.models import diarization as dz
from dlpractice.models.ecapa import ECAPA, attentive_statistics_pooling
from dlpractice.models.tdnn import statistics_pooling
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def talk(tmp_path_factory: pytest.TempPathFactory) -> list[cv.Conversation]:
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s3-talk")))
    speakers = cv.speaker_set(8, seed=5)
    yield cv.conversations(3, speakers, seed=5, overlap_share=0.5)
    monkeypatch.undo()


def test_speaker_sets_are_distinct_and_exclude_the_training_speakers() -> None:
    train = cv.speaker_set(50, seed=0)
    test = cv.speaker_set(30, seed=1, exclude=train)
    identities = {(s.voice, s.variant, s.pitch) for s in train}
    assert len(identities) == 50
    assert not identities & {(s.voice, s.variant, s.pitch) for s in test}
    assert cv.speaker_set(5, seed=3) == cv.speaker_set(5, seed=3)  # seeded


def test_conversations_hold_their_turns(talk: list[cv.Conversation]) -> None:
    overlaps = 0
    for conv in talk:
        assert 2 <= len(conv.speakers) <= 4
        assert all(0 <= t.start < t.end <= conv.seconds for t in conv.turns)
        assert all(a.speaker != b.speaker for a, b in zip(conv.turns, conv.turns[1:]))  # turns alternate
        overlaps += sum(b.start < a.end for a, b in zip(conv.turns, conv.turns[1:]))
        first, last = conv.turns[0], conv.turns[-1]
        before = conv.audio[: int(first.start * conv.sr) - 10]  # noise only
        during = conv.audio[int(first.start * conv.sr) : int(first.end * conv.sr)]
        assert np.sqrt(np.mean(during**2)) > 5 * np.sqrt(np.mean(before**2))  # 20 dB SNR: 10x the RMS
        assert last.end <= conv.seconds
    assert overlaps > 0  # overlap_share 0.5: some turns start before the last one ended


def test_attentive_pooling_with_equal_attention_is_statistics_pooling() -> None:
    h = torch.randn(2, 5, 13)
    pooled = attentive_statistics_pooling(h, torch.zeros_like(h))
    torch.testing.assert_close(pooled, statistics_pooling(h), rtol=1e-4, atol=1e-5)


def test_ecapa_embeds_any_length_and_trains_with_a_margin() -> None:
    torch.manual_seed(0)
    model = ECAPA(40, 7, channels=16, embed_dim=8)
    x, y = torch.randn(3, 50, 40), torch.tensor([0, 3, 6])
    logits, loss = model(x, y)
    assert logits.shape == (3, 7) and model.embed(torch.randn(2, 23, 40)).shape == (2, 8)
    plain = torch.nn.functional.cross_entropy(logits, y)
    assert loss > plain  # the margin lowers the true class's logit during training
    assert logits.abs().max() <= model.logit_scale + 1e-4  # scaled cosines


def clusters(
    rng: np.random.Generator, k: int, per: int, spread: float = 0.15
) -> tuple[np.ndarray, np.ndarray]:
    centres = rng.standard_normal((k, 16))
    vectors = np.repeat(centres, per, axis=0) + spread * rng.standard_normal((k * per, 16))
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True), np.repeat(np.arange(k), per)


@pytest.mark.parametrize("k", [1, 2, 3, 4])
def test_eigengap_finds_the_number_of_well_separated_groups(k: int) -> None:
    vectors, _ = clusters(np.random.default_rng(k), k, 12)
    assert dz.eigengap_speakers(dz.pruned_affinity(vectors, 0.3), max_speakers=6) == k


def test_both_clusterings_recover_the_groups() -> None:
    from sklearn.metrics import adjusted_rand_score

    vectors, truth = clusters(np.random.default_rng(0), 3, 10)
    settings = dz.DiarizationSettings(threshold=0.5)
    assert adjusted_rand_score(truth, dz.spectral_labels(vectors, settings)) == 1.0
    assert adjusted_rand_score(truth, dz.agglomerative_labels(vectors, settings)) == 1.0
    affinity = dz.pruned_affinity(vectors, 0.3)
    np.testing.assert_allclose(affinity, affinity.T)


def test_frames_become_turns() -> None:
    labels = np.array([-1] * 5 + [0] * 30 + [-1] * 5 + [0] * 20 + [1] * 40 + [0] * 3 + [-1] * 10)
    turns = dz.turns_of(labels, min_frames=10)
    assert turns == [Turn("speaker1", 0.05, 0.6), Turn("speaker2", 0.6, 1.0)]  # a 50 ms gap is joined


def test_windows_keep_only_their_speech_frames() -> None:
    speech = np.zeros(400, dtype=bool)
    speech[100:250] = True
    windows = dz.speech_windows(speech, window=150, hop=75)
    assert all(speech[w].all() for w in windows)
    assert windows and all(len(w) >= 50 for w in windows)  # a third of the window at least


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("s3")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("s3", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_writes_figures_rttms_and_error_rates(smoke) -> None:
    m = smoke.metrics
    for name in ("der", "der_xvector_agglomerative", "eer", "min_dcf", "fsdd_speaker_accuracy"):
        assert 0.0 <= m[name] <= 1.5, name  # DER can pass 1 (false alarms), rates cannot
    assert smoke.value == m["der"] == m["der_ecapa_spectral"]
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures >= {"loss_ecapa", "timeline", "verification", "tsne"}
    assert list((smoke.run_dir / "audio").glob("*.wav")) and list((smoke.run_dir / "audio").glob("*.rttm"))
    assert "DER on the test conversations" in smoke.report.read_text()


@pytest.mark.slow
def test_the_predictor_answers_turns_at_any_rate(smoke, talk) -> None:
    from dlpractice.labs.speech import s3_diarization as s3

    predictor = s3.serve(smoke.run_dir, s3.Config(**s3.PRESETS["smoke"]))
    conv = talk[0]
    items = [
        {"audio": conv.audio, "sample_rate": conv.sr},
        {"audio": resample(conv.audio, conv.sr, 8000), "sample_rate": 8000},
        {"audio": np.zeros(1600, np.float32), "sample_rate": conv.sr},  # silence: no turns
    ]
    answers = predictor.predict(items)
    for answer in answers[:2]:
        segments = answer["segments"]
        assert segments, "speech was found"
        assert all(0 <= s["start"] < s["end"] <= conv.seconds + 0.05 for s in segments)
        assert all(isinstance(s["speaker"], str) for s in segments)
    assert answers[2] == {"segments": []}
