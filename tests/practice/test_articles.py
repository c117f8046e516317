"""Every implemented lab has an article; every image an article links exists; it lists its exercises."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dlpractice.practice.exercises import all_exercises
from dlpractice.registry import implemented_modules, lab_record

DOCS = Path(__file__).resolve().parents[2] / "docs" / "labs"
# Implemented labs whose article is still to be written (landed alongside practice mode). Shrink it;
# a lab implemented from now on fails the test below until its article exists or it is listed here.
ARTICLES_TO_WRITE: set[str] = set()


def article(lab_id: str) -> Path:
    lab = lab_record(lab_id)
    return DOCS / f"{lab.id}-{lab.slug}.md"


def test_every_implemented_lab_has_an_article() -> None:
    missing = [lab for lab in sorted(implemented_modules()) if not article(lab).exists()]
    assert set(missing) <= ARTICLES_TO_WRITE, f"labs without an article in docs/labs/: {missing}"
    written = sorted(ARTICLES_TO_WRITE - set(missing))
    assert not written, f"these labs have their article now: remove them from ARTICLES_TO_WRITE: {written}"


@pytest.mark.parametrize("lab_id", [lab for lab in sorted(implemented_modules()) if article(lab).exists()])
def test_article_images_exist_and_exercises_are_listed(lab_id: str) -> None:
    text = article(lab_id).read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert images, "an article shows the lab's figures"
    assert [image for image in images if not (DOCS / image).is_file()] == []
    for exercise in all_exercises():
        if exercise.lab == lab_id:
            assert f"**{exercise.id}**" in text, f"{exercise.id} is not described in the article"
