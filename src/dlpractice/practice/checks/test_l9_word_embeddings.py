"""Checks of lab l9: the skip-gram negative-sampling loss, the GloVe loss and 3CosAdd analogies, against
their formulas written out."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlpractice.practice.checks.support import assert_close


def random_vectors(n: int = 40, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """Vectors of very different lengths, so any method that forgets to normalise answers differently."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g) * torch.rand(n, 1, generator=g).mul(10).exp()


def reference_negative_sampling(v: torch.Tensor, u: torch.Tensor, centre, noise, context) -> torch.Tensor:
    """The loss written as binary cross-entropy: label 1 for the observed pair, 0 for each noise pair."""
    scores = torch.einsum("bd,bkd->bk", v[centre], u[torch.cat([context[:, None], noise], 1)])
    labels = torch.zeros_like(scores)
    labels[:, 0] = 1.0
    return F.binary_cross_entropy_with_logits(scores, labels, reduction="none").sum(1).mean()


@pytest.mark.exercise("l9.1")
def test_skipgram_loss_equals_binary_cross_entropy_on_the_same_scores(impl):
    """Scores v_centre . u_k for the context and K noise words; loss = -log s(pos) - sum log s(-noise)."""
    model = impl.SkipGramNS(30, 6).double()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        model.centre.weight.copy_(torch.randn(30, 6, generator=g, dtype=torch.float64))
        model.context.weight.copy_(torch.randn(30, 6, generator=g, dtype=torch.float64))
    centre, context = torch.randint(30, (12,), generator=g), torch.randint(30, (12,), generator=g)
    noise = torch.randint(30, (12, 4), generator=g)
    scores, loss = model(centre, noise, context)
    v, u = model.centre.weight, model.context.weight
    expected_scores = torch.einsum("bd,bkd->bk", v[centre], u[torch.cat([context[:, None], noise], 1)])
    assert_close(
        scores,
        expected_scores,
        "scores should be (B, 1 + K): the centre vector dotted with the context word, then each noise word",
        atol=1e-10,
        rtol=0,
    )
    expected = reference_negative_sampling(v, u, centre, noise, context)
    assert_close(
        loss,
        expected,
        "the loss should be the mean over the batch of -log sigmoid(positive score) minus the SUM over "
        "the K noise words of log sigmoid(-score)",
        atol=1e-6,
        rtol=0,
    )
    grads = torch.autograd.grad(loss, [v, u])
    expected_grads = torch.autograd.grad(expected, [v, u])
    for name, ours, theirs in zip(("centre", "context"), grads, expected_grads):
        assert_close(
            ours, theirs, f"the gradient of the {name} vectors should be the formula's", atol=1e-8, rtol=0
        )


@pytest.mark.exercise("l9.1")
def test_skipgram_loss_at_initialisation_is_ln2_per_pair(impl):
    """u starts at zero: every score is 0 and each of the 1 + K pairs costs ln 2."""
    model = impl.SkipGramNS(20, 8)
    _, loss = model(torch.tensor([1, 2, 3]), torch.tensor([[4, 5], [6, 7], [8, 9]]), torch.tensor([0, 0, 1]))
    assert loss.item() == pytest.approx(3 * np.log(2), abs=1e-6), (
        f"with every score 0 and K=2 the loss should be 3 ln 2 = {3 * np.log(2):.4f} (ln 2 per pair, "
        f"summed over the pairs, averaged over the batch); got {loss.item():.4f}"
    )


def glove_model(impl, x_max: float, alpha: float):
    model = impl.GloVe(10, 4, x_max=x_max, alpha=alpha).double()
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


