"""Datasets: each has an embedded source (offline, shipped or generated) and a real one (downloaded)."""

from __future__ import annotations

DATASETS = {
    "names": "dlpractice.data.names",
}
