"""Checks of lab v10: the NT-Xent loss and the k-nearest-neighbour vote on frozen features."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch


def nt_xent_by_loops(z1: torch.Tensor, z2: torch.Tensor, temperature: float) -> float:
    """The loss spelled out: for each of the 2B views, -log softmax of its partner among the other views."""
    z = torch.nn.functional.normalize(torch.cat([z1, z2]), dim=1).double()
    n, b = len(z), len(z1)
    total = 0.0
    for i in range(n):
        partner = (i + b) % n
        others = [j for j in range(n) if j != i]
        scores = {j: float(z[i] @ z[j]) / temperature for j in others}
        total -= scores[partner] - math.log(sum(math.exp(s) for s in scores.values()))
    return total / n


@pytest.mark.exercise("v10.1")
def test_nt_xent_is_the_cross_entropy_of_finding_the_partner(impl) -> None:
    generator = torch.Generator().manual_seed(0)
    z1, z2 = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    got = float(impl.nt_xent(z1, z2, 0.5))
    expected = nt_xent_by_loops(z1, z2, 0.5)
    assert got == pytest.approx(expected, rel=1e-5), (
        f"expected {expected:.5f}, got {got:.5f}: normalise both views to unit length, score every pair of "
        "the 2B views by cosine / temperature, leave each view's score with itself out (-inf), and take the "
        "cross-entropy of each view's partner (i <-> i + B), averaged over all 2B views"
    )
    scaled = float(impl.nt_xent(3 * z1, 0.1 * z2, 0.5))
    assert scaled == pytest.approx(expected, rel=1e-5), "the loss depends on directions only: normalise first"


@pytest.mark.exercise("v10.1")
def test_nt_xent_is_small_when_views_agree_and_differ_from_the_rest(impl) -> None:
    z = torch.eye(4)  # four images whose two views are identical and orthogonal to the others'
    low = float(impl.nt_xent(z, z.clone(), 0.05))
    assert low < 1e-3, (
        f"identical partners, orthogonal others, temperature 0.05: the loss should be ~0, got {low}"
    )
    swapped = float(impl.nt_xent(z, z[[1, 0, 3, 2]], 0.05))
    assert swapped > 5, (
        f"when each view's partner is another image's, the loss should be large, got {swapped}"
    )


@pytest.mark.exercise("v10.2")
def test_knn_votes_like_scikit_learn(impl) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    rng = np.random.default_rng(0)
    train_f, test_f = rng.normal(size=(60, 5)), rng.normal(size=(25, 5))
    train_y = rng.integers(0, 4, 60)
    for k in (1, 5, 9):
        reference = KNeighborsClassifier(k, metric="cosine", algorithm="brute").fit(train_f, train_y)
        got = np.asarray(impl.knn_predict(train_f, train_y, test_f, k))
        expected = reference.predict(test_f)
        assert got.shape == (25,), f"one class per test feature: expected shape (25,), got {got.shape}"
        assert (got == expected).all(), (
            f"k={k}: {int((got != expected).sum())} of 25 differ from scikit-learn's cosine k-NN; take the k "
            "training features of highest cosine similarity (not the lowest), and the most frequent class "
            "among them (the smaller class on a tie)"
        )


@pytest.mark.exercise("v10.2")
def test_knn_is_cosine_so_length_does_not_matter(impl) -> None:
    train_f = np.array([[1.0, 0.0], [0.0, 1.0]])
    test_f = np.array([[10.0, 1.0], [0.2, 3.0]])
    got = list(impl.knn_predict(train_f * [[100.0], [0.01]], np.array([0, 1]), test_f, 1))
    assert got == [0, 1], (
        f"expected [0, 1], got {got}: similarity is the cosine: scaling a feature changes nothing"
    )
