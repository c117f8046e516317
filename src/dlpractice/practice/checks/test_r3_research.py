"""Checks of lab r3: the prototypical loss, FedAvg's size-weighted average, and the volume-rendering weights,
against the definitions written out and the closed form of a constant-density medium."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dlpractice.practice.checks.support import assert_close


def prototypes_by_loops(support: torch.Tensor, support_y: torch.Tensor) -> torch.Tensor:
    return torch.stack([support[support_y == c].mean(0) for c in range(int(support_y.max()) + 1)])


@pytest.mark.exercise("r3.1")
def test_prototypical_logits_are_minus_squared_distances_to_the_class_means(impl) -> None:
    g = torch.Generator().manual_seed(0)
    support, query = (
        torch.randn(9, 4, generator=g, dtype=torch.float64),
        torch.randn(6, 4, generator=g, dtype=torch.float64),
    )
    support_y = torch.tensor([0, 1, 2, 0, 1, 2, 0, 0, 1])  # 4, 3 and 2 examples: means, not sums
    query_y = torch.tensor([1, 0, 2, 2, 1, 0])
    logits, loss = impl.prototypical_loss(support, support_y, query, query_y)
    prototypes = prototypes_by_loops(support, support_y)
    expected = torch.stack([torch.stack([-((q - p) ** 2).sum() for p in prototypes]) for q in query])
    assert tuple(logits.shape) == (6, 3), (
        f"one logit per query and class: expected (6, 3), got {tuple(logits.shape)}"
    )
    assert_close(
        logits,
        expected,
        "logit[q, n] = -||query_q - mean of class n's support embeddings||^2 (squared, negated; a mean)",
        atol=1e-8,
        rtol=1e-8,
    )
    assert_close(
        loss,
        F.cross_entropy(expected, query_y),
        "the loss is the mean cross-entropy of those logits",
        atol=1e-8,
        rtol=1e-8,
    )


@pytest.mark.exercise("r3.1")
def test_a_query_on_its_prototype_scores_zero_and_wins(impl) -> None:
    support = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 3.0], [0.0, 5.0]])
    support_y = torch.tensor([0, 0, 1, 1])  # prototypes (1, 0) and (0, 4)
    query = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    logits, loss = impl.prototypical_loss(support, support_y, query, torch.tensor([0, 1]))
    assert_close(
        logits,
        torch.tensor([[0.0, -17.0], [-17.0, 0.0]]),
        "prototypes (1, 0) and (0, 4): each query sits on its own (logit 0) and 1 + 16 = 17 from the other",
        atol=1e-5,
        rtol=1e-5,
    )
    assert float(loss) == pytest.approx(math.log1p(math.exp(-17.0)), abs=1e-6), (
        "cross-entropy of those logits"
    )


@pytest.mark.exercise("r3.2")
def test_average_weights_weighs_each_client_by_its_share_of_the_data(impl) -> None:
    g = torch.Generator().manual_seed(0)
    states = [{"w": torch.randn(2, 3, generator=g), "b": torch.randn(3, generator=g)} for _ in range(3)]
    sizes = [10, 30, 60]
    got = impl.average_weights(states, sizes)
    assert set(got) == {"w", "b"}, f"one averaged tensor per name of the state dicts, got {sorted(got)}"
    for name in ("w", "b"):
        expected = 0.1 * states[0][name] + 0.3 * states[1][name] + 0.6 * states[2][name]
        assert_close(
            got[name],
            expected,
            f"{name}: sum_k n_k / n * w_k (clients of 10, 30 and 60 examples)",
            atol=1e-6,
            rtol=1e-6,
        )


@pytest.mark.exercise("r3.2")
def test_one_client_holding_all_the_data_decides_alone(impl) -> None:
    states = [{"w": torch.tensor([1.0, 2.0])}, {"w": torch.tensor([5.0, -4.0])}]
    got = impl.average_weights(states, [0, 7])
    assert_close(
        got["w"], torch.tensor([5.0, -4.0]), "a client with no examples has weight 0", atol=1e-6, rtol=1e-6
    )


def closed_form_weights(sigma: float, t: torch.Tensor, far: float) -> torch.Tensor:
    """A constant density: the light stopped between t_i and t_{i+1} is exp(-sigma s_i) - exp(-sigma s_{i+1}),
    s measured from the first sample."""
    edges = torch.cat([t, torch.tensor([far])]) - t[0]
    return torch.exp(-sigma * edges[:-1]) - torch.exp(-sigma * edges[1:])


@pytest.mark.exercise("r3.3")
def test_weights_of_a_constant_medium_match_the_closed_form(impl) -> None:
    t = torch.tensor([1.0, 1.3, 1.9, 2.0, 2.6, 3.5], dtype=torch.float64)
    far = 4.0
    deltas = torch.cat([t[1:] - t[:-1], torch.tensor([far - t[-1]], dtype=torch.float64)])
    for sigma in (0.2, 1.5):
        got = impl.compositing_weights(torch.full((1, 6), sigma, dtype=torch.float64), deltas[None])
        assert tuple(got.shape) == (1, 6), f"one weight per sample: expected (1, 6), got {tuple(got.shape)}"
        assert_close(
            got[0],
            closed_form_weights(sigma, t, far),
            f"sigma={sigma}: w_i = T_i alpha_i with alpha_i = 1 - exp(-sigma delta_i) and T_i the product of "
            "(1 - alpha_j) over the samples BEFORE i (T_0 = 1)",
            atol=1e-6,
            rtol=1e-5,
        )


@pytest.mark.exercise("r3.3")
def test_an_opaque_sample_hides_everything_behind_it(impl) -> None:
    sigma = torch.tensor([[0.0, 1e4, 3.0, 3.0]])
    got = impl.compositing_weights(sigma, torch.full((1, 4), 0.5))
    assert_close(
        got,
        torch.tensor([[0.0, 1.0, 0.0, 0.0]]),
        "empty space (sigma 0) stops nothing, an opaque sample stops all the light, none is left behind it",
        atol=1e-5,
        rtol=1e-5,
    )
