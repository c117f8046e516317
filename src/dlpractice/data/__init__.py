"""Datasets: each has an embedded source (offline, shipped or generated) and a real one (downloaded)."""

from __future__ import annotations

DATASETS = {
    "names": "dlpractice.data.names",
}


def phrases(text: str) -> tuple[str, ...]:
    """A word list written as one string, comma-separated: 'the film, a plot' -> ('the film', 'a plot').

    The generated datasets' vocabularies read as prose this way, many to a line, where a tuple literal
    would be formatted one entry per line.
    """
    return tuple(text.split(", "))
