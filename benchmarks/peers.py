"""Ours beside the peers it is measured against, the peers run as they are from ../shared/peers.

Three pairs, in one invocation, on the same thread count (1 by default, `--threads`):

- l8 against nanoGPT. nanoGPT's own `train.py config/train_shakespeare_char.py` with its README's CPU
  recipe, run as a program in a temporary copy of its folder (the peer folder is never written to), after
  its own `data/shakespeare_char/prepare.py` has prepared tinyshakespeare (its input.txt is put beside
  prepare.py first, which otherwise downloads it). Then our l8's fastest preset through our runner, also
  as a program of its own (this file with `--child-l8`), so both pay for starting Python and importing
  torch. The time is each program's wall time (data preparation included); the loss is nanoGPT's last
  logged validation loss and our run's. The ratio counts only when ours reaches l8's bar (val <= 1.88):
  a run that misses it scores 0. One run each (2,000 and 1,500 training steps are minutes apiece).
- n2 against minbpe: its BasicTokenizer (no split) and RegexTokenizer (GPT-4 split) against our BPE with
  pattern=None and with the GPT-4 split, training to 512 tokens and encoding, on taylorswift.txt
  (minbpe's own test text). The merges learnt must be the same (same tie rule). minbpe is imported
  from its folder without running its package `__init__`, which imports tiktoken for gpt4.py alone.
- f1 against micrograd: one SGD step on the squared error of MLP(2, [16, 16, 1]) over 100 points, with
  micrograd's Value engine, our scalar Value engine (benchmarks/scratch_speed.py builds ours) and our
  Tensor engine. micrograd's hidden neurons use ReLU, ours tanh: one node per neuron either way.

Each tokenizer and engine figure is the median of `--repeats` timings taken in turn (ours, theirs, ours,
...), so a change in the machine's load hits both alike; the load is recorded before and after each
pair. A ratio is the peer's time over ours: above 1, ours is faster.

Run: `.venv/bin/python benchmarks/peers.py [--peers DIR] [--threads 1] [--only minbpe micrograd]`;
writes benchmarks/results/peers.json (only when every pair ran, and on nanoGPT's full recipe).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from dlpractice.labs.language.l8_nanogpt import LAB as L8
from dlpractice.tokenizers.bpe import GPT4_SPLIT_PATTERN, BPETokenizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_io import write_result  # noqa: E402
from scratch_speed import alternating_medians_ms, scalar_data, scalar_steps  # noqa: E402
from tokenizer_speed import find_text  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_PEERS = REPO.parent / "shared" / "peers"
PAIRS = ("nanogpt", "minbpe", "micrograd")
# nanoGPT README, "I only have a macbook": the CPU recipe, word for word
NANOGPT_RECIPE = [
    "config/train_shakespeare_char.py",
    "--device=cpu",
    "--compile=False",
    "--eval_iters=20",
    "--log_interval=1",
    "--block_size=64",
    "--batch_size=12",
    "--n_layer=4",
    "--n_head=4",
    "--n_embd=128",
    "--max_iters=2000",
    "--lr_decay_iters=2000",
    "--dropout=0.0",
]
L8_PRESET = "fast"  # l8's preset that reaches the bar soonest
VOCAB_SIZE = 512


# --- the peers, as they are ----------------------------------------------------------------------------


def peer_folder(peers: Path, name: str) -> Path:
    folder = peers / name
    if not folder.is_dir():
        sys.exit(f"peers: {folder} not found; pass --peers DIR with nanoGPT, minbpe and micrograd inside")
    return folder


def import_minbpe(peers: Path) -> tuple[types.ModuleType, types.ModuleType]:
    """minbpe.basic and minbpe.regex from the peer folder, without the package `__init__` (which imports
    gpt4.py and so tiktoken): an empty package object whose path is minbpe's folder stands in for it."""
    package = types.ModuleType("minbpe")
    package.__path__ = [str(peer_folder(peers, "minbpe") / "minbpe")]
    sys.modules["minbpe"] = package
    return importlib.import_module("minbpe.basic"), importlib.import_module("minbpe.regex")


def import_micrograd(peers: Path) -> types.ModuleType:
    """micrograd.nn (its package `__init__` is empty)."""
    sys.path.insert(0, str(peer_folder(peers, "micrograd")))
    return importlib.import_module("micrograd.nn")


def load_nanogpt_model(peers: Path) -> types.ModuleType:
    """nanoGPT's model.py (GPT, GPTConfig), imported from the peer folder."""
    path = peer_folder(peers, "nanoGPT") / "model.py"
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks itself up there
    spec.loader.exec_module(module)
    return module


