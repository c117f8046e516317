"""Checks of lab n6: max-over-time pooling and attention pooling that ignore padding, and the expected
calibration error against its definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import softmax

from dlpractice.practice.checks.support import assert_close


@pytest.mark.exercise("n6.1")
def test_max_over_time_keeps_the_best_window_of_the_sentence(impl):
    """Each filter's maximum over the windows inside the sentence; windows over padding never win."""
    features = torch.randn(3, 4, 7)  # (B, F, W), signed: pooling may happen before the ReLU
    features[:, :, 5:] = 100.0  # windows past every sentence's end must never win
    lengths = torch.tensor([5, 1, 3])
    got = impl.max_over_time(features, lengths)
    want = torch.stack([features[b, :, : int(n)].max(-1).values for b, n in enumerate(lengths)])
    assert_close(got, want, "each filter's max should be over the first `length` windows only (not padding)")


@pytest.mark.exercise("n6.1")
def test_kim_cnn_pools_each_filter_over_the_sentence_only(impl):
    """The whole Kim CNN: the logits come from the max over windows that start on a real word."""
    torch.manual_seed(0)
    model = impl.KimCNN(20, n_embd=6, widths=(2, 3), n_filters=16, dropout=0.0).eval()
    ids = torch.tensor([[3, 4, 5, 6, 7, 8], [9, 10, 11, 0, 0, 0]])  # (B, T): 6 and 3 words
    with torch.no_grad():
        logits, _ = model(ids)
        x = model.embed(torch.nn.functional.pad(ids, (0, 2))).transpose(1, 2)  # (B, E, T + 2)
        for b, n in enumerate([6, 3]):  # windows starting on word 0..n-1, by hand
            pooled = torch.cat([torch.relu(conv(x[b : b + 1])[0, :, :n].amax(-1)) for conv in model.convs])
            assert_close(
                logits[b],
                model.head(pooled),
                f"sentence {b} ({n} words): the logits should pool over the {n} windows that start on a word",
                rtol=1e-5,
                atol=1e-6,
            )


@pytest.mark.exercise("n6.2")
def test_attention_pool_is_a_softmax_over_real_tokens(impl):
    """Weights: softmax of the scores over the real tokens (0 on padding); pooled: weighted sum of states."""
    states, scores = torch.randn(2, 5, 3), torch.randn(2, 5)  # (B, T, D), (B, T)
    scores[1, 2:] = 50.0  # large scores on padding must get no weight
    lengths = torch.tensor([5, 2])
    pooled, weights = impl.attention_pool(states, scores, lengths)
    for b, n in enumerate(lengths.tolist()):
        w = torch.exp(scores[b, :n]) / torch.exp(scores[b, :n]).sum()
        assert_close(
            weights[b, :n], w, f"row {b}: the weights should be the softmax over its {n} real tokens"
        )
        if n < 5:
            assert weights[b, n:].abs().max() == 0, f"row {b}: padding positions should get weight 0"
        assert_close(
            pooled[b],
            (w[:, None] * states[b, :n]).sum(0),
            f"row {b}: pooled should be the weighted sum of the states",
        )


@pytest.mark.exercise("n6.2")
def test_bilstm_classifies_through_attention(impl):
    """The BiLSTM classifier's logits come from the attention-pooled states; padding gets no weight."""
    torch.manual_seed(0)
    model = impl.BiLSTMAttention(20, n_embd=6, n_hidden=4, dropout=0.0).eval()
    ids = torch.tensor([[3, 4, 5, 0], [6, 7, 0, 0]])
    with torch.no_grad():
        pooled, weights = model.attend(ids)
        logits, _ = model(ids)
    assert_close(logits, model.head(pooled), "the logits should be the head applied to the pooled states")
    assert_close(weights.sum(1), torch.ones(2), "each sentence's attention weights should sum to 1")
    assert weights[0, 3] == 0 and weights[1, 2:].abs().max() == 0, "padding (id 0) should get weight 0"


def reference_ece(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> tuple[float, list[int]]:
    """The definition, one bin at a time: bin b holds confidences in (b / n, (b + 1) / n]."""
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    total, counts = 0.0, []
    for b in range(n_bins):
        inside = (confidence > b / n_bins) & (confidence <= (b + 1) / n_bins)
        counts.append(int(inside.sum()))
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total, counts


@pytest.mark.exercise("n6.3")
@pytest.mark.parametrize("n_classes", [2, 3])
def test_ece_matches_the_definition(impl, n_classes):
    """Bins by confidence (the largest probability); ECE: sum of bin share x |accuracy - confidence|."""
    rng = np.random.default_rng(n_classes)
    probs = softmax(rng.normal(0, 2, (500, n_classes)), axis=1)
    labels = np.where(rng.random(500) < 0.7, probs.argmax(1), rng.integers(0, n_classes, 500))
    want, counts = reference_ece(probs, labels, 10)
    got_counts = impl.reliability_bins(probs, labels, 10)[0].tolist()
    assert got_counts == counts, (
        f"bin b should hold the predictions whose confidence (largest probability) is in (b/10, (b+1)/10]: "
        f"counts {counts}, got {got_counts}"
    )
    got = impl.expected_calibration_error(probs, labels, 10)
    assert got == pytest.approx(want, abs=1e-12), f"the ECE should be {want:.6f}, got {got:.6f}"


@pytest.mark.exercise("n6.3")
def test_ece_is_small_when_calibrated_and_large_when_overconfident(impl):
    """Labels drawn with the stated probabilities: ECE near 0; the same predictions overconfident: large."""
    rng = np.random.default_rng(0)
    p_positive = rng.random(20000)
    probs = np.stack([1 - p_positive, p_positive], 1)
    labels = (rng.random(20000) < p_positive).astype(int)  # drawn with the stated probability
    calibrated = impl.expected_calibration_error(probs, labels, 10)
    assert calibrated < 0.02, f"calibrated predictions should have an ECE below 0.02, got {calibrated:.3f}"
    sharpened = softmax(3 * np.log(probs), axis=1)  # same predictions, far more sure
    overconfident = impl.expected_calibration_error(sharpened, labels, 10)
    assert overconfident > 0.1, (
        f"overconfident predictions should have an ECE above 0.1, got {overconfident:.3f}"
    )
