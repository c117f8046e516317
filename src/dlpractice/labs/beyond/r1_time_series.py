"""R1 · Time series: forecasting with baselines, ARIMA and recurrent networks; anomaly detection.

Forecasting, on two real series statsmodels ships (data/series.py): monthly Mauna Loa CO2 (trend and a
yearly season) and yearly sunspot numbers (an ~11-year cycle). Each is split in time (train, then
validation, then test); from every origin in the test span each model forecasts the next `period` steps
(12 months, 11 years), seeing only the past. The models (models/forecast.py): naive (the last value),
seasonal naive (last season again), SARIMA fitted by statsmodels on everything before the test span, and
three networks trained with fit() on the training windows, the weights of the best validation loss kept: an
MLP on the window, a GRU and an LSTM, each with a direct multi-step head. The errors (metrics/forecast.py):
MAE, RMSE, sMAPE and MASE (scaled by the seasonal-naive error on the pre-test series), per horizon step too,
and the LSTM's prediction interval from its validation residuals, with its test coverage.

Anomaly detection, on a generated series with injected, labelled spikes, level shifts and changed seasons
(generated: real series rarely come with labels): the z-score of a one-step LSTM forecaster's residual
against its recent past, and an LSTM autoencoder's reconstruction error. The threshold of each is the one
of best F1 on the validation span; the test span is scored step by step (precision, recall, F1, average
precision) and by event (the share of anomalies with at least one flagged step).
Simplified: one SARIMA order per series (the classic airline-style model for CO2, an AR(9) for sunspots),
no exogenous inputs, no hyper-parameter search, the networks small and trained for minutes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch

from dlpractice.config import Fraction, NonNegativeInt, PositiveInt, Probability
from dlpractice.data import series as ts
from dlpractice.data.batching import TensorData
from dlpractice.extras import require_modules
from dlpractice.metrics import forecast as fm
from dlpractice.metrics import forecast_figures as figs
from dlpractice.models import forecast as fc
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("r1", requires=("l5",), data=("co2", "sunspots"), metric="lstm_mase", goal="min")
Network = Literal["mlp", "gru", "lstm"]
Order = tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt]
SeasonalOrder = tuple[NonNegativeInt, NonNegativeInt, NonNegativeInt, NonNegativeInt]
Scaling = Literal["last", "mean"]


@dataclass
class Config(FitConfig):  # fit()'s knobs train every forecaster
    series: tuple[Literal["co2", "sunspots"], ...] = ("co2", "sunspots")
    networks: tuple[Network, ...] = ("mlp", "gru", "lstm")
    lookback_seasons: PositiveInt = 3  # a network's input window: this many seasons (36 months, 33 years)
    val_fraction: Fraction = 0.15
    test_fraction: Fraction = 0.15
    hidden: PositiveInt = 64
    dropout: Probability = 0.0  # the MLP's
    seeds: PositiveInt = 1  # training seeds per network: the tables show their mean (and spread)
    co2_order: Order = (1, 1, 1)
    co2_seasonal_order: SeasonalOrder = (0, 1, 1, 12)
    sunspots_order: Order = (9, 0, 0)
    sunspots_seasonal_order: SeasonalOrder = (0, 0, 0, 0)
    # network windows relative to their last value ("last": a trend does not matter) or to the training
    # mean ("mean": the level is kept); on sunspots, "mean" did worse (the article's table)
    co2_scaling: Scaling = "last"
    sunspots_scaling: Scaling = "last"
    interval: Fraction = 0.8  # the LSTM's prediction interval should hold this share of the truths
    anomaly_length: PositiveInt = 6000  # steps of the generated series (one anomaly every 200)
    anomaly_lookback: PositiveInt = 48  # the one-step forecaster's window (two daily seasons)
    zscore_window: PositiveInt = 96  # past residuals each z-score is measured against
    ae_window: PositiveInt = 48
    ae_code: PositiveInt = 8
    anomaly_steps: PositiveInt = 1500  # fit() steps of the anomaly forecaster and of the autoencoder


PRESETS = {
    "smoke": {
        "steps": 30,
        "batch_size": 32,
        "eval_every": 10,
        "log_every": 5,
        "hidden": 8,
        "anomaly_length": 2000,
        "anomaly_steps": 20,
        "ae_code": 4,
    },
    "quick": {"steps": 800, "batch_size": 64, "lr": 3e-3, "eval_every": 100, "log_every": 25},
    # measured here (quick preset, loaded machine, one thread): 11-22 ms a GRU or LSTM step at batch 64,
    # 1-3 ms an MLP step
    "full": {
        "steps": 1500,
        "batch_size": 64,
        "lr": 3e-3,
        "eval_every": 50,
        "log_every": 25,
        "restore_best": True,
        "seeds": 3,
        "anomaly_steps": 2000,
    },
}


def fit_network(
    model: torch.nn.Module,
    data: dict[str, tuple[torch.Tensor, torch.Tensor]],
    cfg: FitConfig,
    ctx: RunContext,
) -> list[dict[str, float]]:
    """fit() on (inputs, targets) splits; the loss history (the model is trained in place, on the CPU)."""
    result = fit(model, TensorData(data, eval_batch_size=1024), cfg, ctx)
    model.to("cpu")
    return result.history


def network(name: Network, lookback: int, horizon: int, cfg: Config) -> torch.nn.Module:
    if name == "mlp":
        return fc.WindowMLP(lookback, horizon, cfg.hidden, cfg.dropout)
    return fc.RecurrentForecaster(name, horizon, cfg.hidden)


def forecast_series(series: ts.Series, cfg: Config, ctx: RunContext) -> dict:
    """Every model's (N, H) test forecasts of one series, the networks' averaged over seeds, and their
    per-seed errors, loss histories and the LSTM's interval."""
    values, horizon, period = series.values, series.period, series.period
    lookback = cfg.lookback_seasons * period
    val_start, test_start = ts.split_points(len(values), cfg.val_fraction, cfg.test_fraction)
    spans = {"train": (0, val_start), "val": (val_start, test_start), "test": (test_start, len(values))}
    raw = {split: ts.windows(values, lookback, horizon, *span) for split, span in spans.items()}
    scaler = fc.WindowScaler.fit(raw["train"][0], getattr(cfg, f"{series.name}_scaling"))  # train only
    data = {split: (scaler.inputs(x), scaler.targets(x, y)) for split, (x, y) in raw.items()}
    test_x, test_y = raw["test"]
    origins = ts.origins(lookback, horizon, test_start, len(values))
    order, seasonal = getattr(cfg, f"{series.name}_order"), getattr(cfg, f"{series.name}_seasonal_order")
    forecasts = {
        "naive": fc.naive_forecast(test_x, horizon),
        "seasonal naive": fc.seasonal_naive_forecast(test_x, horizon, period),
        "sarima": fc.arima_forecasts(values, test_start, origins, horizon, order, seasonal),
    }
    out = {"per_seed": {}, "histories": {}, "origins": origins, "truth": test_y, "test_start": test_start}
    for name in cfg.networks:
        runs = []
        for k in range(cfg.seeds):
            torch.manual_seed(ctx.seed + k)
            model = network(name, lookback, horizon, cfg)
            child = ctx.child(f"{series.name}-{name}-seed{k}")
            history = fit_network(model, data, cfg, replace(child, seed=ctx.seed + k))
            runs.append(
                {split: scaler.invert(raw[split][0], fc.predict(model, data[split][0])) for split in raw}
            )
            out["histories"].setdefault(name, history)
        out["per_seed"][name] = [r["test"] for r in runs]
        forecasts[name] = np.mean(out["per_seed"][name], axis=0)  # (N, H) the seeds' mean forecast
        if name == "lstm":
            val_mean = np.mean([r["val"] for r in runs], axis=0)
            out["interval"] = fc.residual_intervals(raw["val"][1], val_mean, cfg.interval)  # (2, H)
    out["forecasts"] = forecasts
    out["pre_test"] = values[:test_start]
    return out


