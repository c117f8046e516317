"""Forecasters and anomaly detectors for lab r1: the baselines (naive, seasonal naive, ARIMA/SARIMA through
statsmodels), neural forecasters trained with fit() (an MLP on the window, a GRU and an LSTM, each with a
direct multi-step head: all H future steps come out of one forward pass, nothing is fed back), an LSTM
autoencoder, and the detectors' scores (forecast-residual z-scores, reconstruction errors).

The neural models see a window relative to its last observed value, divided by one scale fitted on the
training windows (`WindowScaler`), where the series has a trend: CO2 then looks alike in every decade, so a
model trained on the 1960s can forecast the 1990s, which values scaled by the training mean and std would not
let it do (they lie outside anything it saw). The other choice keeps the level (the training mean and std),
which a series without a trend allows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.errors import DlpError


@dataclass(frozen=True)
class WindowScaler:
    """x -> (x - reference) / scale for inputs and targets, fitted on training windows only. The reference
    is each window's last value (`mean` None: the model predicts the change from now) or the training mean
    (the model sees the level)."""

    scale: float
    mean: float | None = None

    @classmethod
    def fit(cls, inputs: np.ndarray, relative_to: Literal["last", "mean"]) -> WindowScaler:
        """The training inputs' std around each window's last value, or around their mean."""
        if relative_to == "last":
            scaler = cls(float(np.std(inputs - inputs[:, -1:])))
        else:
            scaler = cls(float(np.std(inputs)), float(np.mean(inputs)))
        if scaler.scale == 0:
            raise DlpError("the training windows are constant: nothing to scale by")
        return scaler

    def reference(self, inputs: np.ndarray) -> np.ndarray | float:
        """(N, 1) each window's last value, or the training mean."""
        return inputs[:, -1:] if self.mean is None else self.mean

    def inputs(self, inputs: np.ndarray) -> torch.Tensor:
        """(N, L) -> (N, L) float32."""
        return torch.as_tensor((inputs - self.reference(inputs)) / self.scale, dtype=torch.float32)

    def targets(self, inputs: np.ndarray, targets: np.ndarray) -> torch.Tensor:
        """(N, H) -> (N, H) float32, with the reference of each target's input window."""
        return torch.as_tensor((targets - self.reference(inputs)) / self.scale, dtype=torch.float32)

    def invert(self, inputs: np.ndarray, predicted: torch.Tensor) -> np.ndarray:
        """(N, H) model outputs back to the series' unit."""
        return predicted.double().numpy() * self.scale + self.reference(inputs)


class WindowMLP(nn.Module):
    """The whole window flattened into an MLP: (B, L) -> (B, H)."""

    def __init__(self, lookback: int, horizon: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(lookback, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, horizon),
        )

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        predicted = self.net(x)  # (B, H)
        return predicted, None if targets is None else F.mse_loss(predicted, targets)


class RecurrentForecaster(nn.Module):
    """A GRU or LSTM reads the window one step at a time; a linear head maps its last hidden state to all H
    future steps at once (direct multi-step): (B, L) -> (B, H)."""

    def __init__(
        self, cell: Literal["gru", "lstm"], horizon: int, hidden: int, layers: int = 1, dropout: float = 0.0
    ):
        super().__init__()
        rnn = {"gru": nn.GRU, "lstm": nn.LSTM}[cell]
        self.rnn = rnn(1, hidden, layers, batch_first=True, dropout=dropout if layers > 1 else 0.0)
        self.head = nn.Linear(hidden, horizon)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        states, _ = self.rnn(x.unsqueeze(-1))  # (B, L, hidden)
        predicted = self.head(states[:, -1])  # (B, H)
        return predicted, None if targets is None else F.mse_loss(predicted, targets)


