import inspect
import re
import typing
from pathlib import Path

import pytest

from dlpractice.config import build_config
from dlpractice.errors import DlpError
from dlpractice.registry import (
    LABS_DIR,
    SYLLABUS,
    LabModule,
    SamplingLab,
    catalogue_entry,
    implemented_modules,
    lab,
    load_lab,
    resolve_id,
)
from dlpractice.runner import RunContext

SYLLABUS_MD = Path(__file__).resolve().parents[2] / "shared" / "SYLLABUS.md"


def test_ids_and_slugs_resolve():
    assert resolve_id("l2") == "l2"
    assert resolve_id("makemore-mlp") == "l2"
    assert resolve_id("  L1 ") == "l1"


def test_typo_suggests_nearest():
    with pytest.raises(DlpError, match="did you mean 'makemore-mlp'"):
        resolve_id("makemore-mpl")


def test_planned_lab_is_a_clear_error(planned_lab: str):
    with pytest.raises(DlpError, match="planned but not implemented"):
        load_lab(planned_lab)


def test_catalogue_has_unique_ids_and_slugs():
    ids = [lab.id for lab in SYLLABUS]
    slugs = [lab.slug for lab in SYLLABUS]
    assert len(set(ids)) == len(ids) and len(set(slugs)) == len(slugs)


@pytest.mark.skipif(not SYLLABUS_MD.exists(), reason="the syllabus lies beside the repository only here")
def test_catalogue_matches_the_syllabus():
    text = SYLLABUS_MD.read_text()
    rows = re.findall(r"^\| ([a-z]\d+(?:-l\d+)?) \| [a-z0-9-]+", text, flags=re.M)
    expected = set()
    for lab_id in rows:
        if lab_id == "l4-l6":  # one row for three recurrent labs
            expected |= {"l4", "l5", "l6"}
        else:
            expected.add(lab_id)
    assert expected == {lab.id for lab in SYLLABUS}


def test_lab_takes_its_names_from_the_syllabus():
    record = lab("l2", requires=("l1",), data=("names",), metric="val_loss", bar=2.12)
    entry = catalogue_entry("l2")
    assert (record.id, record.slug, record.track, record.title) == (
        entry.id,
        entry.slug,
        entry.track,
        entry.title,
    )
    assert (record.requires, record.metric, record.goal, record.bar) == (("l1",), "val_loss", "min", 2.12)
    with pytest.raises(DlpError, match="'l99' is not in the syllabus"):
        lab("l99")
    with pytest.raises(ValueError, match="goal must be 'min' or 'max'"):
        lab("l2", goal="lowest")
    with pytest.raises(ValueError, match="requires labs not in the syllabus"):
        lab("l2", requires=("l0",))


def test_labs_folder_holds_only_labs():
    """Every module under labs/<track>/ is a lab of the syllabus, in its track's folder."""
    for path in LABS_DIR.glob("*/*.py"):
        if path.name == "__init__.py":
            continue
        lab_id = path.stem.split("_")[0]
        entry = catalogue_entry(lab_id)  # raises if the file is not named after a syllabus id
        assert path.stem == f"{entry.id}_{entry.slug.replace('-', '_')}" and path.parent.name == entry.track


@pytest.mark.parametrize("lab_id", sorted(implemented_modules()))
def test_every_implemented_lab_follows_the_contract(lab_id):
    module = load_lab(lab_id)
    assert isinstance(module, LabModule)
    assert module.LAB.id == lab_id
    entry = catalogue_entry(lab_id)  # id, slug, track and title come from the syllabus only
    assert (module.LAB.slug, module.LAB.track, module.LAB.title) == (entry.slug, entry.track, entry.title)
    path = Path(module.__file__)  # the file is named after the syllabus id and slug
    assert (
        path.stem == f"{lab_id}_{module.LAB.slug.replace('-', '_')}" and path.parent.name == module.LAB.track
    )
    hints = typing.get_type_hints(module.run, localns={"RunContext": RunContext})
    assert hints == {"cfg": module.Config, "ctx": RunContext, "return": dict[str, float]}
    if hasattr(module, "sample"):
        assert isinstance(module, SamplingLab)
        assert list(inspect.signature(module.sample).parameters) == ["run_dir", "cfg", "n", "seed"]
    assert {"smoke", "quick", "full"} <= set(module.PRESETS)
    for preset in module.PRESETS:
        build_config(module.Config, module.PRESETS, preset)  # every preset parses
    assert callable(module.run)
    assert module.__doc__ and module.__doc__.startswith(module.LAB.id.upper())
    # ~300 lines of logic; ruff format spreads presets over many lines
    assert len(Path(module.__file__).read_text().splitlines()) <= 350
