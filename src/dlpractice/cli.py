"""`dlp`: the command line. Parse, call, print; no machine learning here."""

from __future__ import annotations

import inspect
import re
import sys
from enum import Enum
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from dlpractice.errors import DlpError, RunInterrupted
from dlpractice.formatting import number, plural

if TYPE_CHECKING:
    from dlpractice.compare import Comparison, Row
    from dlpractice.registry import Lab
    from dlpractice.runner import RunRecord

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="dlpractice: run, read and practise every lab of the deep-learning syllabus.",
)
console = Console()
err_console = Console(stderr=True)


class DataSource(str, Enum):
    embedded = "embedded"
    real = "real"
    auto = "auto"


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"
    mps = "mps"


_fmt = number  # one rule for numbers in the terminal and in report.md (formatting.number)


def _met(value: bool | None) -> str:
    return {True: "[green]met[/]", False: "[red]not met[/]"}.get(value, "—")


def _bar_note(record: RunRecord) -> str:
    if record.spec.preset == "full" and record.data_source == "real":
        return ""
    return " [dim](the bar is set for the full preset on real data)[/]"


def _bar(lab: Lab) -> str:
    if lab.bar is None:
        return lab.metric or "—"
    return f"{lab.metric} {'≤' if lab.goal == 'min' else '≥'} {number(lab.bar)}"


def bar_line(lab: Lab, value: float | None, met: bool | None, record: RunRecord) -> str:
    """`val_loss ≤ 2.12: 2.363 → met`; a lab without a bar has nothing to meet: `accuracy: 0.93`."""
    if lab.bar is None:
        return f"{lab.metric or 'metric'}: {number(value)}"
    return f"{_bar(lab)}: {number(value)} → {_met(met)}{_bar_note(record)}"


def _fit_fields(fields: list[str], width: int, indent: int) -> str:
    """Join fields with " · ", starting a new line (indented) where the next would pass `width`.

    Rich wraps at any space, which splits "bar val_loss ≤ 2.12" between its words; breaking only
    between fields keeps each one whole. Fields hold rich markup: measure what is shown.
    """
    lines, line = [], fields[0]
    for field in fields[1:]:
        joined = f"{line} · {field}"
        if Text.from_markup(joined).cell_len <= width:
            line = joined
        else:
            lines.append(line)
            line = " " * indent + field
    return "\n".join([*lines, line])


@app.command("list")
def list_labs() -> None:
    """The syllabus as a tree by track: implemented or planned, prerequisites, last result."""
    from dlpractice.registry import SYLLABUS, TRACKS, implemented_modules, lab_record
    from dlpractice.tracking import tracked_runs

    latest: dict[str, object] = {}
    for tracked in tracked_runs():
        if tracked.info.status == "FINISHED":
            latest.setdefault(tracked.data.tags.get("lab"), tracked)
    done = implemented_modules()
    tree = Tree("[bold]dlpractice syllabus[/]")
    width = console.width - 8  # a lab's line starts after two levels of tree guides
    for track, title in TRACKS.items():
        branch = tree.add(f"[bold]{title}[/]")
        for entry in (lab for lab in SYLLABUS if lab.track == track):
            lab, state = entry, "[dim]planned[/]"
            if entry.id in done:
                try:
                    lab, state = lab_record(entry.id), "[green]implemented[/]"
                except DlpError:  # its track's extra is not installed: list it all the same
                    state = "[yellow]implemented, needs its extra[/]"
            fields = [f"{lab.id:4} {lab.slug:26} {state}"]
            if lab.requires:
                fields.append(f"needs {', '.join(lab.requires)}")
            if lab is not entry:  # the lab's own record: its metric and bar
                fields.append(f"bar {_bar(lab)}" if lab.bar is not None else f"metric {lab.metric}")
            last = latest.get(lab.id)
            if last is not None:
                tags = last.data.tags
                met = {"True": True, "False": False}.get(tags.get("bar_met"))
                value = _tag_number(tags.get("value"))
                verdict = "" if met is None else f" {_met(met)}"  # a lab without a bar: no verdict
                fields.append(f"last {value} ({tags.get('preset')}, {tags.get('data_source')}){verdict}")
            branch.add(_fit_fields(fields, width, indent=5))
    console.print(tree)