class LSTMAutoencoder(nn.Module):
    """An LSTM encodes a window into its last hidden state; a second LSTM, fed that code at every step,
    writes the window back: (B, W) -> (B, W). Trained to reconstruct normal data, it reconstructs the
    unusual badly, and the error is the anomaly score."""

    def __init__(self, hidden: int, code: int):
        super().__init__()
        self.encoder = nn.LSTM(1, hidden, batch_first=True)
        self.bottleneck = nn.Linear(hidden, code)
        self.decoder = nn.LSTM(code, hidden, batch_first=True)
        self.out = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        states, _ = self.encoder(x.unsqueeze(-1))  # (B, W, hidden)
        code = self.bottleneck(states[:, -1])  # (B, code)
        decoded, _ = self.decoder(code.unsqueeze(1).expand(-1, x.size(1), -1))  # (B, W, hidden)
        rebuilt = self.out(decoded).squeeze(-1)  # (B, W)
        return rebuilt, None if targets is None else F.mse_loss(rebuilt, targets)


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """The model's outputs for every row of x, in eval mode."""
    model.eval()
    return torch.cat([model(x[i : i + batch_size])[0] for i in range(0, len(x), batch_size)])


def naive_forecast(inputs: np.ndarray, horizon: int) -> np.ndarray:
    """(N, L) -> (N, H): the last observed value, repeated."""
    return np.repeat(inputs[:, -1:], horizon, axis=1)


def seasonal_naive_forecast(inputs: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N, L) -> (N, H): the value one season before each future step, y_{t+h} = y_{t+h-period*k}."""
    if inputs.shape[1] < period:
        raise DlpError(f"the seasonal-naive forecast needs a lookback of at least the period {period}")
    last_season = inputs[:, -period:]  # (N, period)
    return last_season[:, np.arange(horizon) % period]


def arima_forecasts(
    series: np.ndarray,
    fit_stop: int,
    origins: np.ndarray,
    horizon: int,
    order: tuple[int, int, int],
    seasonal_order: tuple[int, int, int, int],
) -> np.ndarray:
    """(N, H) SARIMA forecasts from every origin: the model is fitted once on series[:fit_stop], then its
    fitted parameters filter series[:origin] (the past only) and forecast `horizon` steps.

    On one BLAS thread: the Kalman filter's small matrices gain nothing from more, and on a busy machine
    spinning BLAS threads made it 6x slower here."""
    import warnings

    from statsmodels.tsa.statespace.sarimax import SARIMAX
    from threadpoolctl import threadpool_limits

    trend = "c" if order[1] == 0 and seasonal_order[1] == 0 else None  # a constant only without differencing
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")  # convergence chatter on short series; the errors tell the story
        fitted = SARIMAX(series[:fit_stop], order=order, seasonal_order=seasonal_order, trend=trend).fit(
            disp=False
        )
        return np.stack([fitted.apply(series[:origin]).forecast(horizon) for origin in origins])


def residual_intervals(val_true: np.ndarray, val_pred: np.ndarray, coverage: float) -> np.ndarray:
    """(2, H) lower and upper offsets per horizon step: the validation residuals' central quantiles, so
    [forecast + lower, forecast + upper] held `coverage` of the validation truths at each step."""
    residuals = val_true - val_pred  # (N, H)
    tail = (1 - coverage) / 2
    return np.quantile(residuals, [tail, 1 - tail], axis=0)


def residual_zscores(residuals: np.ndarray, window: int) -> np.ndarray:
    """(T,) |z| of each residual against the mean and std of the `window` residuals BEFORE it (the past
    only, so the detector could run live); 0 for the first `window` steps, which have no full past."""
    if len(residuals) <= window:
        raise DlpError(f"{len(residuals)} residuals are too few for a z-score window of {window}")
    # BEGIN EXERCISE r1.3: |z_t| of each residual against the mean and std of the window residuals before it
    past = np.lib.stride_tricks.sliding_window_view(residuals[:-1], window)  # (T - window, window)
    z = (residuals[window:] - past.mean(axis=1)) / (past.std(axis=1) + 1e-8)
    return np.concatenate([np.zeros(window), np.abs(z)])
    # END EXERCISE


def window_errors_per_step(errors: np.ndarray, length: int) -> np.ndarray:
    """(T,) each step's mean squared error over the windows that cover it, from (N, W) errors of windows
    starting at steps 0, 1, ..., N-1 (stride 1)."""
    count, width = errors.shape
    starts = np.arange(count)[:, None] + np.arange(width)  # (N, W) the step each error belongs to
    total = np.bincount(starts.ravel(), weights=errors.ravel(), minlength=length)
    covered = np.bincount(starts.ravel(), minlength=length)
    return total / np.maximum(covered, 1)
