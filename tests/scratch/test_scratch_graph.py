"""The DOT drawing lists the operations and shapes of a small expression."""

from __future__ import annotations

import shutil

import numpy as np

from dlpractice.scratch import Tensor, Value, draw_graph, to_dot


def test_tensor_graph_shows_ops_and_shapes():
    x = Tensor(np.ones((4, 3)), label="x")
    w = Tensor(np.ones((3, 2)), requires_grad=True, label="w")
    loss = (x @ w).tanh().sum()
    dot = to_dot(loss)
    assert dot.startswith("digraph G {") and dot.rstrip().endswith("}")
    for text in ['"@"', '"tanh"', '"sum"', "4x3 float64", "w\\n3x2"]:
        assert text in dot
    assert dot.count("->") == 3 + (2 + 1 + 1)  # each op feeds its result; @ has two inputs, the rest one


def test_value_graph_shows_data_and_grad():
    a, b = Value(2.0, label="a"), Value(-3.0, label="b")
    out = a * b + 1.0
    out.backward()
    dot = to_dot(out)
    assert '"*"' in dot and '"+"' in dot and "a\\ndata 2\\ngrad -3" in dot


def test_draw_graph_writes_dot_and_png_when_graphviz_is_installed(tmp_path):
    path = draw_graph(Value(1.0) * 2.0, tmp_path / "graph")
    assert (tmp_path / "graph.dot").read_text().startswith("digraph")
    assert path.suffix == (".png" if shutil.which("dot") else ".dot")