def _tag_number(text: str | None) -> str:
    """An MLflow tag holds a number as its repr ('2.362907171249'): read it back and format it."""
    try:
        return number(float(text))
    except (TypeError, ValueError):  # missing, or a tag that is not a number ("None")
        return text or "—"


LIST_ITEM = re.compile(r"(\d+[.)]|[-*•])\s")


def _reflow(doc: str) -> str:
    """A docstring's paragraphs as single lines, for the terminal to wrap at its own width.

    Docstrings are hard-wrapped for the source file (~105 columns); printed as they are, every
    line breaks again in a narrower terminal. A list item starts a new line (its indented
    continuation joins it); any other indented line, such as code, stays as it is.
    """
    paragraphs = []
    for paragraph in re.split(r"\n\s*\n", doc.strip()):
        lines: list[str] = []
        for line in paragraph.splitlines():
            joins = not line.startswith(" ") or bool(lines and LIST_ITEM.match(lines[-1]))
            if lines and joins and not LIST_ITEM.match(line):
                lines[-1] += " " + line.strip()
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return "\n\n".join(paragraphs)


@app.command()
def show(lab: Annotated[str, typer.Argument(help="lab id (l2) or slug (makemore-mlp)")]) -> None:
    """A lab's docstring, config fields with defaults, presets, data, metric and bar."""
    import dataclasses
    from pathlib import Path

    from dlpractice.config import describe, field_hints
    from dlpractice.registry import load_lab

    module = load_lab(lab)
    record = module.LAB
    console.print(f"[bold]{record.id} · {record.slug}[/] ({record.track})")
    console.print(_reflow(inspect.getdoc(module) or ""), markup=False)
    needs = ", ".join(record.requires) or "—"
    console.print(f"data: {', '.join(record.data) or '—'} · metric: {_bar(record)} · needs: {needs}")
    hints = field_hints(module.Config)
    table = Table("field", "type", "default", *module.PRESETS, title="config (--set key=value)")
    for f in dataclasses.fields(module.Config):
        table.add_row(  # the type with its valid range or choices: "int ≥ 1", "adamw | sgd"
            f.name,
            describe(hints[f.name]),
            _fmt(f.default),
            *(_fmt(p.get(f.name, "")) for p in module.PRESETS.values()),
        )
    console.print(table)
    article = Path(__file__).resolve().parents[2] / "docs" / "labs" / f"{record.id}-{record.slug}.md"
    if article.exists():
        console.print(f"article: {article}")


@app.command()
def run(
    lab: Annotated[str | None, typer.Argument(help="lab id (l2) or slug (makemore-mlp)")] = None,
    preset: Annotated[
        str,
        typer.Option(
            help="smoke: seconds; quick: minutes; full: reaches the bar; a lab may add its own (dlp show LAB)"
        ),
    ] = "quick",
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="override a config field: key=value")
    ] = None,
    data: Annotated[
        DataSource, typer.Option(help="embedded (offline), real (the usual dataset) or auto")
    ] = DataSource.auto,
    data_dir: Annotated[
        str | None, typer.Option(help="where real datasets lie (default: $DLP_DATA_DIR)")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="pretrained model of the Hugging Face labs: a Hub id or a local directory"),
    ] = None,
    device: Annotated[Device, typer.Option(help="auto picks cuda, then mps, then cpu")] = Device.auto,
    seed: Annotated[int, typer.Option(help="seeds every random number generator")] = 1337,
    threads: Annotated[
        int | None, typer.Option(help="torch CPU threads (default: $DLP_THREADS or 1)", min=1)
    ] = None,
    resume: Annotated[
        str | None, typer.Option(help="continue an interrupted run from its checkpoint")
    ] = None,
    progress: Annotated[bool, typer.Option(help="show the live progress bar")] = True,
) -> None:
    """Train, evaluate, track and report one lab."""
    from dlpractice.distributed import is_main_process
    from dlpractice.formatting import format_overrides
    from dlpractice.registry import load_lab
    from dlpractice.runner import RunSpec, resume_run, start_run

    console.quiet = not is_main_process()  # several processes (torchrun): one of them prints

    def print_config(cfg, spec: RunSpec) -> None:
        """What this run changes from the lab's defaults (the full config is in run.json and the report)."""
        presets = load_lab(spec.lab).PRESETS
        console.print(f"[bold]{spec.lab}[/] · " + format_overrides(cfg, spec.preset, presets[spec.preset]))

    overrides = [*(set_ or ()), *([f"model={model}"] if model else [])]  # --model is --set model=...
    if resume:
        if overrides:
            raise DlpError("--resume continues a run with its own config; --set and --model cannot change it")
        outcome = resume_run(resume, lab, show_progress=progress, on_config=print_config)
    else:
        if lab is None:
            raise DlpError("give a lab to run (e.g. `dlp run l2`) or --resume RUN")
        spec = RunSpec(lab, preset, tuple(overrides), data.value, data_dir, device.value, seed, threads or 0)
        outcome = start_run(spec, show_progress=progress, on_config=print_config)
    table = Table("metric", "value", title=f"{outcome.lab.id} · {outcome.lab.title}")
    for key, value in outcome.metrics.items():
        table.add_row(key, _fmt(value))
    console.print(table)
    console.print(bar_line(outcome.lab, outcome.value, outcome.met, outcome.record))
    console.print(f"run id: [bold]{outcome.run_id}[/] · {outcome.seconds:.1f} s")
    console.print(f"report: {outcome.report}", soft_wrap=True)


