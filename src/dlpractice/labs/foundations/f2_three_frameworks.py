"""F2 · One model, three frameworks: NumPy (the scratch engine), PyTorch and Keras 3, side by side.

Two tasks, diabetes regression (test R²) and digits classification (test accuracy), each trained with
the same MLP (one hidden ReLU layer), the same initial weights, Adam, the same epochs and batch size.
The NumPy and PyTorch versions also see the same minibatches in float64, so their losses agree to
~1e-12 at every step: the two loops are the same computation written twice. Keras 3 runs on its torch
backend (`model.fit` shuffles for itself, float32), and on TensorFlow when TensorFlow is installed
(in a child process, since Keras picks its backend once per process); otherwise that row says why
it is missing. The table gives each framework's metric and wall time. Simplified: no validation-based
stopping; times include Python overhead, which is what a small model on a CPU measures.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import PositiveFloat, PositiveInt
from dlpractice.data.digits import Splits, load_diabetes, load_digits
from dlpractice.registry import lab
from dlpractice.scratch import Tensor, nn, no_grad, optim
from dlpractice.scratch import functional as F

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("f2", requires=("f1",), data=("diabetes", "digits"), metric="torch_test_accuracy", goal="max")


@dataclass
class Config:
    hidden: PositiveInt = 64
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 32
    lr: PositiveFloat = 1e-3
    tensorflow: bool = True  # also run Keras on TensorFlow when it is installed


PRESETS = {"smoke": {"epochs": 2, "hidden": 16}, "quick": {}, "full": {"epochs": 100, "hidden": 128}}

TASKS = ("diabetes", "digits")


def initial_weights(n_in: int, hidden: int, n_out: int, seed: int) -> list[np.ndarray]:
    """W1 (hidden, n_in), b1, W2 (n_out, hidden), b2, as torch lays out nn.Linear, in float64."""
    layers = nn.MLP(n_in, [hidden], n_out, rng=np.random.default_rng(seed))
    return [p.data.copy() for p in layers.parameters()]


def batch_order(n: int, cfg: Config, seed: int) -> list[np.ndarray]:
    """The minibatch indices of every epoch: one shuffled permutation per epoch."""
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n) for _ in range(cfg.epochs)]
    return [p[i : i + cfg.batch_size] for p in perms for i in range(0, n, cfg.batch_size)]


def train_numpy(data: Splits, task: str, weights: list[np.ndarray], batches: list[np.ndarray], cfg: Config):
    """The scratch engine; returns (test predictions, per-step losses)."""
    model = nn.MLP(data.x_train.shape[1], [cfg.hidden], len(weights[-1]))
    for p, w in zip(model.parameters(), weights, strict=True):
        p.data = w.copy()
    opt = optim.Adam(model.parameters(), lr=cfg.lr)
    losses = []
    for index in batches:
        out = model(Tensor(data.x_train[index]))
        loss = (
            F.cross_entropy(out, data.y_train[index])
            if task == "digits"
            else ((out.reshape(-1) - data.y_train[index]) ** 2).mean()
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with no_grad():
        return model(Tensor(data.x_test)).data, losses


def train_torch(data: Splits, task: str, weights: list[np.ndarray], batches: list[np.ndarray], cfg: Config):
    """PyTorch, float64, the same weights and batches; returns (test predictions, per-step losses)."""
    # BEGIN EXERCISE f2.1: the same model and loop in PyTorch (nn.Sequential, torch.optim.Adam)
    model = torch.nn.Sequential(
        torch.nn.Linear(data.x_train.shape[1], cfg.hidden),
        torch.nn.ReLU(),
        torch.nn.Linear(cfg.hidden, len(weights[-1])),
    ).double()
    with torch.no_grad():
        for p, w in zip(model.parameters(), weights, strict=True):
            p.copy_(torch.from_numpy(w))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    x, y = torch.from_numpy(data.x_train), torch.from_numpy(data.y_train)
    losses = []
    for index in batches:
        out = model(x[index])
        loss = (
            torch.nn.functional.cross_entropy(out, y[index])
            if task == "digits"
            else torch.nn.functional.mse_loss(out[:, 0], y[index])
        )
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    # END EXERCISE
    with torch.no_grad():
        return model(torch.from_numpy(data.x_test)).numpy(), losses


def train_keras(data: Splits, task: str, weights: list[np.ndarray], cfg: Config) -> np.ndarray:
    """Keras 3 on whichever backend it was imported with; returns the test predictions."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((data.x_train.shape[1],)),
            keras.layers.Dense(cfg.hidden, "relu"),
            keras.layers.Dense(len(weights[-1])),
        ]
    )
    model.set_weights([weights[0].T, weights[1], weights[2].T, weights[3]])  # Keras kernels are (in, out)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True) if task == "digits" else "mse"
    model.compile(optimizer=keras.optimizers.Adam(cfg.lr), loss=loss)
    model.fit(data.x_train, data.y_train, epochs=cfg.epochs, batch_size=cfg.batch_size, verbose=0)
    return np.asarray(model.predict(data.x_test, verbose=0, batch_size=1024))