def scores(truth: np.ndarray, forecast: np.ndarray, pre_test: np.ndarray, period: int) -> dict[str, float]:
    return {
        "mae": fm.mae(truth, forecast),
        "rmse": fm.rmse(truth, forecast),
        "smape": fm.smape(truth, forecast),
        "mase": fm.mase(truth, forecast, pre_test, period),
    }


def forecast_metrics(name: str, result: dict, period: int, cfg: Config) -> dict[str, float]:
    """`<series>_<model>_<error>` for every model; for the networks the mean over seeds of each seed's
    error, and `_mase_std` its spread; `<series>_lstm_interval_coverage` on test."""
    truth, pre_test = result["truth"], result["pre_test"]
    metrics = {}
    for model, forecast in result["forecasts"].items():
        key = f"{name}_{model.replace(' ', '_')}"
        if model in result["per_seed"]:
            per_seed = [scores(truth, f, pre_test, period) for f in result["per_seed"][model]]
            metrics |= {f"{key}_{e}": float(np.mean([s[e] for s in per_seed])) for e in per_seed[0]}
            metrics[f"{key}_mase_std"] = float(np.std([s["mase"] for s in per_seed]))
        else:
            metrics |= {f"{key}_{e}": v for e, v in scores(truth, forecast, pre_test, period).items()}
    if "interval" in result:
        lower, upper = result["forecasts"]["lstm"] + result["interval"][:, None, :]
        metrics[f"{name}_lstm_interval_coverage"] = fm.interval_coverage(truth, lower, upper)
    return metrics


