"""Speed of the NumPy engine `dlpractice.scratch` against PyTorch on the CPU, measured side by side.

One full training step (forward, cross-entropy, backward, Adam update), float32, batch 128:
- an MLP 784-256-128-10, the headline ratio (goal: scratch at most 3x slower than torch);
- a small CNN on 28x28 images: conv(1->8, 3x3)-relu-maxpool-conv(8->16, 3x3)-relu-maxpool-linear;
- the scalar `Value` engine against the `Tensor` engine on micrograd's MLP(2, [16, 16, 1]), batch 100,
  one SGD step on the squared error (goal: Tensor at least 1000x faster).
Both engines run on one thread (torch.set_num_threads and OpenBLAS limited to 1) and their steps
alternate, so a change in machine load hits both alike; each figure is a median over repeats.
Run: `.venv/bin/python benchmarks/scratch_speed.py`, writes benchmarks/results/scratch-speed.json.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dlpractice.scratch import Tensor, nn, optim
from dlpractice.scratch import functional as F
from dlpractice.scratch import value as scalar

sys.path.insert(0, str(Path(__file__).parent))
from results_io import write_result  # noqa: E402

THREADS = 1
BATCH = 128


def alternating_medians_ms(
    steps: dict[str, Callable[[], None]], repeats: int, warmup: int = 3
) -> dict[str, float]:
    """Median milliseconds per call of each step, calling them in turn so they share the same load."""
    times: dict[str, list[float]] = {name: [] for name in steps}
    for round_ in range(warmup + repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            if round_ >= warmup:
                times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}


def scratch_train_step(model: nn.Module, inputs: np.ndarray, targets: np.ndarray) -> Callable[[], None]:
    opt = optim.Adam(model.parameters())
    x = Tensor(inputs)

    def step() -> None:
        loss = F.cross_entropy(model(x), targets)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def torch_train_step(model: torch.nn.Module, inputs: np.ndarray, targets: np.ndarray) -> Callable[[], None]:
    opt = torch.optim.Adam(model.parameters())
    x, y = torch.from_numpy(inputs), torch.from_numpy(targets)

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def image_batch(rng: np.random.Generator, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    return rng.standard_normal((BATCH, *shape)).astype(np.float32), rng.integers(0, 10, BATCH)


def mlp_figures(rng: np.random.Generator) -> dict[str, float]:
    inputs, targets = image_batch(rng, (784,))
    ours = nn.MLP(784, [256, 128], 10, rng=rng, dtype=np.float32)
    theirs = torch.nn.Sequential(
        torch.nn.Linear(784, 256),
        torch.nn.ReLU(),
        torch.nn.Linear(256, 128),
        torch.nn.ReLU(),
        torch.nn.Linear(128, 10),
    )
    ms = alternating_medians_ms(
        {
            "scratch": scratch_train_step(ours, inputs, targets),
            "torch": torch_train_step(theirs, inputs, targets),
        },
        repeats=100,
    )
    return {"mlp_step_ms_scratch": ms["scratch"], "mlp_step_ms_torch": ms["torch"]}


def cnn_figures(rng: np.random.Generator) -> dict[str, float]:
    inputs, targets = image_batch(rng, (1, 28, 28))
    f32 = np.float32
    ours = nn.Sequential(
        nn.Conv2d(1, 8, 3, rng=rng, dtype=f32),  # (B, 8, 26, 26)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 8, 13, 13)
        nn.Conv2d(8, 16, 3, rng=rng, dtype=f32),  # (B, 16, 11, 11)
        nn.ReLU(),
        nn.MaxPool2d(2),  # (B, 16, 5, 5)
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 10, rng=rng, dtype=f32),
    )
    theirs = torch.nn.Sequential(
        torch.nn.Conv2d(1, 8, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(8, 16, 3),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 5 * 5, 10),
    )
    ms = alternating_medians_ms(
        {
            "scratch": scratch_train_step(ours, inputs, targets),
            "torch": torch_train_step(theirs, inputs, targets),
        },
        repeats=40,
    )
    return {"cnn_step_ms_scratch": ms["scratch"], "cnn_step_ms_torch": ms["torch"]}


def scalar_data(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """100 points in the plane with labels -1 or 1: micrograd's demo size."""
    return rng.standard_normal((100, 2)), rng.choice([-1.0, 1.0], (100, 1))


def scalar_steps(
    inputs: np.ndarray, targets: np.ndarray, rng: np.random.Generator
) -> dict[str, Callable[[], None]]:
    """One SGD step on the squared error of micrograd's MLP(2, [16, 16, 1]): Value engine, Tensor engine."""
    value_model = scalar.MLP(2, [16, 16, 1])
    tensor_model = nn.MLP(2, [16, 16], 1, activation=nn.Tanh, rng=rng)
    tensor_opt = optim.SGD(tensor_model.parameters(), lr=0.01)
    x_tensor = Tensor(inputs)

    def value_step() -> None:
        outputs = [value_model(row)[0] for row in inputs.tolist()]
        loss = sum((out - y) ** 2 for out, y in zip(outputs, targets[:, 0].tolist(), strict=True)) / len(
            outputs
        )
        value_model.zero_grad()
        loss.backward()
        scalar.sgd_step(value_model.parameters(), lr=0.01)

    def tensor_step() -> None:
        loss = ((tensor_model(x_tensor) - targets) ** 2).mean()
        tensor_opt.zero_grad()
        loss.backward()
        tensor_opt.step()

    return {"value": value_step, "tensor": tensor_step}


def scalar_figures(rng: np.random.Generator) -> dict[str, float]:
    """micrograd's MLP(2, [16, 16, 1]) on 100 points: the Value engine against the Tensor engine."""
    steps = scalar_steps(*scalar_data(rng), rng)
    value_ms = alternating_medians_ms({"value": steps["value"]}, repeats=5, warmup=1)["value"]
    tensor_ms = alternating_medians_ms({"tensor": steps["tensor"]}, repeats=200)["tensor"]
    return {"scalar_step_ms_value": value_ms, "scalar_step_ms_tensor": tensor_ms}


def main() -> None:
    torch.set_num_threads(THREADS)
    threadpool_limits(THREADS)  # NumPy's OpenBLAS, for a fair one-thread comparison
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    figures = {**mlp_figures(rng), **cnn_figures(rng), **scalar_figures(rng)}
    figures["mlp_ratio_vs_torch"] = figures["mlp_step_ms_scratch"] / figures["mlp_step_ms_torch"]
    figures["cnn_ratio_vs_torch"] = figures["cnn_step_ms_scratch"] / figures["cnn_step_ms_torch"]
    figures["speedup_vs_scalar"] = figures["scalar_step_ms_value"] / figures["scalar_step_ms_tensor"]
    figures["load_1min"] = os.getloadavg()[0]
    figures = {name: round(value, 3) for name, value in figures.items()}
    path = write_result(
        "scratch-speed",
        metric="mlp_ratio_vs_torch",
        value=figures["mlp_ratio_vs_torch"],
        bar=3.0,
        goal="min",
        seconds=time.perf_counter() - start,
        data="embedded",
        figures=figures,
        threads=THREADS,
    )
    for name, value in figures.items():
        print(f"{name:>24}: {value:g}")
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