# `dlp runs` lists runs; `dlp runs compare A B` compares them: a group whose callback is the listing.
runs_app = typer.Typer(invoke_without_command=True)
app.add_typer(runs_app, name="runs")


@runs_app.callback()
def runs(
    context: typer.Context,
    lab: Annotated[str | None, typer.Option(help="only this lab (id or slug)")] = None,
    limit: Annotated[int, typer.Option(help="newest N runs")] = 30,
) -> None:
    """A table of tracked runs: lab, preset, data, metric, bar met, time. `dlp runs compare A B` compares."""
    if context.invoked_subcommand is not None:
        return
    from dlpractice.registry import resolve_id
    from dlpractice.tracking import tracked_runs

    rows = []
    for tracked in tracked_runs(resolve_id(lab) if lab else None, limit):
        tags = tracked.data.tags
        met = {"True": True, "False": False}.get(tags.get("bar_met"))
        rows.append(
            {
                "run": tags.get("dlp_run_id", tracked.info.run_id),
                "lab": tags.get("lab", "—"),
                "preset": tags.get("preset", "—"),
                "data": tags.get("data_source", "—"),
                "metric": tags.get("metric", "—"),
                "value": _tag_number(tags.get("value")),
                "bar": _met(met),
                "seconds": _tag_number(tags.get("seconds")),
                "status": _run_state(tags.get("dlp_run_id"), tracked.info.status),
            }
        )
    table = _runs_table(rows, console.width)
    if table is None:  # not even the id fits a table's borders: the ids alone, whole, one a line
        console.print("\n".join(row["run"] for row in rows), soft_wrap=True)
    else:
        console.print(table)


@runs_app.command("compare")
def runs_compare(
    names: Annotated[list[str] | None, typer.Argument(help="two or more run ids or unique prefixes")] = None,
) -> None:
    """Runs side by side: what differs in spec and config, the metrics, the loss curves (a report)."""
    from dlpractice.compare import compare, load_runs, write_comparison

    comparison = compare(load_runs(names or []))
    path = write_comparison(comparison)
    console.print(_comparison_table(comparison))
    for note in comparison.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    console.print(f"report: {path}", soft_wrap=True)


def _comparison_table(comparison: Comparison) -> Table:
    """About, what differs, metrics: one table, one column per run, the best metric cells in green."""
    table = Table()
    table.add_column("", overflow="fold")  # run ids and names fold onto two lines rather than lose their end
    for run in comparison.runs:
        table.add_column(run.label, overflow="fold")
    sections = [
        comparison.about,
        comparison.differences or [_same_row(len(comparison.runs))],
        comparison.metrics,
    ]
    for rows in sections:
        for i, row in enumerate(rows):
            cells = [f"[bold green]{c}[/]" if j in row.best else c for j, c in enumerate(row.cells)]
            table.add_row(row.name, *cells, end_section=i == len(rows) - 1)
    return table