def keras_results(datasets: dict[str, Splits], weights: dict, cfg: Config) -> dict[str, float]:
    """{task: metric, task_seconds: time} for Keras in this process (the torch backend)."""
    os.environ.setdefault("KERAS_BACKEND", "torch")  # read once, at Keras's first import
    results = {}
    for task, data in datasets.items():
        started = time.perf_counter()
        results[task] = metric(task, train_keras(data, task, weights[task], cfg), data.y_test)
        results[f"{task}_seconds"] = time.perf_counter() - started
    return results


def keras_tensorflow(data_source: str, seed: int, cfg: Config) -> dict[str, float] | str:
    """Keras on TensorFlow in a child process, or the reason it was skipped."""
    if not cfg.tensorflow or importlib.util.find_spec("tensorflow") is None:
        return "skipped: TensorFlow is not installed (pip install tensorflow to add this row)"
    code = (
        "import json, sys; from dlpractice.labs.foundations import f2_three_frameworks as f2;"
        "cfg = f2.Config(**json.loads(sys.argv[1]));"
        "print(json.dumps(f2.keras_results(*f2.prepare(sys.argv[2], int(sys.argv[3]), cfg), cfg)))"
    )
    env = {**os.environ, "KERAS_BACKEND": "tensorflow"}
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(asdict(cfg)), data_source, str(seed)],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    if done.returncode:
        return f"failed: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else done.returncode}"
    return json.loads(done.stdout.strip().splitlines()[-1])


def metric(task: str, prediction: np.ndarray, y: np.ndarray) -> float:
    """Test accuracy for digits, R² for diabetes."""
    if task == "digits":
        return float((prediction.argmax(1) == y).mean())
    residual = prediction[:, 0] - y
    return float(1 - (residual**2).sum() / ((y - y.mean()) ** 2).sum())


def prepare(data_source: str, seed: int, cfg: Config) -> tuple[dict[str, Splits], dict]:
    datasets = {"diabetes": load_diabetes(data_source), "digits": load_digits(data_source)}
    weights = {
        t: initial_weights(d.x_train.shape[1], cfg.hidden, 10 if t == "digits" else 1, seed)
        for t, d in datasets.items()
    }
    return datasets, weights


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    datasets, weights = prepare(ctx.data, ctx.seed, cfg)
    ctx.record_data({**datasets["digits"].describe(), "diabetes": datasets["diabetes"].origin})
    results: dict[str, dict[str, float]] = {"NumPy (scratch engine)": {}, "PyTorch": {}}
    diffs = []
    for task, data in datasets.items():
        batches = batch_order(len(data.x_train), cfg, ctx.seed)
        curves = {}
        for name, train in zip(results, (train_numpy, train_torch), strict=True):
            started = time.perf_counter()
            prediction, curves[name] = train(data, task, weights[task], batches, cfg)
            results[name][task] = metric(task, prediction, data.y_test)
            results[name][f"{task}_seconds"] = time.perf_counter() - started
        diffs.append(np.abs(np.subtract(*curves.values())).max())
    results["Keras 3 (torch backend)"] = keras_results(datasets, weights, cfg)
    tensorflow = keras_tensorflow(ctx.data, ctx.seed, cfg)
    if isinstance(tensorflow, dict):
        results["Keras 3 (TensorFlow backend)"] = tensorflow
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name, values in curves.items():  # the digits task's curves: the two lines coincide
        left.plot(values, label=name, linestyle="--" if name == "PyTorch" else "-")
    left.set(title="digits: minibatch loss per step", xlabel="step", ylabel="cross-entropy", yscale="log")
    left.legend()
    right.barh(list(results), [r["digits_seconds"] + r["diabetes_seconds"] for r in results.values()])
    right.set(title="wall time, both tasks", xlabel="seconds")
    ctx.figure("frameworks", fig, "NumPy vs PyTorch losses; time per framework")
    rows = [
        f"| {name} | {r['diabetes']:.3f} | {r['diabetes_seconds']:.2f} | {r['digits']:.3f} | "
        f"{r['digits_seconds']:.2f} |"
        for name, r in results.items()
    ]
    if isinstance(tensorflow, str):
        rows.append(f"| Keras 3 (TensorFlow backend) | {tensorflow} | | | |")
    ctx.section(
        "Metric and time per framework (test split)",
        "| framework | diabetes R² | seconds | digits accuracy | seconds |\n|---|---|---|---|---|\n"
        + "\n".join(rows)
        + f"\n\nNumPy vs PyTorch, largest difference of any step's loss: {max(diffs):.1e}.",
    )
    keys = {
        "NumPy (scratch engine)": "numpy",
        "PyTorch": "torch",
        "Keras 3 (torch backend)": "keras",
        "Keras 3 (TensorFlow backend)": "keras_tf",
    }
    metrics = {"numpy_torch_max_loss_diff": float(max(diffs))}
    for name, r in results.items():
        metrics[f"{keys[name]}_test_accuracy"] = r["digits"]
        metrics[f"{keys[name]}_test_r2"] = r["diabetes"]
        metrics[f"{keys[name]}_seconds"] = r["digits_seconds"] + r["diabetes_seconds"]
    return metrics
