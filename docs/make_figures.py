"""Regenerate a lab article's figures: run the lab's quick preset on embedded data, copy its figures.

    python docs/make_figures.py l1 l2

Each figure lands in docs/labs/img/<lab id>-<figure name>.png, where docs/labs/<id>-<slug>.md links it.
The run goes to a temporary DLP_HOME, so your own runs and tracking database are left alone.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

IMG_DIR = Path(__file__).resolve().parent / "labs" / "img"


def make_figures(lab: str, preset: str = "quick") -> list[Path]:
    from dlpractice.runner import RunSpec, start_run

    outcome = start_run(RunSpec(lab, preset, data="embedded"))
    IMG_DIR.mkdir(parents=True, exist_ok=True)
    copied = []
    for figure in sorted((outcome.run_dir / "figures").glob("*.png")):
        target = IMG_DIR / f"{outcome.lab.id}-{figure.stem}.png"
        shutil.copyfile(figure, target)
        copied.append(target)
    value = f"{outcome.value:.4f}" if outcome.value is not None else "—"
    print(f"{outcome.lab.id} {preset}: {outcome.lab.metric} {value} in {outcome.seconds:.0f} s")
    return copied


def main(labs: list[str]) -> None:
    if not labs:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory(prefix="dlp-figures-") as home:
        os.environ["DLP_HOME"] = home
        for lab in labs:
            for path in make_figures(lab):
                print(f"  {path.relative_to(IMG_DIR.parents[2])}")


if __name__ == "__main__":
    main(sys.argv[1:])
