"""Serving measured (issue 18, lab p2): one trained n6 run behind `dlp serve`, with and without batching.

    python benchmarks/p2_serve.py RUN [--requests 2000] [--clients 32] [--max-batch 32] [--max-wait-ms 5]

RUN is a finished n6 run (its name or directory; the issue's figure is MiniLM's full preset:
`dlp run n6 --preset full --data real --set models=minilm`). The server is the real one, `dlp serve RUN`
in its own process on a free loopback port, one torch thread; the clients are this process, `--clients`
concurrent closed-loop callers sending `--requests` POST /predict in all (rt-polarity-like sentences of
4-30 words). Each setting (max batch 1, then `--max-batch`) gets a fresh server, a warm-up, then `--rounds`
rounds, interleaved. Writes benchmarks/results/p2.json: value = requests/s with batching (median of
rounds), figures = unbatched requests/s, batched p50/p99 latency (pooled), errors, the speedup.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402

SENTENCES = (
    "a gripping, beautifully acted film",
    "not funny and far too long",
    "i did not hate it",
    "the plot is thin but the performances carry it from the first scene to the last",
    "an overlong, self-important mess that mistakes noise for energy and length for depth",
    "warm, clever and surprisingly moving",
    "a dull, lifeless exercise in style over substance",
    "it never quite decides what it wants to be, yet it is hard not to enjoy the ride",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def served(run: str, max_batch: int, max_wait_ms: float) -> Iterator[str]:
    """`dlp serve RUN` in its own process until /health answers; stopped (Ctrl-C) on exit."""
    port = free_port()
    command = [sys.executable, "-m", "dlpractice", "serve", run, "--port", str(port)]
    command += ["--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)]
    server = subprocess.Popen(command, env=os.environ | {"DLP_THREADS": "1"}, stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while not healthy(url):
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"dlp serve {run} did not start (exit {server.poll()})")
            time.sleep(0.5)
        yield url
    finally:
        server.send_signal(signal.SIGINT)
        server.wait(timeout=60)


def healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


async def load(url: str, requests: int, clients: int) -> tuple[float, list[float], int]:
    """(seconds, latencies in seconds, failed requests) of `requests` calls from `clients` callers."""
    numbers = iter(range(requests))  # shared: each caller takes the next request number
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def caller(http: httpx.AsyncClient) -> int:
        failed = 0
        for i in numbers:
            sent = time.perf_counter()
            try:
                answer = await http.post(f"{url}/predict", json={"text": SENTENCES[i % len(SENTENCES)]})
                failed += answer.status_code != 200
            except httpx.HTTPError:
                failed += 1
            latencies.append(time.perf_counter() - sent)
        return failed

    async with httpx.AsyncClient(trust_env=False, timeout=60, limits=limits) as http:
        start = time.perf_counter()
        failed = await asyncio.gather(*(caller(http) for _ in range(clients)))
        return time.perf_counter() - start, latencies, sum(failed)


def measure(run: str, max_batch: int, args: argparse.Namespace) -> dict[str, float]:
    with served(run, max_batch, args.max_wait_ms) as url:
        asyncio.run(load(url, 4 * args.clients, args.clients))  # warm-up: first calls are slow
        rounds = [asyncio.run(load(url, args.requests, args.clients)) for _ in range(args.rounds)]
    from dlpractice.labs.production.p2_serve import percentile

    latencies = [s for _, lat, _ in rounds for s in lat]
    row = {
        "rps": statistics.median(args.requests / seconds for seconds, _, _ in rounds),
        "p50_ms": 1000 * percentile(latencies, 50),
        "p99_ms": 1000 * percentile(latencies, 99),
        "errors": float(sum(failed for _, _, failed in rounds)),
    }
    print(f"max batch {max_batch}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="a finished n6 run: its name or directory")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    started = time.perf_counter()
    alone = measure(args.run, 1, args)
    batched = measure(args.run, args.max_batch, args)
    figures = {
        "unbatched_rps": alone["rps"],
        "unbatched_p50_ms": alone["p50_ms"],
        "unbatched_p99_ms": alone["p99_ms"],
        "p50_ms": batched["p50_ms"],
        "p99_ms": batched["p99_ms"],
        "errors": alone["errors"] + batched["errors"],
        "batching_speedup": batched["rps"] / alone["rps"],
        "max_batch": args.max_batch,
        "max_wait_ms": args.max_wait_ms,
        "clients": args.clients,
    }
    path = write_result(
        "p2",
        metric="batched_requests_per_s",
        value=batched["rps"],
        bar=None,
        goal="max",
        seconds=time.perf_counter() - started,
        data=f"n6 run {Path(args.run).name}, loopback HTTP, {args.requests} requests x {args.rounds} rounds",
        figures=figures,
        threads=1,
    )
    print(path)


if __name__ == "__main__":
    main()
