"""Training speed of l8's GPT (the nanoGPT CPU recipe) against this machine's own matmul peak.

One training step of the full preset's model (4 layers, 4 heads, 128 wide, block 64, batch 12, AdamW,
grad clipping), float32 on the CPU. Model FLOPs per token follow nanoGPT's `estimate_mfu` (PaLM appendix
B): 6 N for the weights (forward 2 N, backward 4 N; N without the position table) plus 12 L T C for
attention. The peak is the median speed of a 2048x2048 `torch.mm` in the same run and thread count, so
the fraction says how much of what this CPU can do the training loop gets. Medians over repeats; steps
and matmuls alternate so load changes hit both alike.
Run: `.venv/bin/python benchmarks/gpt_speed.py [--threads 1 2]`, writes benchmarks/results/gpt-speed.json.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

from dlpractice.labs.language.l8_nanogpt import PRESETS
from dlpractice.models.gpt import GPT, GPTConfig

sys.path.insert(0, str(Path(__file__).parent))
from results_io import write_result  # noqa: E402

VOCAB = 65  # tinyshakespeare's characters
MM_SIZE = 2048
MATRICES = (torch.randn(MM_SIZE, MM_SIZE), torch.randn(MM_SIZE, MM_SIZE))


def flops_per_token(model: GPT, n_layer: int, block: int, n_embd: int) -> float:
    """nanoGPT's estimate: 6 N (weights, forward and backward) + 12 L T C (attention scores and mixing)."""
    n = sum(p.numel() for p in model.parameters()) - model.wpe.weight.numel()
    return 6 * n + 12 * n_layer * block * n_embd


def make_step(full: dict):
    """A closure doing one optimiser update of the full preset's model on a fixed random batch."""
    torch.manual_seed(0)
    sizes = {key: full[key] for key in ("block_size", "n_layer", "n_head", "n_embd")}
    model = GPT(GPTConfig(vocab_size=VOCAB, **sizes))
    optimizer = torch.optim.AdamW(model.parameters(), lr=full["lr"], weight_decay=full["weight_decay"])
    x = torch.randint(0, VOCAB, (full["batch_size"], full["block_size"]))  # (B, T)
    y = torch.randint(0, VOCAB, (full["batch_size"], full["block_size"]))  # (B, T)

    def step() -> None:
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), full["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return model, step


def matmul() -> None:
    a, b = MATRICES
    torch.mm(a, b)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def measure(threads: int, repeats: int) -> dict[str, float]:
    torch.set_num_threads(threads)
    full = PRESETS["full"]
    model, step = make_step(full)
    for _ in range(10):  # warm-up: allocator, kernels
        step()
        matmul()
    step_times, mm_times = [], []
    for _ in range(repeats):
        step_times.append(timed(step))
        if len(step_times) % 10 == 0:
            mm_times.append(timed(matmul))
    step_s, mm_s = statistics.median(step_times), statistics.median(mm_times)
    tokens = full["batch_size"] * full["block_size"]
    achieved = flops_per_token(model, full["n_layer"], full["block_size"], full["n_embd"]) * tokens / step_s
    peak = 2 * MM_SIZE**3 / mm_s
    return {
        f"step_ms_{threads}t": step_s * 1e3,
        f"tokens_per_second_{threads}t": tokens / step_s,
        f"model_gflops_{threads}t": achieved / 1e9,
        f"matmul_peak_gflops_{threads}t": peak / 1e9,
        f"fraction_of_peak_{threads}t": achieved / peak,
        f"recipe_seconds_{threads}t": step_s * full["steps"],  # 2,000 steps, training only
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=100)
    args = parser.parse_args()
    started = time.perf_counter()
    figures: dict[str, float] = {}
    for threads in args.threads:
        figures.update(measure(threads, args.repeats))
        print({k: round(v, 3) for k, v in figures.items() if k.endswith(f"_{threads}t")})
    first = args.threads[0]
    path = write_result(
        "gpt-speed",
        metric=f"fraction_of_peak_{first}t",
        value=figures[f"fraction_of_peak_{first}t"],
        bar=None,
        goal="max",
        seconds=time.perf_counter() - started,
        data="random tokens",
        figures=figures,
        threads=first,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
