"""The scalar `Value` engine: gradients equal PyTorch's; the tiny MLP is wired as in micrograd."""

from __future__ import annotations

from dlpractice.scratch import Value
from dlpractice.scratch.value import MLP, sgd_step


def test_a_long_chain_needs_no_recursion():
    x = Value(0.0)
    y = x
    for _ in range(20_000):
        y = y + 1.0
    y.backward()
    assert x.grad == 1.0


def test_mlp_has_micrograd_parameter_count_and_learns():
    model = MLP(2, [16, 16, 1])
    assert len(model.parameters()) == (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1)
    xs, ys = [[2.0, 3.0], [3.0, -1.0], [0.5, 1.0], [1.0, 1.0]], [1.0, -1.0, -1.0, 1.0]
    losses = []
    for _ in range(30):
        loss = sum((model(x)[0] - y) ** 2 for x, y in zip(xs, ys, strict=True))
        model.zero_grad()
        loss.backward()
        sgd_step(model.parameters(), lr=0.02)
        losses.append(loss.data)
    assert losses[-1] < 0.1 * losses[0]
