"""Draw the computational graph behind a `Value` or `Tensor` as Graphviz DOT text (and a PNG).

Each value is a box (its label, then the number and gradient for a `Value`, the shape and dtype for
a `Tensor`); the operation that produced it is an ellipse feeding the box, as in micrograd's
drawings. Writes DOT text without the `graphviz` Python package; a PNG is rendered only when the
`dot` program is installed. Meant for small expressions: every node is drawn.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from dlpractice.scratch.tensor import Tensor
from dlpractice.scratch.value import Value, topological_order


def _quote(text: str) -> str:
    """A DOT string; backslashes are left alone so that DOT's line break escape \\n works."""
    return '"' + text.replace('"', '\\"') + '"'


def _describe(node: Value | Tensor) -> str:
    name = f"{node.label}\\n" if node.label else ""
    if isinstance(node, Value):
        return f"{name}data {node.data:.4g}\\ngrad {node.grad:.4g}"
    shape = "x".join(map(str, node.shape)) or "scalar"
    return f"{name}{shape} {node.dtype}" + ("\\nhas grad" if node.grad is not None else "")


def to_dot(root: Value | Tensor, rankdir: str = "LR") -> str:
    """The graph of everything `root` was computed from, inputs on the left, `root` on the right."""
    lines = ["digraph G {", f"  rankdir={rankdir};", '  node [fontname="Helvetica", fontsize=10];']
    for node in topological_order(root):
        node_id = f"n{id(node)}"
        lines.append(f"  {node_id} [shape=box, label={_quote(_describe(node))}];")
        if node.op:
            lines.append(f"  {node_id}_op [shape=ellipse, label={_quote(node.op)}];")
            lines.append(f"  {node_id}_op -> {node_id};")
            lines.extend(f"  n{id(parent)} -> {node_id}_op;" for parent in node._parents)
    lines.append("}")
    return "\n".join(lines) + "\n"


def draw_graph(root: Value | Tensor, path: str | Path) -> Path:
    """Write `path` with suffix .dot, and .png next to it when Graphviz's `dot` is installed.

    Returns the PNG's path if one was rendered, else the DOT file's.
    """
    dot_path = Path(path).with_suffix(".dot")
    dot_path.parent.mkdir(parents=True, exist_ok=True)
    dot_path.write_text(to_dot(root))
    dot_program = shutil.which("dot")
    if dot_program is None:
        return dot_path
    png_path = dot_path.with_suffix(".png")
    subprocess.run([dot_program, "-Tpng", str(dot_path), "-o", str(png_path)], check=True, timeout=60)
    return png_path
