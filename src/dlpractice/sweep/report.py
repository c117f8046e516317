"""The sweep's report: the best trial and the command that runs it again, a parallel-coordinates plot,
the parameter importances, and the table of trials ($DLP_HOME/sweeps/<study>/report.md)."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from dlpractice.formatting import number, plural
from dlpractice.report import markdown_table, save_figure
from dlpractice.sweep.plan import Plan

MIN_TRIALS_FOR_IMPORTANCE = 4  # fANOVA's forest on fewer complete trials says nothing


def parallel_coordinates(study: Any, metric: str, path: Path) -> Path | None:
    """Optuna's parallel-coordinates plot (one line a complete trial, coloured by its value)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        try:
            axes = optuna.visualization.matplotlib.plot_parallel_coordinate(study, target_name=metric)
        except ValueError:  # nothing complete to draw
            return None
    figure = axes.get_figure()
    figure.set_size_inches(8, 4)
    return save_figure(figure, path)


def importances(study: Any, plan: Plan) -> dict[str, float] | None:
    """fANOVA importances of the searched fields, when there are two or more and enough trials."""
    import optuna

    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(plan.axes) < 2 or len(complete) < MIN_TRIALS_FOR_IMPORTANCE:
        return None
    try:
        return optuna.importance.get_param_importances(study)
    except (ValueError, RuntimeError):  # e.g. a field that took one value in every complete trial
        return None


def write_sweep_report(
    study: Any,
    plan: Plan,
    name: str,
    storage: str,
    rows: list[dict[str, Any]],
    best: dict[str, Any] | None,
    folder: Path,
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    states = {state: sum(r["state"] == state for r in rows) for state in ("complete", "pruned", "fail")}
    axes = "; ".join(a.describe() for a in plan.axes)
    parts = [
        f"# Sweep `{name}`: {plan.lab} · preset `{plan.preset}`",
        f"{plan.method} search over {axes}; {plan.metric} ({plan.goal}imise); budget "
        f"{plural(plan.trials, 'trial')}: {states['complete']} complete, {states['pruned']} pruned, "
        f"{states['fail']} failed (a trial whose worker died is run again). "
        f"Seed {plan.seed} for every trial. Storage `{storage}`.",
    ]
    if best is not None:
        params = ", ".join(f"{k}={number(v)}" for k, v in best["params"].items())
        parts += [
            f"## Best trial\nTrial {best['trial']}: {plan.metric} = {number(best['value'])} with {params} "
            f"(run `{best['run']}`). Run it again on its own:",
            f"```bash\n{plan.rerun_command(best['params'])}\n```",
        ]
    figure = parallel_coordinates(study, plan.metric, folder / "figures" / "parallel_coordinates.png")
    if figure is not None:
        parts.append(f"## Parallel coordinates\n![parallel coordinates]({figure.relative_to(folder)})")
    found = importances(study, plan)
    if found is not None:
        table = markdown_table(("field", "importance (fANOVA)"), [(k, number(v)) for k, v in found.items()])
        parts.append(f"## Parameter importances\n{table}")
    parts.append("## Trials\n" + markdown_table(*trial_table(plan, rows)))
    path = folder / "report.md"
    path.write_text("\n\n".join(parts) + "\n")
    return path


def trial_table(plan: Plan, rows: list[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    """Header and cells of the table of trials (the report's and the terminal's)."""
    names = [a.name for a in plan.axes]
    header = ["trial", "state", plan.metric, *names, "seconds", "run"]
    cells = [
        [
            str(r["trial"]),
            r["state"],
            number(r["value"]),
            *(number(r["params"].get(n)) for n in names),
            "—" if r["seconds"] is None else f"{r['seconds']:.1f}",
            r["run"],
        ]
        for r in rows
    ]
    return header, cells
