"""`dlp notebook`: a lab as a Jupyter notebook that runs top to bottom.

The cells follow the lab file: its docstring as the title cell, the imports, one cell per definition
(headed by the first line of its docstring), then the body of `run(cfg, ctx)` unrolled into one cell per
section (the blocks the file separates with blank lines and comments), so a learner can execute and
inspect each step. The notebook's own definitions are what runs: edit a cell, re-run from there.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
from pathlib import Path
from types import ModuleType

from dlpractice.errors import DlpError


def top_level_blocks(source: str) -> list[tuple[ast.stmt, str]]:
    """Each top-level statement with its source, comments just above it included."""
    lines = source.splitlines()
    tree = ast.parse(source)
    blocks = []
    for node in tree.body:
        first = node.lineno - 1
        if isinstance(node, ast.FunctionDef | ast.ClassDef) and node.decorator_list:
            first = node.decorator_list[0].lineno - 1
        while first > 0 and lines[first - 1].lstrip().startswith("#"):
            first -= 1
        blocks.append((node, "\n".join(lines[first : node.end_lineno])))
    return blocks


def unrollable(run: ast.FunctionDef) -> bool:
    """True when run()'s only `return` is its last statement (so its body can run as cells)."""
    returns = [node for node in ast.walk(run) if isinstance(node, ast.Return)]
    nested = [
        node
        for inner in ast.walk(run)
        if inner is not run and isinstance(inner, ast.FunctionDef | ast.Lambda)
        for node in ast.walk(inner)
        if isinstance(node, ast.Return)
    ]
    return len(returns) - len(nested) == 1 and isinstance(run.body[-1], ast.Return)


def run_sections(source: str, run: ast.FunctionDef) -> list[str]:
    """run()'s body, dedented, split where the file leaves a blank line or starts a comment."""
    lines = source.splitlines()
    body = run.body[1:] if ast.get_docstring(run) else run.body
    sections: list[list[str]] = []
    previous_end = body[0].lineno - 1
    for node in body:
        chunk = lines[previous_end : node.end_lineno]
        starts_section = not sections or any(
            not line.strip() or line.lstrip().startswith("#") for line in chunk[:1]
        )
        text = [line for line in chunk if line.strip()] if starts_section else chunk
        if starts_section:
            sections.append(text)
        else:
            sections[-1].extend(text)
        previous_end = node.end_lineno
    cells = [textwrap.dedent("\n".join(section)) for section in sections]
    head, value = cells[-1].rsplit("return ", 1)
    cells[-1] = f"{head}metrics" if value.strip() == "metrics" else f"{head}metrics = {value}\nmetrics"
    return cells


def notebook_cells(module: ModuleType, preset: str) -> list[tuple[str, str]]:
    """(kind, text) cells: 'markdown' or 'code'."""
    source = inspect.getsource(module)
    lab = module.LAB
    cells = [("markdown", f"# {lab.id} · {lab.title}\n\n{inspect.getdoc(module)}")]
    imports: list[str] = []
    run_node = None
    for node, text in top_level_blocks(source):
        if isinstance(node, ast.Expr) and isinstance(getattr(node, "value", None), ast.Constant):
            continue  # the module docstring: already the title cell
        if isinstance(node, ast.Import | ast.ImportFrom):
            imports.append(text)
            continue
        if imports:
            cells.append(("code", "\n".join(imports)))
            imports = []
        if isinstance(node, ast.FunctionDef) and node.name == "run":
            run_node, run_text = node, text
            continue
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            doc = (ast.get_docstring(node) or "").split("\n")[0]
            cells.append(("markdown", f"### `{node.name}`" + (f"\n\n{doc}" if doc else "")))
        cells.append(("code", text))
    if run_node is None:
        raise DlpError(f"lab {lab.id} has no run(cfg, ctx) to put in a notebook")
    cells += run_cells(source, run_node, run_text, preset)
    return cells


def run_cells(source: str, run: ast.FunctionDef, run_text: str, preset: str) -> list[tuple[str, str]]:
    setup = (
        "from dlpractice.config import build_config\n"
        "from dlpractice.runner import RunSpec, finish_run, open_run\n\n"
        f'cfg = build_config(Config, PRESETS, "{preset}")  # try "quick" for a real result\n'
        f'spec = RunSpec(LAB.id, "{preset}", data="embedded", device="cpu", origin="notebook")\n'
        "ctx = open_run(spec, cfg)  # the run directory, run.json and the tracked run\n"
        "cfg"
    )
    cells = [
        ("markdown", "## Run the lab, step by step\n\nThe body of `run(cfg, ctx)`, one section a cell."),
        ("code", setup),
    ]
    if unrollable(run):
        cells += [("code", text) for text in run_sections(source, run)]
    else:
        cells += [("code", run_text), ("code", "metrics = run(cfg, ctx)\nmetrics")]
    show = (
        "outcome = finish_run(ctx, metrics)  # report.md, run.json and the tracked run\n"
        "from IPython.display import Image, Markdown, display\n\n"
        "for title, path in ctx.figures:\n"
        '    display(Markdown(f"**{title}**"), Image(filename=str(path)))\n'
        "for title, text in ctx.sections:\n"
        '    display(Markdown(f"### {title}\\n\\n{text}"))'
    )
    return [*cells, ("markdown", "## Figures and notes"), ("code", show)]


def write_notebook(module: ModuleType, path: Path, preset: str = "smoke") -> Path:
    import nbformat

    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.cells = [
        nbformat.v4.new_markdown_cell(text) if kind == "markdown" else nbformat.v4.new_code_cell(text)
        for kind, text in notebook_cells(module, preset)
    ]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(notebook, str(path))
    except OSError as err:
        raise DlpError(f"cannot write {path}: {err.strerror or err}") from None
    return path