def _same_row(count: int) -> Row:
    from dlpractice.compare import Row

    return Row("(spec, config)", ["same"] * count)


def _run_state(run_id: str | None, mlflow_status: str) -> str:
    """MLflow's status, except that a run whose process is gone shows as died, not running."""
    from dlpractice.home import runs_dir
    from dlpractice.runner import read_run

    run_dir = runs_dir() / run_id if run_id else None
    if mlflow_status == "RUNNING" and run_dir is not None and run_dir.is_dir():
        try:
            return read_run(run_dir).state
        except DlpError as err:  # no run.json: it died before writing one
            return "failed" if "before it started" in str(err) else "unreadable"
    return mlflow_status.lower()


RUN_COLUMNS = ("run", "lab", "preset", "data", "metric", "value", "bar", "seconds", "status")
# Dropped first to last when the terminal is narrow: the lab is the run id's prefix anyway; the run id,
# which is what a user copies into `dlp report`, is never dropped nor cut.
RUN_COLUMNS_DROPPED = ("lab", "seconds", "metric", "data", "status", "preset", "bar", "value")


def _runs_table(rows: list[dict[str, str]], width: int) -> Table | None:
    """The widest table of runs that fits `width` columns, whole cells only (None: none fits)."""
    shown = list(RUN_COLUMNS)
    for drop in (*RUN_COLUMNS_DROPPED, None):
        table = _table(shown, rows)
        if _natural_width(table) <= width:
            return table
        if drop:
            shown.remove(drop)
    return None


def _table(columns: list[str], rows: list[dict[str, str]]) -> Table:
    table = Table()
    for name in columns:
        longest = max((len(row[name]) for row in rows), default=0)
        table.add_column(name, no_wrap=True, min_width=longest if name == "run" else None)
    for row in rows:
        table.add_row(*(row[name] for name in columns))
    return table


def _natural_width(table: Table) -> int:
    """The width the table takes when nothing is squeezed (rich clamps a measure to the terminal)."""
    wide = console.options.update(max_width=10_000)
    return Measurement.get(console, wide, table).maximum


def _state_phrase(state: str) -> str:
    """How a run that has not finished stands, in words."""
    return {
        "died": "died (its process is gone; resume it if it has a checkpoint)",
        "failed": "failed",
        "interrupted": "was interrupted (resume it with `dlp run --resume`)",
    }.get(state, f"is {state}")


@app.command()
def report(run_id: Annotated[str, typer.Argument(help="run id or a unique prefix")]) -> None:
    """Print a run's report path and its summary."""
    from dlpractice.registry import lab_record
    from dlpractice.runner import find_run, read_run

    run_dir = find_run(run_id)
    record = read_run(run_dir)
    if record.state != "finished":
        raise DlpError(f"run {run_dir.name} {_state_phrase(record.state)}: no report yet")
    lab = lab_record(record.lab)
    console.print(f"report: {run_dir / 'report.md'}", soft_wrap=True)  # a path to copy: never broken
    about = [f"{lab.id} · {lab.title}", f"preset {record.spec.preset}", f"data {record.data_source}"]
    console.print(_fit_fields([*about, f"{record.seconds:.1f} s"], console.width, indent=0))
    console.print(bar_line(lab, record.value, record.met, record))
    for key, value in record.metrics.items():
        console.print(f"  {key}: {number(value)}")


@app.command()
def sample(
    run_id: Annotated[str, typer.Argument(help="run id or a unique prefix")],
    n: Annotated[int, typer.Option("-n", help="how many samples", min=1, max=10000)] = 10,
    seed: Annotated[int, typer.Option(help="sampling seed")] = 0,
) -> None:
    """Draw samples from a trained generative lab (e.g. new names)."""
    from dlpractice.config import config_from_dict
    from dlpractice.registry import load_lab
    from dlpractice.runner import find_run, read_run

    run_dir = find_run(run_id)
    record = read_run(run_dir)
    module = load_lab(record.lab)
    if not hasattr(module, "sample"):
        raise DlpError(f"lab {record.lab} is not generative: nothing to sample")
    if not (run_dir / "model.safetensors").exists():
        raise DlpError(f"run {run_dir.name} has no trained weights yet ({record.state})")
    for text in module.sample(run_dir, config_from_dict(module.Config, record.config), n, seed):
        console.print(text)


