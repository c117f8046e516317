"""Small datasets for the foundation labs: scikit-learn's digits and diabetes, moons and a noisy curve.

Digits (1,797 8x8 handwritten digits, the UCI optdigits test set) and diabetes (442 patients, 10
features) ship inside scikit-learn, so they are both the embedded source and the real dataset: a
run asked for `real` (or `auto`) records `real`, one asked for `embedded` records `embedded`, and the
numbers are identical. Moons and the 1-D curve are generated and always `embedded`. Every split is
stratified where it can be and fixed by SPLIT_SEED, not by the run's seed, so runs compare.
Simplified: features are scaled with statistics of the training split only; no cross-validation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import train_test_split

from dlpractice.errors import DlpError

SPLIT_SEED = 42
FRACTIONS = (0.6, 0.2, 0.2)  # train / val / test


@dataclass
class Splits:
    """Aligned arrays for train, val and test, and where they came from."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # "embedded" or "real"
    origin: str

    def arrays(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Features and labels of one split: "train", "val" or "test"."""
        return getattr(self, f"x_{split}"), getattr(self, f"y_{split}")

    def describe(self) -> dict[str, str | int]:
        """What `ctx.record_data` records."""
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "split_seed": SPLIT_SEED,
            "split": "/".join(f"{round(100 * f)}" for f in FRACTIONS),
            "n_train": len(self.x_train),
            "n_val": len(self.x_val),
            "n_test": len(self.x_test),
        }


def recorded_source(requested: str) -> str:
    """The data source to record for a dataset shipped by a package: `embedded` only when asked for."""
    if requested not in ("embedded", "real", "auto"):
        raise DlpError(f"unknown data source {requested!r}; use embedded, real or auto")
    return "embedded" if requested == "embedded" else "real"


def split(x: np.ndarray, y: np.ndarray, stratify: bool, source: str, origin: str) -> Splits:
    """A fixed 60/20/20 split (stratified by class for classification)."""
    rest = FRACTIONS[1] + FRACTIONS[2]
    x_train, x_rest, y_train, y_rest = train_test_split(
        x, y, test_size=rest, random_state=SPLIT_SEED, stratify=y if stratify else None
    )
    x_val, x_test, y_val, y_test = train_test_split(
        x_rest,
        y_rest,
        test_size=FRACTIONS[2] / rest,
        random_state=SPLIT_SEED,
        stratify=y_rest if stratify else None,
    )
    return Splits(x_train, y_train, x_val, y_val, x_test, y_test, source, origin)


def load_digits(source: str = "auto") -> Splits:
    """Digits as (N, 64) floats in [0, 1] (pixel / 16) and int64 labels 0-9; reshape to (N, 1, 8, 8)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.data / 16.0).astype(np.float64)  # (1797, 64)
    y = bunch.target.astype(np.int64)  # (1797,)
    origin = "scikit-learn load_digits: UCI optdigits, 1,797 8x8 images"
    return split(x, y, True, recorded_source(source), origin)


def load_diabetes(source: str = "auto") -> Splits:
    """Diabetes regression: 10 standardised features -> disease progression, standardised (z-score)."""
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    bunch = sklearn_diabetes()
    origin = "scikit-learn load_diabetes: 442 patients, 10 features (Efron et al., 2004)"
    data = split(bunch.data, bunch.target.astype(np.float64), False, recorded_source(source), origin)
    standardize(data, targets=True)
    return data


def make_moons(n: int = 1000, noise: float = 0.2, seed: int = SPLIT_SEED) -> Splits:
    """Two interleaving half circles (scikit-learn's generator), labels 0/1, split 60/20/20."""
    from sklearn.datasets import make_moons as sklearn_moons

    x, y = sklearn_moons(n_samples=n, noise=noise, random_state=seed)
    origin = f"generated: sklearn make_moons(n={n}, noise={noise}, seed={seed})"
    return split(x.astype(np.float64), y.astype(np.int64), True, "embedded", origin)


def noisy_curve(n: int = 400, noise: float = 0.3, seed: int = SPLIT_SEED) -> Splits:
    """y = sin(2x) + 0.3 x + Gaussian noise for x uniform in [-3, 3]; x is (N, 1), y is (N,)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, size=(n, 1))
    y = true_curve(x[:, 0]) + noise * rng.standard_normal(n)
    origin = f"generated: sin(2x) + 0.3x + N(0, {noise}^2), n={n}, seed={seed}"
    return split(x, y, False, "embedded", origin)


def true_curve(x: np.ndarray) -> np.ndarray:
    """The noiseless function behind `noisy_curve`."""
    return np.sin(2 * x) + 0.3 * x


def standardize(data: Splits, targets: bool = False) -> Splits:
    """Scale features (and targets if asked) in place to zero mean, unit variance on the training split."""
    mean, std = data.x_train.mean(0), data.x_train.std(0) + 1e-8
    data.x_train, data.x_val, data.x_test = (
        (x - mean) / std for x in (data.x_train, data.x_val, data.x_test)
    )
    if targets:
        y_mean, y_std = data.y_train.mean(), data.y_train.std()
        data.y_train, data.y_val, data.y_test = (
            (y - y_mean) / y_std for y in (data.y_train, data.y_val, data.y_test)
        )
    return data
