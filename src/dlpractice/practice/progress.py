"""The learner's progress: every full `dlp check` of a lab, in SQLite under $DLP_HOME/progress.db.

A lab's best score is its best full check; it is passed at 70. A lab is unlocked when every lab in its
`LAB.requires` is passed (labs with no prerequisites are always unlocked).
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from dlpractice.errors import DlpError
from dlpractice.home import dlp_home, ensure_writable
from dlpractice.practice.checker import PASS_MARK, CheckReport

if TYPE_CHECKING:
    from dlpractice.registry import Lab

SCHEMA = """
CREATE TABLE IF NOT EXISTS checks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    lab TEXT NOT NULL,
    score REAL NOT NULL,
    passed INTEGER NOT NULL,
    exercises TEXT NOT NULL,  -- JSON: {exercise id: passed}
    checked_at TEXT NOT NULL
)
"""


def db_path() -> Path:
    return dlp_home() / "progress.db"


def connect(read_only: bool = False) -> sqlite3.Connection:
    """The progress database; `read_only` opens an existing one without writing a byte (a read-only
    $DLP_HOME can still show progress)."""
    try:
        if read_only:
            connection = sqlite3.connect(f"{db_path().as_uri()}?mode=ro", uri=True)
            connection.execute("SELECT 1 FROM checks LIMIT 1")
        else:
            ensure_writable(dlp_home())
            connection = sqlite3.connect(db_path())
            connection.execute(SCHEMA)
    except sqlite3.DatabaseError as err:
        raise DlpError(
            f"{db_path()} is not a progress database ({err}); `dlp progress --reset` starts anew"
        ) from None
    return connection


def record_check(report: CheckReport) -> None:
    """Store a full check of a lab (partial checks, of one exercise, are not a lab score)."""
    if report.partial:
        return
    exercises = json.dumps({r.id: r.passed for r in report.results})
    with closing(connect()) as db, db:
        db.execute(
            "INSERT INTO checks (lab, score, passed, exercises, checked_at) VALUES (?, ?, ?, ?, ?)",
            (report.lab, report.score, int(report.passed), exercises, datetime.now(timezone.utc).isoformat()),
        )


def best_scores() -> dict[str, float]:
    """Lab id -> best score of any full check."""
    if not db_path().exists():
        return {}
    with closing(connect(read_only=True)) as db:
        return dict(db.execute("SELECT lab, MAX(score) FROM checks GROUP BY lab").fetchall())


def reset() -> None:
    db_path().unlink(missing_ok=True)


@dataclass(frozen=True)
class LabProgress:
    id: str
    slug: str
    track: str
    requires: tuple[str, ...]
    exercises: int  # 0: nothing to practise yet
    best: float | None
    passed: bool
    unlocked: bool
    implemented: bool


def syllabus_progress() -> list[LabProgress]:
    """Every lab of the syllabus with its exercises, best score, passed and unlocked state."""
    from dlpractice.practice.exercises import all_exercises
    from dlpractice.registry import SYLLABUS, implemented_modules

    best = best_scores()
    counts: dict[str, int] = {}
    for exercise in all_exercises():
        counts[exercise.lab] = counts.get(exercise.lab, 0) + 1
    done = implemented_modules()
    labs = [known_record(entry, entry.id in done) for entry in SYLLABUS]
    passed = {lab.id for lab in labs if best.get(lab.id, 0.0) >= PASS_MARK}
    return [
        LabProgress(
            id=lab.id,
            slug=lab.slug,
            track=lab.track,
            requires=lab.requires,
            exercises=counts.get(lab.id, 0),
            best=best.get(lab.id),
            passed=lab.id in passed,
            unlocked=all(need in passed for need in lab.requires),
            implemented=lab.id in done,
        )
        for lab in labs
    ]


def known_record(entry: Lab, implemented: bool) -> Lab:
    """The lab's own record when it is implemented and importable; its syllabus entry when its extra is
    not installed (progress still shows the lab, without its prerequisites)."""
    from dlpractice.registry import lab_record

    if not implemented:
        return entry
    try:
        return lab_record(entry.id)
    except DlpError:  # "lab n7 needs the nlp extra": not a reason to hide the learner's progress
        return entry
