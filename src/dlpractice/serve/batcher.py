"""The dynamic batcher `dlp serve` uses lives in dlpractice.batcher, below the labs, so that lab p2 measures
the very code the server runs; this name stays for the server's import."""

from dlpractice.batcher import Batcher, BatchStats, Predict

__all__ = ["BatchStats", "Batcher", "Predict"]