def forecast_table(name: str, result: dict, metrics: dict[str, float], cfg: Config) -> str:
    rows = []
    for model in result["forecasts"]:
        key = f"{name}_{model.replace(' ', '_')}"
        spread = (
            f" ± {metrics[f'{key}_mase_std']:.3f}" if cfg.seeds > 1 and model in result["per_seed"] else ""
        )
        rows.append(
            [
                model,
                f"{metrics[f'{key}_mase']:.3f}{spread}",
                f"{metrics[f'{key}_mae']:.3f}",
                f"{metrics[f'{key}_rmse']:.3f}",
                f"{metrics[f'{key}_smape']:.2f}",
            ]
        )
    seeds = f"; networks: mean over {cfg.seeds} seeds, ± their std" if cfg.seeds > 1 else ""
    header = ["model", f"MASE{seeds and ' (± std)'}", "MAE", "RMSE", "sMAPE %"]
    return markdown_table(header, rows) + f"\n\n({len(result['origins'])} test origins{seeds})"


def anomaly_scores(gen: ts.AnomalySeries, cfg: Config, ctx: RunContext) -> tuple[dict, dict, tuple[int, int]]:
    """(T,) scores of both detectors over the whole generated series, their loss histories, the split."""
    values, lookback = gen.values, cfg.anomaly_lookback
    val_start, test_start = ts.split_points(len(values), cfg.val_fraction, cfg.test_fraction)
    short = replace(cfg, steps=cfg.anomaly_steps, restore_best=False)  # the last weights: val holds anomalies
    spans = {"train": (0, val_start), "val": (val_start, test_start)}
    # one-step forecaster: residual z-scores
    raw = {split: ts.windows(values, lookback, 1, *span) for split, span in spans.items()}
    scaler = fc.WindowScaler.fit(raw["train"][0], "mean")  # the generated series has no trend
    torch.manual_seed(ctx.seed)
    forecaster = fc.RecurrentForecaster("lstm", 1, cfg.hidden)
    data = {split: (scaler.inputs(x), scaler.targets(x, y)) for split, (x, y) in raw.items()}
    histories = {"forecaster": fit_network(forecaster, data, short, ctx.child("anomaly-forecaster"))}
    every_x, every_y = ts.windows(values, lookback, 1, 0, len(values))  # origins lookback .. T-1
    residuals = every_y[:, 0] - scaler.invert(every_x, fc.predict(forecaster, scaler.inputs(every_x)))[:, 0]
    z = np.concatenate([np.zeros(lookback), fc.residual_zscores(residuals, cfg.zscore_window)])  # (T,)
    # autoencoder: windows scaled alike, by the training span's mean and std
    every = (
        scaler.inputs(values[None]).squeeze(0).unfold(0, cfg.ae_window, 1)
    )  # (T - W + 1, W) from 0, 1, ...
    starts = torch.arange(len(every))
    ae_data = {
        "train": (every[starts + cfg.ae_window <= val_start],) * 2,
        "val": (every[(starts >= val_start) & (starts + cfg.ae_window <= test_start)],) * 2,
    }
    torch.manual_seed(ctx.seed)
    autoencoder = fc.LSTMAutoencoder(cfg.hidden, cfg.ae_code)
    histories["autoencoder"] = fit_network(autoencoder, ae_data, short, ctx.child("anomaly-autoencoder"))
    errors = ((fc.predict(autoencoder, every) - every) ** 2).double().numpy()  # (T - W + 1, W)
    recon = fc.window_errors_per_step(errors, len(values))
    return {"residual z-score": z, "autoencoder": recon}, histories, (val_start, test_start)


