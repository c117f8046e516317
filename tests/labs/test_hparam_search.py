"""Lab f8's study storage: an interrupted search resumes with only its missing trials; workers share it."""

from __future__ import annotations

import json

import numpy as np
import optuna
import pytest
from optuna.trial import TrialState

from dlpractice.errors import RunInterrupted
from dlpractice.home import runs_dir
from dlpractice.labs.foundations import f8_hparam_search as f8
from dlpractice.runner import RunSpec, resume_run, start_run
from dlpractice.tracking import client

SMALL = ("trials=3", "steps=5")  # per method; a few seconds in all


def studies(run_dir) -> dict[str, list[optuna.trial.FrozenTrial]]:
    """Every trial of each method's study in the run's SQLite file ([] for a study not started)."""
    storage = f"sqlite:///{run_dir / f8.STUDY_FILE}"
    started = optuna.get_all_study_names(storage)
    return {
        m: optuna.load_study(study_name=m, storage=storage).get_trials() if m in started else []
        for m in f8.METHODS
    }


def finished(trials) -> list[tuple[int, tuple, float]]:
    """(number, sorted params, val accuracy) of each finished trial."""
    return [
        (t.number, tuple(sorted(t.params.items())), t.value) for t in trials if t.state == TrialState.COMPLETE
    ]


def planned(method: str, seed: int) -> set[tuple]:
    """What grid and random search decide up front (the lab's own functions, from the seed)."""
    rng = np.random.default_rng(seed)
    configs = f8.grid_configs(3, seed) if method == "grid" else [f8.sample_config(rng) for _ in range(3)]
    return {tuple(sorted(c.items())) for c in configs}


class CountingTrainer:
    """Wraps train_and_score: counts calls and, if asked, stops the run in call `fail_at`."""

    def __init__(self, fail_at: int | None = None):
        self.calls = 0
        self.fail_at = fail_at

    def __call__(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RunInterrupted("simulated interruption in the middle of a trial")
        return TRAIN_AND_SCORE(*args, **kwargs)


TRAIN_AND_SCORE = f8.train_and_score


@pytest.mark.slow
def test_interrupted_search_resumes_with_only_the_missing_trials(monkeypatch: pytest.MonkeyPatch) -> None:
    # 4 trials finish (3 grid, 1 random), the 5th (random) is cut off mid-training
    monkeypatch.setattr(f8, "train_and_score", CountingTrainer(fail_at=5))
    with pytest.raises(RunInterrupted, match="resume with: dlp run f8 --resume"):
        start_run(RunSpec("f8", "smoke", SMALL, data="embedded"))
    (run_dir,) = runs_dir().glob("f8-*")
    assert json.loads((run_dir / "run.json").read_text())["status"] == "interrupted"
    before = studies(run_dir)
    assert [len(finished(before[m])) for m in f8.METHODS] == [3, 1, 0]
    assert [t.state for t in before["random"]].count(TrialState.RUNNING) == 1  # the one cut off

    resumed_trainer = CountingTrainer()
    monkeypatch.setattr(f8, "train_and_score", resumed_trainer)
    resumed = resume_run(run_dir.name)
    assert resumed_trainer.calls == 2 + 3 + 1  # random's 2 missing trials, TPE's 3, the default config
    after = studies(run_dir)
    for method in f8.METHODS:
        trials = finished(after[method])
        assert len(trials) == 3 and resumed.metrics[f"{method}_trials"] == 3
        assert len({number for number, _, _ in trials}) == len({params for _, params, _ in trials}) == 3
        assert not [t for t in after[method] if t.state in (TrialState.RUNNING, TrialState.WAITING)]
    assert set(finished(after["grid"])) == set(finished(before["grid"]))  # kept, not run again
    for method in ("grid", "random"):  # nothing planned was lost or repeated
        done = {params for _, params, _ in finished(after[method])}
        assert done == planned(method, resumed.record.spec.seed)

    # the same trials and scores as a run never stopped; each trial tracked once
    unbroken = start_run(RunSpec("f8", "smoke", SMALL, data="embedded"))
    again = studies(unbroken.run_dir)
    for method in f8.METHODS:
        assert {t[1:] for t in finished(after[method])} == {t[1:] for t in finished(again[method])}
    mlflow_run = resumed.record.mlflow_run_id
    assert len(client().get_metric_history(mlflow_run, "random_val_accuracy")) == 3
    assert "5 of the 9 trials ran in this session" in resumed.report.read_text()


@pytest.mark.slow
def test_two_workers_complete_the_budget() -> None:
    outcome = start_run(RunSpec("f8", "smoke", (*SMALL, "workers=2"), data="embedded"))
    for method, trials in studies(outcome.run_dir).items():
        done = finished(trials)
        assert len(done) == 3 and len({number for number, _, _ in done}) == 3, method
        assert all(t.state == TrialState.COMPLETE for t in trials), method  # none failed, none left queued
        if method != "tpe":
            assert {params for _, params, _ in done} == planned(method, outcome.record.spec.seed)
    assert "2 worker process(es)" in outcome.report.read_text()
    assert all(outcome.metrics[f"{m}_trials"] == 3 for m in f8.METHODS)