@pytest.mark.exercise("l9.2")
@pytest.mark.parametrize(("x_max", "alpha"), [(100.0, 0.75), (5.0, 0.5)])
def test_glove_loss_equals_the_formula_in_numpy(impl, x_max, alpha):
    """mean of f(X_ij) (w_i . w~_j + b_i + b~_j - log X_ij)^2 with f(x) = min(1, (x / x_max)^alpha)."""
    model = glove_model(impl, x_max, alpha)
    rows, cols = torch.tensor([0, 1, 2, 3, 9, 9, 4]), torch.tensor([1, 0, 5, 3, 8, 2, 7])
    counts = torch.tensor([0.5, 3.0, 12.0, 150.0, 1.0, 40.0, 5.0], dtype=torch.float64)  # some above x_max
    predicted, loss = model(rows, cols, counts)
    w, wc = model.word.weight.detach().numpy(), model.context.weight.detach().numpy()
    b, bc = model.word_bias.weight.detach().numpy()[:, 0], model.context_bias.weight.detach().numpy()[:, 0]
    r, c, x = rows.numpy(), cols.numpy(), counts.numpy()
    dot = np.array([w[i] @ wc[j] for i, j in zip(r, c)]) + b[r] + bc[c]
    weight = np.array([min(1.0, (v / x_max) ** alpha) for v in x])
    assert_close(
        predicted.detach().numpy(), dot, "the prediction should be w_i . w~_j + b_i + b~_j", atol=1e-12
    )
    want = np.mean(weight * (dot - np.log(x)) ** 2)
    assert loss.item() == pytest.approx(want, abs=1e-10), (
        f"the loss should be mean(min(1, (X / x_max)^alpha) (prediction - log X)^2) = {want:.6f} "
        f"(the weight capped at 1), got {loss.item():.6f}"
    )


@pytest.mark.exercise("l9.2")
def test_glove_loss_is_zero_when_the_prediction_is_log_x(impl):
    """When every prediction equals log X the loss is exactly 0."""
    model = glove_model(impl, 10.0, 0.75)
    rows, cols = torch.tensor([0, 1]), torch.tensor([2, 3])
    predicted, _ = model(rows, cols, torch.ones(2, dtype=torch.float64))
    _, loss = model(rows, cols, predicted.detach().exp())
    assert loss.item() == pytest.approx(0.0, abs=1e-20), (
        f"when the prediction equals log X the loss should be 0, got {loss.item():.3g}"
    )


def brute_force_3cosadd(vectors: np.ndarray, a: int, b: int, c: int, k: int) -> list[int]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    scores = {}
    for d in range(len(vectors)):
        if d not in (a, b, c):
            scores[d] = unit[d] @ unit[b] - unit[d] @ unit[a] + unit[d] @ unit[c]
    return sorted(scores, key=scores.get, reverse=True)[:k]


@pytest.mark.exercise("l9.3")
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_analogy_equals_a_brute_force_3cosadd(impl, seed):
    """a : b :: c : ? answers the k words d (not a, b or c) of largest cos(d, b) - cos(d, a) + cos(d, c)."""
    vectors = random_vectors(seed=seed).double()
    a, b, c = torch.tensor([0, 3, 6, 9, 12]), torch.tensor([1, 4, 7, 10, 13]), torch.tensor([2, 5, 8, 11, 14])
    answers = impl.analogy(vectors, a, b, c, k=3)
    assert answers.shape == (5, 3), (
        f"5 questions, k=3: the answers should be (5, 3), got {tuple(answers.shape)}"
    )
    expected = [brute_force_3cosadd(vectors.numpy(), *q, 3) for q in zip(a.tolist(), b.tolist(), c.tolist())]
    assert answers.tolist() == expected, (
        "the answers should rank words by cos(d, b) - cos(d, a) + cos(d, c) on unit-length vectors "
        f"(normalise first); expected {expected[0]} for the first question, got {answers.tolist()[0]}"
    )


@pytest.mark.exercise("l9.3")
def test_analogy_solves_a_planted_relation_and_never_answers_a_question_word(impl):
    """king - man + woman lands on queen when the vectors are built that way; lengths do not matter."""
    base = torch.eye(6)[:, :6]
    royal, male, female = base[0], base[1], base[2]
    vectors = torch.stack([royal + male, royal + female, 3 * male, 0.2 * female, base[3], base[4]])
    answer = impl.analogy(vectors, torch.tensor([2]), torch.tensor([0]), torch.tensor([3]), k=3)
    assert answer[0, 0].item() == 1, f"man : king :: woman : queen (id 1), got id {answer[0, 0].item()}"
    assert set(answer[0].tolist()) == {1, 4, 5}, (
        f"the question's own words (2, 0, 3) may never be answers; got {answer[0].tolist()}"
    )
