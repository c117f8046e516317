"""Time series for lab r1: two real ones that statsmodels ships (so they are real and offline), a generated
one with labelled anomalies, chronological splits and the sliding windows a forecaster learns from.

- `co2`: the Mauna Loa weekly CO2 record 1958-2001 (ppm), its gaps filled by linear interpolation, averaged
  to months: a rising trend and a yearly season (period 12).
- `sunspots`: the yearly mean sunspot numbers 1700-2008: an ~11-year cycle of changing height (period 11).
- `generated`: an hourly-like signal (a daily season of 24 steps, a slower weekly swell, AR(1) noise) with
  spikes, level shifts and stretches of a changed season injected at random places and labelled step by
  step: the ground truth a real series rarely has. It is generated, and every run says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dlpractice.errors import DlpError

KINDS = ("spike", "shift", "season")  # the anomalies the generated series holds


@dataclass(frozen=True)
class Series:
    """One univariate series, its time axis (as decimal years, for plots) and its season's length."""

    name: str
    values: np.ndarray  # (T,) float64
    years: np.ndarray  # (T,) decimal years
    period: int  # steps in one season: the seasonal-naive forecast repeats the last `period` steps
    unit: str
    origin: str


def load_co2() -> Series:
    """Mauna Loa CO2, weekly 1958-2001, gaps interpolated, monthly means (526 months)."""
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"].interpolate()  # 59 missing weeks, none at either end
    monthly = weekly.resample("MS").mean()
    years = monthly.index.year + (monthly.index.month - 1) / 12
    origin = "statsmodels.datasets.co2 (Mauna Loa weekly CO2, gaps interpolated, monthly means)"
    return Series("co2", monthly.to_numpy(np.float64), np.asarray(years, np.float64), 12, "ppm", origin)


def load_sunspots() -> Series:
    """Yearly mean sunspot numbers, 1700-2008 (309 years)."""
    from statsmodels.datasets import sunspots

    data = sunspots.load_pandas().data
    origin = "statsmodels.datasets.sunspots (yearly mean sunspot numbers)"
    values, years = data["SUNACTIVITY"].to_numpy(np.float64), data["YEAR"].to_numpy(np.float64)
    return Series("sunspots", values, years, 11, "sunspots", origin)


LOADERS = {"co2": load_co2, "sunspots": load_sunspots}


def split_points(length: int, val_fraction: float, test_fraction: float) -> tuple[int, int]:
    """(val_start, test_start): train is [0, val_start), val [val_start, test_start), test the rest.

    Chronological: the model never trains on a step later than one it is judged on."""
    test_start = length - round(length * test_fraction)
    val_start = test_start - round(length * val_fraction)
    if not 0 < val_start < test_start < length:
        raise DlpError(
            f"val_fraction {val_fraction} and test_fraction {test_fraction} leave no training steps "
            f"out of {length}"
        )
    return val_start, test_start


def windows(
    series: np.ndarray, lookback: int, horizon: int, start: int, stop: int
) -> tuple[np.ndarray, np.ndarray]:
    """Every (input, target) pair whose targets lie inside series[start:stop].

    For each forecast origin t (the first step to predict) from max(start, lookback) to stop - horizon:
    the input is series[t - lookback : t] (the past only) and the target series[t : t + horizon].
    Returns inputs (N, lookback) and targets (N, horizon), origins in increasing order."""
    if stop - max(start, lookback) < horizon:
        raise DlpError(
            f"the span [{start}, {stop}) holds no window of lookback {lookback} and horizon {horizon}"
        )
    # BEGIN EXERCISE r1.1: per origin t, the lookback steps before t (input), the horizon from t (target)
    origins = np.arange(max(start, lookback), stop - horizon + 1)  # (N,)
    inputs = series[origins[:, None] + np.arange(-lookback, 0)]  # (N, lookback)
    targets = series[origins[:, None] + np.arange(horizon)]  # (N, horizon)
    return inputs, targets
    # END EXERCISE


def origins(lookback: int, horizon: int, start: int, stop: int) -> np.ndarray:
    """(N,) the forecast origins `windows` uses for the same span, in the same order."""
    return np.arange(max(start, lookback), stop - horizon + 1)


@dataclass(frozen=True)
class AnomalySeries:
    """A generated series, its step-by-step anomaly labels and the injected events."""

    values: np.ndarray  # (T,) float64
    labels: np.ndarray  # (T,) bool: the step is part of an injected anomaly
    events: list[tuple[int, int, str]] = field(default_factory=list)  # (start, stop, kind)
    period: int = 24


def generate_anomalies(length: int, seed: int, period: int = 24, spacing: int = 200) -> AnomalySeries:
    """A seasonal signal with one anomaly in each stretch of `spacing` steps (after the first): rare
    enough (about a tenth of the steps) that flagging everything is a poor detector.

    Spikes are one step of 4-6 noise standard deviations; a level shift adds 2-3 for 12-36 steps; a changed
    season replaces the daily shape by one shifted a quarter to a half period for 24-48 steps. The noise is
    AR(1) (phi 0.6), so a forecaster has something to learn beyond the season."""
    if length < 2 * spacing:
        raise DlpError(f"a generated series of {length} steps is too short: at least {2 * spacing}")
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    phase = 2 * np.pi * t / period

    def season(shift: float = 0.0) -> np.ndarray:  # (T,) the daily shape, its phase shifted by `shift`
        return 2.0 * np.sin(phase - shift) + 0.8 * np.sin(2 * (phase - shift) + 1.0)

    noise = np.zeros(length)
    shocks = rng.normal(0, 0.3, length)
    for i in range(1, length):
        noise[i] = 0.6 * noise[i - 1] + shocks[i]
    swell = 0.7 * np.sin(2 * np.pi * t / (7 * period))
    values = 10 + season() + swell + noise
    labels = np.zeros(length, bool)
    events = []
    for slot in range(spacing, length - spacing + 1, spacing):
        kind = KINDS[rng.choice(3, p=[0.4, 0.3, 0.3])]
        begin = slot + int(rng.integers(0, spacing - 60))  # so that the longest event ends inside its slot
        sign = rng.choice([-1.0, 1.0])
        if kind == "spike":
            end = begin + 1
            values[begin] += sign * rng.uniform(4, 6) * noise.std()
        elif kind == "shift":
            end = begin + int(rng.integers(12, 37))
            values[begin:end] += sign * rng.uniform(2, 3)
        else:
            end = begin + int(rng.integers(24, 49))
            shifted = season(rng.uniform(np.pi / 2, np.pi))
            values[begin:end] += shifted[begin:end] - season()[begin:end]
        labels[begin:end] = True
        events.append((begin, end, kind))
    return AnomalySeries(values, labels, events, period)