def detect(gen: ts.AnomalySeries, detector_scores: dict, split: tuple[int, int]) -> tuple[dict, dict]:
    """Each detector thresholded at its best validation F1, scored on test: metrics and test flags."""
    val_start, test_start = split
    labels = gen.labels
    metrics, flags = {}, {}
    for name, score in detector_scores.items():
        key = name.replace(" ", "_").replace("-", "_")
        threshold = fm.best_f1_threshold(labels[val_start:test_start], score[val_start:test_start])
        flags[name] = score[test_start:] >= threshold
        precision, recall, f1 = fm.precision_recall_f1(labels[test_start:], flags[name])
        metrics |= {
            f"{key}_precision": precision,
            f"{key}_recall": recall,
            f"{key}_f1": f1,
            f"{key}_average_precision": fm.average_precision(labels[test_start:], score[test_start:]),
            f"{key}_event_recall": fm.event_recall(gen.events, flags[name], test_start, len(labels)),
        }
    return metrics, flags


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    require_modules("lab r1", "statsmodels")
    loaded = [ts.LOADERS[name]() for name in cfg.series]
    gen = ts.generate_anomalies(cfg.anomaly_length, ctx.seed)
    origin = "; ".join(s.origin for s in loaded) + "; anomalies: a GENERATED series with injected labels"
    ctx.record_data({"data_source": "embedded", "data_origin": origin})
    metrics: dict[str, float] = {}
    histories: dict[str, dict] = {}
    per_horizon: dict[str, dict[str, np.ndarray]] = {}
    with ctx.progress(total=len(loaded) + 1) as bar:
        for i, series in enumerate(loaded):
            result = forecast_series(series, cfg, ctx)
            metrics |= forecast_metrics(series.name, result, series.period, cfg)
            histories[series.name] = result["histories"]
            per_horizon[series.name] = {
                model: fm.mae_by_horizon(result["truth"], forecast)
                for model, forecast in result["forecasts"].items()
            }
            ctx.section(f"{series.name}: test errors", forecast_table(series.name, result, metrics, cfg))
            ctx.figure(
                f"{series.name}-forecasts",
                figs.forecasts_figure(series, result, cfg.interval),
                f"{series.name}: the test span and each model's forecasts",
            )
            bar.update(i + 1, val=metrics.get(f"{series.name}_lstm_mase", float("nan")))
        detector_scores, histories["anomalies"], split = anomaly_scores(gen, cfg, ctx)
        anomaly_metrics, flags = detect(gen, detector_scores, split)
        metrics |= anomaly_metrics
        bar.update(len(loaded) + 1)
    ctx.figure("horizon", figs.horizon_figure(per_horizon, loaded), "MAE by horizon step on the test span")
    ctx.figure("anomalies", figs.anomaly_figure(gen, detector_scores, flags, split), "Anomaly scores on test")
    ctx.figure("loss", figs.loss_figure(histories), "Loss curves (train and validation)")
    ctx.section("Anomaly detection on the generated series (test span)", figs.anomaly_table(anomaly_metrics))
    if "co2_lstm_mase" in metrics:
        metrics["lstm_mase"] = metrics["co2_lstm_mase"]
    return metrics