LOCAL = "127.0.0.1"


@app.command()
def serve(
    run_id: Annotated[str, typer.Argument(help="run id or a unique prefix")],
    host: Annotated[str, typer.Option(help="address to listen on (others than 127.0.0.1 are open)")] = LOCAL,
    port: Annotated[int, typer.Option(help="port to listen on", min=1, max=65535)] = 8000,
    max_batch: Annotated[int, typer.Option(help="most requests in one model call", min=1, max=1024)] = 16,
    max_wait_ms: Annotated[
        float, typer.Option(help="how long a request waits for others to join its batch", min=0, max=1000)
    ] = 5.0,
) -> None:
    """Serve a finished run: a JSON endpoint (POST /predict, /docs), a page with its failure cases (/ui)."""
    from dlpractice.serve.app import serve as serve_run

    def ready(line: str) -> None:
        console.print(line, soft_wrap=True, highlight=False)

    serve_run(run_id, host, port, max_batch, max_wait_ms, on_ready=ready)


def _practice_lab(name: str) -> str:
    """A lab id that has exercises (practice works before a lab's runnable file lands, e.g. f5)."""
    from dlpractice.practice.exercises import exercises_for
    from dlpractice.registry import resolve_id

    lab_id = resolve_id(name)
    exercises_for(lab_id)
    return lab_id


@app.command()
def practice(
    lab: Annotated[str, typer.Argument(help="lab id (l2) or slug (makemore-mlp)")],
    dir_: Annotated[
        str | None, typer.Option("--dir", help="where to write the workspace (default: ./practice/<lab>)")
    ] = None,
    force: Annotated[bool, typer.Option(help="overwrite files you have edited")] = False,
) -> None:
    """Write a workspace where the lab's exercises are stubs for you to fill in."""
    from pathlib import Path

    from dlpractice.practice.exercises import exercises_for
    from dlpractice.practice.progress import syllabus_progress
    from dlpractice.practice.workspace import default_dir, write_workspace

    lab_id = _practice_lab(lab)
    directory = Path(dir_) if dir_ else default_dir(lab_id)
    written = write_workspace(lab_id, directory, force)
    table = Table("exercise", "where", "task", "points", title=f"practice {lab_id}: {directory}")
    for exercise in exercises_for(lab_id):
        table.add_row(
            exercise.id, f"{exercise.path.name} · {exercise.function}", exercise.task, str(exercise.points)
        )
    console.print(table)
    console.print(
        f"wrote {plural(len(written), 'file')}; when ready: [bold]dlp check {lab_id}"
        f"{'' if dir_ is None else f' --dir {dir_}'}[/]"
    )
    state = next(p for p in syllabus_progress() if p.id == lab_id)
    if not state.unlocked:
        console.print(f"[yellow]note:[/] {lab_id} unlocks when you pass {', '.join(state.requires)}")


@app.command()
def check(
    lab: Annotated[str, typer.Argument(help="lab id (l2) or slug (makemore-mlp)")],
    dir_: Annotated[
        str | None, typer.Option("--dir", help="the workspace to grade (default: ./practice/<lab>)")
    ] = None,
    exercise: Annotated[str | None, typer.Option(help="grade only this exercise (e.g. l2.1)")] = None,
    json_: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
    timeout: Annotated[float, typer.Option(help="seconds allowed for each exercise's checks", min=1)] = 120.0,
) -> None:
    """Grade your workspace: each exercise's checks, a score out of 100 (pass at 70)."""
    import json
    from pathlib import Path

    from dlpractice.practice.checker import PASS_MARK, check_workspace
    from dlpractice.practice.progress import record_check
    from dlpractice.practice.workspace import default_dir

    lab_id = _practice_lab(lab)
    directory = Path(dir_) if dir_ else default_dir(lab_id)
    result = check_workspace(lab_id, directory, exercise, timeout)
    record_check(result)
    if json_:
        print(json.dumps(result.to_json(), indent=2))
    else:
        table = Table(
            "exercise", "passed", "points", "first failure", "hint", title=f"check {lab_id}: {directory}"
        )
        for row in result.results:
            mark = "[green]yes[/]" if row.passed else "[red]no[/]"
            points = f"{row.points if row.passed else 0}/{row.points}"
            table.add_row(row.id, mark, points, row.failure or "—", row.hint or "—")
        console.print(table)
        if result.partial:
            console.print(
                f"exercise {exercise}: {'passed' if result.passed else 'not passed'} "
                "(a lab score needs a full check: drop --exercise)"
            )
        else:
            verdict = "[green]passed[/]" if result.passed else f"[red]not passed[/] (pass at {PASS_MARK:.0f})"
            console.print(f"score {result.score:.0f}/100 → {verdict}")
    if not result.passed:
        raise typer.Exit(1)


