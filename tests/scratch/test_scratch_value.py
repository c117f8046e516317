"""The scalar `Value` engine: gradients equal PyTorch's; the tiny MLP is wired as in micrograd."""

from __future__ import annotations

import pytest
import torch

from dlpractice.scratch import Value
from dlpractice.scratch.value import MLP, sgd_step


def expression(a, b, relu, tanh, exp, log):
    """micrograd's test expression, plus tanh, exp and log; works on Values and on torch scalars."""
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + relu(b + a)
    d = d + 3 * d + relu(b - a)
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    return g * 1e-3 + tanh(a * 0.3) + exp(b * 0.1) + log(a * a + 1)


@pytest.mark.exercise("f1.1")
def test_value_gradients_match_torch(impl):
    Value = impl.Value
    a, b = Value(-4.0), Value(2.0)
    out = expression(a, b, Value.relu, Value.tanh, Value.exp, Value.log)
    out.backward()
    ta = torch.tensor(-4.0, dtype=torch.float64, requires_grad=True)
    tb = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    ref = expression(ta, tb, torch.relu, torch.tanh, torch.exp, torch.log)
    ref.backward()
    assert out.data == pytest.approx(ref.item(), abs=1e-9)
    assert a.grad == pytest.approx(ta.grad.item(), abs=1e-6)
    assert b.grad == pytest.approx(tb.grad.item(), abs=1e-6)


@pytest.mark.exercise("f1.1")
def test_value_used_twice_collects_both_gradients(impl):
    a = impl.Value(3.0)
    (a * a + a).backward()
    assert a.grad == 7.0


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