def thread_env(threads: int) -> dict[str, str]:
    """The environment both programs run in: the same thread count for torch, OpenMP and BLAS."""
    names = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "DLP_THREADS")
    return {**os.environ, **dict.fromkeys(names, str(threads))}


def load() -> float:
    return round(os.getloadavg()[0], 2)


# --- l8 against nanoGPT --------------------------------------------------------------------------------


def run_program(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[str, float]:
    """Run a program to its end; its output and wall seconds. A failure stops the benchmark."""
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        sys.exit(f"peers: {' '.join(command[:3])} failed in {cwd}: {tail}")
    return done.stdout, seconds


def parse_nanogpt_log(log: str) -> dict[str, float]:
    """The last evaluation's losses, the summed iteration times nanoGPT logs, and how many it logged."""
    evaluations = re.findall(r"^step (\d+): train loss ([\d.]+), val loss ([\d.]+)$", log, re.M)
    iteration_ms = [float(ms) for ms in re.findall(r"^iter \d+: loss [\d.]+, time ([\d.]+)ms", log, re.M)]
    if not evaluations or not iteration_ms:
        raise ValueError("no 'step N: train loss ..., val loss ...' or 'iter N: ... time ...ms' line")
    step, train_loss, val_loss = evaluations[-1]
    return {
        "val_loss": float(val_loss),
        "train_loss": float(train_loss),
        "last_eval_step": int(step),
        "loop_seconds": sum(iteration_ms) / 1000,
        "iterations": len(iteration_ms),
    }


def run_nanogpt(peers: Path, corpus: Path, threads: int, overrides: list[str]) -> dict[str, float]:
    """prepare.py then train.py, in a temporary copy of nanoGPT; wall seconds of the two together."""
    env = thread_env(threads)
    with tempfile.TemporaryDirectory(prefix="nanogpt-") as tmp:
        folder = Path(shutil.copytree(peer_folder(peers, "nanoGPT"), Path(tmp) / "nanoGPT"))
        shutil.copyfile(corpus, folder / "data" / "shakespeare_char" / "input.txt")
        prepare = [sys.executable, "data/shakespeare_char/prepare.py"]
        _, prepare_seconds = run_program(prepare, folder, env)
        log, train_seconds = run_program(
            [sys.executable, "train.py", *NANOGPT_RECIPE, *overrides], folder, env
        )
    return {**parse_nanogpt_log(log), "wall_seconds": prepare_seconds + train_seconds}


def run_ours_l8(data_dir: str, threads: int, overrides: list[str]) -> dict[str, float]:
    """Our l8 as its own program (this file, --child-l8); its wall seconds and the run's metrics."""
    command = [sys.executable, __file__, "--child-l8", "--threads", str(threads), "--data-dir", data_dir]
    for override in overrides:
        command += ["--set", override]
    out, seconds = run_program(command, REPO, thread_env(threads))
    metrics = json.loads(out.strip().splitlines()[-1])
    metrics["lab_wall_seconds"] = metrics.pop("wall_seconds")  # the lab's own: data, training, sample
    return {**metrics, "wall_seconds": seconds}


def l8_child(data_dir: str, threads: int, overrides: list[str]) -> None:
    """In the child: one tracked l8 run through the runner, as `dlp run l8` does; prints its metrics."""
    from dlpractice.runner import RunSpec, start_run

    spec = RunSpec(
        "l8", L8_PRESET, tuple(overrides), "real", data_dir, "cpu", threads=threads, origin="benchmark"
    )
    outcome = start_run(spec)
    keep = ("val_loss", "train_loss", "steps", "wall_seconds", "tokens_per_second")
    print(json.dumps({k: outcome.metrics[k] for k in keep if k in outcome.metrics}))


def nanogpt_pair(args: argparse.Namespace) -> dict[str, float]:
    corpus = Path(args.data_dir) / "tinyshakespeare" / "input.txt"
    if not corpus.is_file():
        sys.exit(f"peers: {corpus} not found; pass --data-dir DIR with tinyshakespeare/input.txt inside")
    before = load()
    theirs = run_nanogpt(args.peers, corpus, args.threads, args.nanogpt_set)
    print({"nanogpt": theirs}, flush=True)
    ours = run_ours_l8(args.data_dir, args.threads, args.set)
    print({"l8": ours}, flush=True)
    reached = ours["val_loss"] <= L8.bar  # the bar: val <= 1.88, sooner than nanoGPT
    figures = {f"nanogpt_{k}": v for k, v in theirs.items()} | {f"l8_{k}": v for k, v in ours.items()}
    figures["l8_vs_nanogpt"] = theirs["wall_seconds"] / ours["wall_seconds"] if reached else 0.0
    return {**figures, "nanogpt_load_before": before, "nanogpt_load_after": load()}


# --- n2 against minbpe ---------------------------------------------------------------------------------


def tokenizer_figures(
    name: str, peer_class: type, pattern: str | None, text: str, repeats: int
) -> dict[str, float]:
    """Train both to VOCAB_SIZE and encode the text with both, in turn; medians, and whether they agree."""
    trained: dict[str, object] = {}
    encoded: dict[str, list[int]] = {}

    def train_peer() -> None:
        trained["peer"] = peer_class()
        trained["peer"].train(text, VOCAB_SIZE)

    def train_ours() -> None:
        trained["ours"] = BPETokenizer.train(text, VOCAB_SIZE, pattern=pattern)

    def encode_ours() -> None:
        trained["ours"].clear_cache()  # each encoding starts cold: the chunk cache is part of the work
        encoded["ours"] = trained["ours"].encode(text)

    def encode_peer() -> None:
        encoded["peer"] = trained["peer"].encode(text)

    train_ms = alternating_medians_ms({"ours": train_ours, "peer": train_peer}, repeats, warmup=0)
    encode_ms = alternating_medians_ms({"ours": encode_ours, "peer": encode_peer}, repeats, warmup=0)
    ours, peer = list(trained["ours"].merges.items()), list(trained["peer"].merges.items())
    return {
        f"{name}_train_seconds_ours": train_ms["ours"] / 1000,
        f"{name}_train_seconds_minbpe": train_ms["peer"] / 1000,
        f"{name}_encode_seconds_ours": encode_ms["ours"] / 1000,
        f"{name}_encode_seconds_minbpe": encode_ms["peer"] / 1000,
        f"{name}_merges_differing": sum(a != b for a, b in zip(ours, peer)) + abs(len(ours) - len(peer)),
        f"{name}_same_ids": float(encoded["ours"] == encoded["peer"]),
        f"{name}_train_vs_minbpe": train_ms["peer"] / train_ms["ours"],
        f"{name}_encode_vs_minbpe": encode_ms["peer"] / encode_ms["ours"],
    }


def minbpe_pair(args: argparse.Namespace) -> dict[str, float]:
    basic, regex = import_minbpe(args.peers)
    text = find_text(args.data_dir).read_text(encoding="utf-8")
    before = load()
    figures = {
        **tokenizer_figures("basic", basic.BasicTokenizer, None, text, args.repeats),
        **tokenizer_figures("regex", regex.RegexTokenizer, GPT4_SPLIT_PATTERN, text, args.repeats),
    }
    print({"minbpe": figures}, flush=True)
    return {**figures, "minbpe_load_before": before, "minbpe_load_after": load()}


# --- f1 against micrograd ------------------------------------------------------------------------------

TENSOR_STEPS_PER_CALL = 100  # a Tensor step takes well under a millisecond: time a hundred per call


def micrograd_pair(args: argparse.Namespace) -> dict[str, float]:
    micrograd_nn = import_micrograd(args.peers)
    rng = np.random.default_rng(0)
    inputs, targets = scalar_data(rng)
    ours = scalar_steps(inputs, targets, rng)
    random.seed(0)  # micrograd draws its weights from `random`
    model = micrograd_nn.MLP(2, [16, 16, 1])
    rows, labels = inputs.tolist(), targets[:, 0].tolist()

    def micrograd_step() -> None:  # the step ours takes: squared error, zero_grad, backward, SGD
        loss = sum((model(row) - y) ** 2 for row, y in zip(rows, labels, strict=True)) / len(rows)
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data -= 0.01 * p.grad

    def tensor_steps() -> None:
        for _ in range(TENSOR_STEPS_PER_CALL):
            ours["tensor"]()

    before = load()
    steps = {"micrograd": micrograd_step, "value": ours["value"], "tensor": tensor_steps}
    ms = alternating_medians_ms(steps, args.repeats, warmup=1)
    ms["tensor"] /= TENSOR_STEPS_PER_CALL
    figures = {
        "micrograd_step_ms": ms["micrograd"],
        "value_step_ms": ms["value"],
        "tensor_step_ms": ms["tensor"],
        "value_vs_micrograd": ms["micrograd"] / ms["value"],
        "tensor_vs_micrograd": ms["micrograd"] / ms["tensor"],
    }
    print({"micrograd": figures}, flush=True)
    return {**figures, "micrograd_load_before": before, "micrograd_load_after": load()}


# --- the result ----------------------------------------------------------------------------------------


ROW_KEYS = ("ours", "peer", "measure", "ours_value", "peer_value", "ratio", "note")


def pair_rows(f: dict[str, float]) -> list[dict[str, object]]:
    """One row a pair for the README: what is compared, both figures and the ratio (peer / ours)."""
    rows = []
    if "l8_vs_nanogpt" in f:
        rows.append(
            (
                f"l8 --preset {L8_PRESET} ({f['l8_steps']:,.0f} steps)",
                f"nanoGPT train.py, its README's CPU recipe ({f['nanogpt_last_eval_step']:,.0f} steps)",
                "program wall s",
                f["l8_wall_seconds"],
                f["nanogpt_wall_seconds"],
                f["l8_vs_nanogpt"],
                f"val loss {f['l8_val_loss']:.3f} against {f['nanogpt_val_loss']:.3f} "
                f"(the ratio is 0 unless ours is at most {L8.bar})",
            )
        )
    tokenizers = (("regex", "GPT-4 split", "RegexTokenizer"), ("basic", "no split", "BasicTokenizer"))
    for name, split, peer in (t for t in tokenizers if f"{t[0]}_train_vs_minbpe" in f):
        notes = {
            "train": f"{f[f'{name}_merges_differing']:.0f} of {VOCAB_SIZE - 256} merges differ",
            "encode": f"same ids: {'yes' if f[f'{name}_same_ids'] else 'no'}",
        }
        for task, note in notes.items():
            seconds = (f[f"{name}_{task}_seconds_ours"], f[f"{name}_{task}_seconds_minbpe"])
            ratio = f[f"{name}_{task}_vs_minbpe"]
            rows.append((f"n2 BPE, {split}: {task}", f"minbpe {peer}.{task}", "s", *seconds, ratio, note))
    for engine in (e for e in ("value", "tensor") if f"{e}_vs_micrograd" in f):
        rows.append(
            (
                f"f1 {engine.capitalize()} engine: one SGD step",
                "micrograd: one SGD step",
                "ms",
                f[f"{engine}_step_ms"],
                f["micrograd_step_ms"],
                f[f"{engine}_vs_micrograd"],
                "MLP(2, [16, 16, 1]) on 100 points",
            )
        )
    return [dict(zip(ROW_KEYS, row, strict=True)) for row in rows]


def write_peers(figures: dict[str, float], args: argparse.Namespace, seconds: float) -> Path:
    """benchmarks/results/peers.json: the headline (l8 against nanoGPT), every figure, and the rows."""
    path = write_result(
        "peers",
        metric="l8_vs_nanogpt",
        value=figures["l8_vs_nanogpt"],
        bar=1.0,
        goal="max",
        seconds=seconds,
        data="real: tinyshakespeare (l8, nanoGPT), taylorswift.txt (n2, minbpe); generated points (f1)",
        figures={k: round(v, 6) for k, v in figures.items()},
        threads=args.threads,
    )
    result = json.loads(path.read_text())
    result.update(repeats=args.repeats, pairs=pair_rows(figures))
    path.write_text(json.dumps(result, indent=2) + "\n")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers", type=Path, default=DEFAULT_PEERS, help="folder holding the peers")
    parser.add_argument(
        "--data-dir", default=os.environ.get("DLP_DATA_DIR", str(REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3, help="timings per figure (tokenizers, engines)")
    parser.add_argument("--only", nargs="+", choices=PAIRS, default=list(PAIRS), help="some pairs (a try)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override our l8")
    parser.add_argument(
        "--nanogpt-set", action="append", default=[], metavar="--KEY=VALUE", help="add to nanoGPT's recipe"
    )
    parser.add_argument("--no-write", action="store_true", help="print, do not write the result file")
    parser.add_argument("--child-l8", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.threads < 1 or args.repeats < 1:
        parser.error("--threads and --repeats must be at least 1")
    if args.child_l8:  # in the child process: one l8 run, its metrics printed last
        l8_child(args.data_dir, args.threads, args.set)
        return

    torch.set_num_threads(args.threads)
    threadpool_limits(args.threads)  # NumPy's BLAS, for the Tensor engine
    started = time.perf_counter()
    pair_runs: dict[str, Callable[[argparse.Namespace], dict[str, float]]] = {
        "nanogpt": nanogpt_pair,
        "minbpe": minbpe_pair,
        "micrograd": micrograd_pair,
    }
    figures: dict[str, float] = {}
    for name in args.only:
        figures |= pair_runs[name](args)
    for row in pair_rows(figures):
        print(
            f"{row['ours']} | {row['peer']} | {row['ours_value']:.4g} vs {row['peer_value']:.4g} "
            f"| {row['ratio']:.3g} | {row['note']}"
        )
    complete = set(args.only) == set(PAIRS) and not (args.nanogpt_set or args.set)
    if args.no_write or not complete:
        print("not written: every pair, on nanoGPT's own recipe and our preset unchanged, makes the file")
        return
    print(f"wrote {write_peers(figures, args, time.perf_counter() - started)}")


if __name__ == "__main__":
    main()
