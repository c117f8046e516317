"""Lab r1's forecasters and detectors: the scaler round trip, the baselines' formulas, the SARIMA forecasts
from several origins against statsmodels fitted directly, the networks' shapes and losses, the z-scores
against pandas' rolling statistics, and the per-step reconstruction error against a loop."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from dlpractice.errors import DlpError
from dlpractice.models import forecast as fc

RNG = np.random.default_rng(0)


@pytest.mark.parametrize("relative_to", ["last", "mean"])
def test_scaler_round_trip_and_references(relative_to: str) -> None:
    inputs = RNG.normal(size=(10, 6)).cumsum(axis=1) + 50  # (N, L)
    targets = inputs[:, -1:] + RNG.normal(size=(10, 3))  # (N, H)
    scaler = fc.WindowScaler.fit(inputs, relative_to)
    scaled = scaler.inputs(inputs)
    if relative_to == "last":
        assert torch.all(scaled[:, -1] == 0)  # every window ends at its reference
    else:
        assert scaler.mean == pytest.approx(inputs.mean()) and float(scaled.mean()) == pytest.approx(
            0, abs=1e-5
        )
    back = scaler.invert(inputs, scaler.targets(inputs, targets))
    np.testing.assert_allclose(back, targets, rtol=1e-5)
    with pytest.raises(DlpError, match="constant"):
        fc.WindowScaler.fit(np.ones((4, 3)), relative_to)


def test_naive_and_seasonal_naive_forecasts() -> None:
    inputs = np.arange(24, dtype=float).reshape(2, 12)  # (N=2, L=12)
    assert fc.naive_forecast(inputs, 3).tolist() == [[11, 11, 11], [23, 23, 23]]
    # period 4: the last season is 8, 9, 10, 11; 6 steps ahead repeat it and start again
    assert fc.seasonal_naive_forecast(inputs, 6, 4)[0].tolist() == [8, 9, 10, 11, 8, 9]
    with pytest.raises(DlpError, match="lookback of at least the period"):
        fc.seasonal_naive_forecast(inputs, 6, 13)


def test_arima_forecasts_match_statsmodels_fitted_on_each_origins_past() -> None:
    from statsmodels.tsa.statespace.sarimax import SARIMAX

    t = np.arange(120)
    series = 5 * np.sin(2 * np.pi * t / 12) + 0.05 * t + RNG.normal(0, 0.3, 120)
    origins = np.array([100, 105])
    got = fc.arima_forecasts(series, 100, origins, 6, (1, 0, 0), (1, 0, 0, 12))  # (2, 6)
    model = SARIMAX(series[:100], order=(1, 0, 0), seasonal_order=(1, 0, 0, 12), trend="c")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # statsmodels' note on its starting parameters
        fitted = model.fit(disp=False)
    np.testing.assert_allclose(got[0], fitted.forecast(6), rtol=1e-6)  # origin 100: the fit's own forecast
    later = SARIMAX(series[:105], order=(1, 0, 0), seasonal_order=(1, 0, 0, 12), trend="c")
    np.testing.assert_allclose(got[1], later.filter(fitted.params).forecast(6), rtol=1e-6)


@pytest.mark.parametrize("name", ["mlp", "gru", "lstm"])
def test_forecasters_map_a_window_to_all_horizon_steps_with_the_mse_loss(name: str) -> None:
    torch.manual_seed(0)
    if name == "mlp":
        model = fc.WindowMLP(lookback=10, horizon=4, hidden=8)
    else:
        model = fc.RecurrentForecaster(name, horizon=4, hidden=8)
    x, y = torch.randn(5, 10), torch.randn(5, 4)
    predicted, loss = model(x, y)
    assert predicted.shape == (5, 4)
    torch.testing.assert_close(loss, F.mse_loss(predicted, y))
    assert model(x)[1] is None
    torch.testing.assert_close(fc.predict(model, x, batch_size=2), predicted.detach())


def test_recurrent_forecaster_reads_the_window_in_order() -> None:
    """The prediction depends on the order of the inputs (an MLP over time would too; a mean would not)."""
    torch.manual_seed(0)
    model = fc.RecurrentForecaster("lstm", horizon=2, hidden=8)
    x = torch.randn(1, 12)
    assert not torch.allclose(model(x)[0], model(x.flip(1))[0])


def test_autoencoder_reconstructs_a_window_of_the_same_length() -> None:
    torch.manual_seed(0)
    model = fc.LSTMAutoencoder(hidden=8, code=3)
    x = torch.randn(4, 16)
    rebuilt, loss = model(x, x)
    assert rebuilt.shape == (4, 16)
    torch.testing.assert_close(loss, F.mse_loss(rebuilt, x))


def test_residual_intervals_hold_the_share_asked_of_the_validation_residuals() -> None:
    truth, forecast = RNG.normal(size=(400, 3)), np.zeros((400, 3))
    lower, upper = fc.residual_intervals(truth, forecast, 0.8)  # (H,) each
    inside = (truth >= forecast + lower) & (truth <= forecast + upper)
    np.testing.assert_allclose(inside.mean(axis=0), 0.8, atol=0.01)


def test_residual_zscores_match_pandas_rolling_statistics_of_the_past() -> None:
    residuals = RNG.normal(size=200)
    past = pd.Series(residuals).rolling(20).agg(["mean", "std"]).shift(1)  # the 20 steps before each step
    std = past["std"] * np.sqrt(19 / 20)  # pandas' std is the sample std; the detector uses the population's
    expected = ((residuals - past["mean"]) / std).abs().fillna(0).to_numpy()
    np.testing.assert_allclose(fc.residual_zscores(residuals, 20), expected, rtol=1e-6)
    with pytest.raises(DlpError, match="too few"):
        fc.residual_zscores(residuals[:20], 20)


def test_window_errors_per_step_average_the_windows_covering_each_step() -> None:
    errors = RNG.random((7, 4))  # windows starting at 0..6, length 4: steps 0..9
    expected = np.zeros(10)
    for step in range(10):
        covering = [errors[s, step - s] for s in range(7) if 0 <= step - s < 4]
        expected[step] = np.mean(covering)
    np.testing.assert_allclose(fc.window_errors_per_step(errors, 10), expected)