@app.command()
def progress(
    all_: Annotated[bool, typer.Option("--all", help="show every lab, locked or planned too")] = False,
    reset: Annotated[bool, typer.Option(help="forget every recorded check (asks first)")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask before --reset")] = False,
) -> None:
    """The syllabus with your best score per lab, what is passed and what is unlocked."""
    from dlpractice.practice.checker import PASS_MARK
    from dlpractice.practice.progress import db_path, syllabus_progress
    from dlpractice.practice.progress import reset as reset_progress
    from dlpractice.registry import TRACKS

    if reset:
        if not yes and not typer.confirm(f"Forget all your progress in {db_path()}?", default=False):
            console.print("nothing changed")
            return
        reset_progress()
        console.print("progress reset")
        return
    labs = syllabus_progress()
    tree = Tree(f"[bold]your progress[/] (pass at {PASS_MARK:.0f}/100)")
    hidden = 0
    for track, title in TRACKS.items():
        # a lab passed before its prerequisites is shown: the footer counts it
        shown = [
            lab
            for lab in labs
            if lab.track == track and (all_ or (lab.exercises and (lab.unlocked or lab.passed)))
        ]
        hidden += sum(1 for lab in labs if lab.track == track) - len(shown)
        if not shown:
            continue
        branch = tree.add(f"[bold]{title}[/]")
        for lab in shown:
            branch.add(_progress_line(lab))
    console.print(tree)
    passed = sum(lab.passed for lab in labs)
    footer = f"{passed} of {plural(sum(1 for lab in labs if lab.exercises), 'practice lab')} passed"
    if hidden and not all_:
        footer += f" · {plural(hidden, 'locked or planned lab')} hidden (--all shows them)"
    console.print(footer)


def _progress_line(lab) -> str:
    line = f"{lab.id:4} {lab.slug:26}"
    if not lab.exercises:
        return line + (" [dim]no exercises yet[/]" if lab.implemented else " [dim]planned[/]")
    score = "—" if lab.best is None else f"{lab.best:.0f}"
    state = "[green]passed[/]" if lab.passed else ("open" if lab.unlocked else "[dim]locked[/]")
    line += f" {state} · best {score} · {plural(lab.exercises, 'exercise')}"
    if not lab.unlocked:
        line += f" · needs {', '.join(lab.requires)}"
    return line


@app.command()
def notebook(
    lab: Annotated[str, typer.Argument(help="lab id (l2) or slug (makemore-mlp)")],
    out: Annotated[
        str | None, typer.Option(help="the .ipynb to write (default: ./<id>-<slug>.ipynb)")
    ] = None,
    preset: Annotated[str, typer.Option(help="the preset the notebook runs")] = "smoke",
) -> None:
    """Write the lab as a Jupyter notebook that runs top to bottom."""
    from pathlib import Path

    from dlpractice.config import check_preset
    from dlpractice.practice.notebook import write_notebook
    from dlpractice.registry import load_lab

    module = load_lab(lab)
    check_preset(module.PRESETS, preset)
    path = Path(out) if out else Path(f"{module.LAB.id}-{module.LAB.slug}.ipynb")
    write_notebook(module, path, preset)
    console.print(f"notebook: {path} (open it with `jupyter lab {path}`)")


class Goal(str, Enum):
    min = "min"
    max = "max"


@app.command()
def sweep(
    lab: Annotated[str | None, typer.Argument(help="lab id (l2) or slug; none with --join")] = None,
    preset: Annotated[str, typer.Option(help="the preset every trial starts from")] = "quick",
    grid: Annotated[
        list[str] | None, typer.Option(help="key=a,b,c: values to try (alone: every combination)")
    ] = None,
    random: Annotated[int | None, typer.Option(help="N random trials over --space and --grid", min=1)] = None,
    optuna: Annotated[
        int | None, typer.Option(help="N trials of Optuna's TPE over --space and --grid", min=1)
    ] = None,
    space: Annotated[
        list[str] | None, typer.Option(help="key=lo:hi or key=lo:hi:log: a numeric range to search")
    ] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="key=value shared by every trial")] = None,
    metric: Annotated[str | None, typer.Option(help="the metric to optimise (default: the lab's)")] = None,
    goal: Annotated[Goal | None, typer.Option(help="min or max (default: the lab's goal)")] = None,
    prune: Annotated[bool, typer.Option(help="stop trials whose val loss is worse than the median")] = False,
    workers: Annotated[int, typer.Option(help="processes running trials here", min=1)] = 1,
    study: Annotated[
        str | None, typer.Option(help="the study's name (default: from lab, preset and search)")
    ] = None,
    storage: Annotated[
        str | None, typer.Option(help="SQLAlchemy URL of the study database (default: $DLP_HOME/sweeps.db)")
    ] = None,
    join: Annotated[
        str | None, typer.Option(help="run trials of an existing study (another terminal or machine)")
    ] = None,
    data: Annotated[DataSource, typer.Option(help="embedded, real or auto")] = DataSource.auto,
    device: Annotated[Device, typer.Option(help="auto picks cuda, then mps, then cpu")] = Device.auto,
    seed: Annotated[int, typer.Option(help="the seed of every trial")] = 1337,
    heartbeat: Annotated[
        int, typer.Option(help="seconds between a trial's heartbeats; a silent trial is run again", min=1)
    ] = 10,
    worker_index: Annotated[int, typer.Option(hidden=True)] = 0,
) -> None:
    """Search a lab's config: every trial a tracked run, Optuna underneath; a report with the best trial.

    The same command again resumes the sweep (it runs only the missing trials)."""
    from dlpractice.sweep.engine import join as join_study
    from dlpractice.sweep.engine import run_sweep
    from dlpractice.sweep.plan import plan_sweep
    from dlpractice.sweep.report import trial_table

    if join:
        if lab or grid or space or random or optuna or set_:
            raise DlpError("--join takes the lab and the search from the study: give only --storage with it")
        ran = join_study(join, storage, worker_index, lambda line: console.print(line, highlight=False))
        console.print(f"worker done: {plural(ran, 'trial')} run here")
        return
    if lab is None:
        raise DlpError("give a lab to sweep (e.g. `dlp sweep l2 --grid lr=0.001,0.003`) or --join STUDY")
    plan = plan_sweep(
        lab,
        preset,
        grid or [],
        space or [],
        random,
        optuna,
        metric,
        goal.value if goal else None,
        overrides=tuple(set_ or ()),
        seed=seed,
        data=data.value,
        device=device.value,
        prune=prune,
        heartbeat=heartbeat,
    )
    result = run_sweep(plan, study, storage, workers, lambda line: console.print(line, highlight=False))
    header, cells = trial_table(plan, result.rows)
    table = Table(*header, title=f"sweep {result.name}")
    for row in cells:
        table.add_row(*row)
    console.print(table)
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False)
    if result.best is not None:
        best = result.best
        value = number(best["value"])
        console.print(f"best: trial {best['trial']} · {plan.metric} {value} · run {best['run']}")
        console.print(f"again: {plan.rerun_command(best['params'])}", soft_wrap=True, highlight=False)
    console.print(f"report: {result.report}", soft_wrap=True)


def main() -> None:
    """Entry point: user mistakes print one line and exit 2; an interrupted run exits 130."""
    try:
        app()
    except RunInterrupted as stop:
        err_console.print(f"[yellow]{stop}[/]", soft_wrap=True, highlight=False)
        sys.exit(130)
    except DlpError as error:
        # the message is text, not markup: "pip install 'dlpractice[nlp]'" keeps its brackets
        err_console.print(Text.assemble(("error:", "red"), f" {error}"), soft_wrap=True, highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("[yellow]interrupted[/]")
        sys.exit(130)
