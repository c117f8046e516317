"""N2 · Tokenizers: byte-level BPE, WordPiece and Unigram from scratch, against HF and SentencePiece.

The tokenizers themselves live in `dlpractice.tokenizers` (the exercises are there: pair counts, the
merge step, Viterbi, WordPiece scoring). This lab trains ours and the libraries' on one text and puts
them in one table (vocabulary overlap, tokens per character, fertility, unknown rate, speed), times
our BPE training and encoding against Hugging Face's, and sweeps the BPE vocabulary size: compression
on held-out text, and the validation loss of a small language model trained on each tokenisation
with the same budget, in bits per byte so that different vocabularies compare fairly.
Simplified: the language model is a tiny MLP over the previous few tokens (L2's), trained for a fixed
number of steps with a plain loop; timings are single-process medians on whatever machine runs it.
"""

from __future__ import annotations

import inspect
import math
import platform
import statistics
import time
from dataclasses import dataclass
from importlib import import_module
from typing import TYPE_CHECKING, Annotated, Literal

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Range
from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.tokenizers import BPETokenizer, compare_tokenizers
from dlpractice.tokenizers.compare import hf_recipe

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "n2",
    requires=("l2",),
    data=("python-stdlib", "taylorswift", "tinyshakespeare"),
    metric="bpe_train_seconds",
    bar=0.3,
)

TEXTS = {
    "taylorswift": RealFile(
        name="taylorswift.txt",
        url="https://raw.githubusercontent.com/karpathy/minbpe/1acefe89412b20245db5e22d2a02001e547dc602/tests/taylorswift.txt",
        sha256="c2e39cb822d4ae0caac22152cefc306d466e31217a9c5524e493ad2b76792f57",
        places=("taylorswift/taylorswift.txt", "taylorswift.txt"),
    ),
    "tinyshakespeare": RealFile(
        name="tinyshakespeare.txt",
        url="https://raw.githubusercontent.com/karpathy/char-rnn/6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
        sha256="86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",
        places=("tinyshakespeare/input.txt", "tinyshakespeare.txt"),
    ),
}
STDLIB_MODULES = (
    "textwrap",
    "argparse",
    "collections",
    "json",
    "pathlib",
    "random",
    "string",
    "statistics",
    "difflib",
    "functools",
    "itertools",
    "inspect",
    "subprocess",
    "datetime",
    "csv",
    "shutil",
)


@dataclass
class Config:
    text: Literal["taylorswift", "tinyshakespeare"] = "taylorswift"  # the real text
    max_chars: NonNegativeInt = 0  # use only the first max_chars characters (0: all)
    vocab_size: Annotated[int, Range(ge=256)] = 512
    compare_chars: PositiveInt = 60000  # the 8-tokenizer table trains on this much (our WordPiece is slow)
    timing_repeats: PositiveInt = 3
    sweep: tuple[Annotated[int, Range(ge=256)], ...] = (256, 320, 384, 512, 768, 1024, 1536)
    lm_context: PositiveInt = 4  # tokens of context of the sweep's language model
    lm_embd: PositiveInt = 32
    lm_hidden: PositiveInt = 256
    lm_steps: PositiveInt = 1500
    lm_batch: PositiveInt = 128
    lm_lr: PositiveFloat = 3e-3
    sweep_seeds: tuple[NonNegativeInt, ...] = (0,)  # LM seeds averaged per size


PRESETS = {
    "smoke": {
        "max_chars": 12000,
        "vocab_size": 300,
        "compare_chars": 3000,
        "timing_repeats": 1,
        "sweep": (256, 300, 400),
        "lm_steps": 40,
        "lm_batch": 32,
    },
    "quick": {"compare_chars": 20000, "sweep": (256, 384, 512, 1024), "lm_steps": 500},
    "full": {},
}


def stdlib_text() -> tuple[str, str]:
    """Docstrings of a few standard-library modules and their public members (offline everywhere)."""
    parts = []
    for name in STDLIB_MODULES:
        module = import_module(name)
        parts.append(inspect.getdoc(module) or "")
        for attr, member in sorted(vars(module).items()):
            if not attr.startswith("_") and getattr(member, "__module__", None) == name:
                parts.append(inspect.getdoc(member) or "")
    return (
        "\n\n".join(p for p in parts if p),
        f"docstrings of Python {platform.python_version()} stdlib modules: {', '.join(STDLIB_MODULES)}",
    )


def load_text(cfg: Config, ctx) -> tuple[str, dict]:
    source = ctx.data
    if source == "auto":
        source = "real" if find_local(TEXTS[cfg.text], ctx.data_dir) else "embedded"
    if source == "real":
        path = locate(TEXTS[cfg.text], ctx.data_dir)
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        text, origin = stdlib_text()
    text = text[: cfg.max_chars] if cfg.max_chars else text
    return text, {
        "data_source": source,
        "data_origin": origin,
        "chars": len(text),
        "bytes": len(text.encode()),
    }


def median_seconds(repeats: int, work) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = work()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def speed(text: str, cfg: Config) -> dict[str, float]:
    """Our BPE against Hugging Face's on the whole text: training seconds, encoding MB/s, round trip."""
    train_s, ours = median_seconds(cfg.timing_repeats, lambda: BPETokenizer.train(text, cfg.vocab_size))

    def hf() -> None:
        tokenizer, trainer, _ = hf_recipe("bpe", cfg.vocab_size)
        tokenizer.train_from_iterator([text], trainer)

    hf_s, _ = median_seconds(cfg.timing_repeats, hf)

    def encode_cold() -> list[int]:
        ours.clear_cache()
        return ours.encode(text)

    encode_s, ids = median_seconds(cfg.timing_repeats, encode_cold)
    return {
        "bpe_train_seconds": train_s,
        "hf_bpe_train_seconds": hf_s,
        "bpe_encode_mb_per_s": len(text.encode()) / 1e6 / encode_s,
        "round_trip_exact": float(ours.decode(ids) == text),
    }


class TokenMLP(nn.Module):
    """L2's model on tokens: embed the previous `context` tokens, one tanh layer, logits."""

    def __init__(self, vocab: int, context: int, n_embd: int, n_hidden: int):
        super().__init__()
        self.wte = nn.Embedding(vocab, n_embd)
        self.net = nn.Sequential(nn.Linear(context * n_embd, n_hidden), nn.Tanh(), nn.Linear(n_hidden, vocab))

    def forward(self, x: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.net(self.wte(x).flatten(1))  # (B, context·C) -> (B, V)
        return logits, None if targets is None else F.cross_entropy(logits, targets)


def windows(ids: list[int], context: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.tensor(ids)
    x = t.unfold(0, context + 1, 1)  # (N, context + 1)
    return x[:, :-1], x[:, -1]


def lm_bits_per_byte(tok: BPETokenizer, train: str, val: str, cfg: Config, seed: int) -> tuple[float, float]:
    """Train the small LM for lm_steps on `tok`'s tokens; val loss in nats/token and bits/byte."""
    torch.manual_seed(seed)
    (xt, yt), (xv, yv) = windows(tok.encode(train), cfg.lm_context), windows(tok.encode(val), cfg.lm_context)
    model = TokenMLP(tok.vocab_size, cfg.lm_context, cfg.lm_embd, cfg.lm_hidden)
    optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lm_lr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(cfg.lm_steps):  # fit()'s loop without the bookkeeping: same budget for every size
        index = torch.randint(len(xt), (cfg.lm_batch,), generator=g)
        loss = model(xt[index], yt[index])[1]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        nats = model(xv, yv)[1].item()
    return nats, nats * len(yv) / math.log(2) / len(val[cfg.lm_context :].encode() or b"x")


def sweep(train: str, val: str, cfg: Config) -> list[dict[str, float]]:
    rows = []
    for size in cfg.sweep:
        tok = BPETokenizer.train(train, size)
        val_ids = tok.encode(val)
        nats, bpb = zip(*(lm_bits_per_byte(tok, train, val, cfg, s) for s in cfg.sweep_seeds))
        rows.append(
            {
                "vocab": tok.vocab_size,
                "bytes_per_token": len(val.encode()) / len(val_ids),
                "val_nats_per_token": statistics.mean(nats),
                "val_bits_per_byte": statistics.mean(bpb),
            }
        )
    return rows


def sweep_figure(rows: list[dict[str, float]]) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    vocab = [r["vocab"] for r in rows]
    axes[0].plot(vocab, [r["bytes_per_token"] for r in rows], marker="o")
    axes[0].set(xscale="log", xlabel="vocabulary size", ylabel="bytes per token (val)", title="compression")
    axes[1].plot(vocab, [r["val_bits_per_byte"] for r in rows], marker="o", color="tab:red")
    axes[1].set(
        xscale="log", xlabel="vocabulary size", ylabel="bits per byte (val)", title="small LM, fixed budget"
    )
    for ax in axes:
        ax.grid(alpha=0.3)
    return fig


def comparison_figure(rows: list[dict]) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    names = [r["tokenizer"] for r in rows]
    axes[0].barh(names, [r["tokens_per_char"] for r in rows])
    axes[0].set(xlabel="tokens per character (lower: more compression)")
    axes[1].barh(names, [r["train_seconds"] for r in rows], color="tab:orange")
    axes[1].set(xscale="log", xlabel="training seconds")
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    text, info = load_text(cfg, ctx)
    ctx.record_data(info)
    cut = int(0.9 * len(text))
    train, val = text[:cut], text[cut:]

    figures = speed(text, cfg)
    compare_train = train[: cfg.compare_chars]
    table = compare_tokenizers(compare_train, cfg.vocab_size, eval_text=val)
    rows = sweep(train, val, cfg)
    best = min(rows, key=lambda r: r["val_bits_per_byte"])

    ctx.figure("comparison", comparison_figure(table), "Eight tokenizers on one text")
    ctx.figure("vocab_sweep", sweep_figure(rows), "BPE vocabulary size: compression and LM loss")
    keys = list(table[0])
    ctx.section(
        f"Comparison (trained on {len(compare_train):,} characters, measured on {len(val):,} val characters)",
        markdown_table(keys, [[r[k] for k in keys] for r in table]),
    )
    ctx.section(
        "Vocabulary sweep (our BPE, GPT-4 split)",
        "| vocab | bytes/token | val nats/token | val bits/byte |\n|---|---|---|---|\n"
        + "\n".join(
            f"| {r['vocab']} | {r['bytes_per_token']:.3f} | {r['val_nats_per_token']:.3f} | "
            f"{r['val_bits_per_byte']:.3f} |"
            for r in rows
        )
        + f"\n\nRecommended: {best['vocab']} (lowest bits per byte after {cfg.lm_steps} steps of "
        f"{cfg.lm_batch} windows). Larger vocabularies compress more but each token is seen less often; "
        "with a bigger model or budget the best size moves up.",
    )
    ctx.section(
        "Speed",
        f"Our BPE trains to {cfg.vocab_size} on {info['bytes']:,} bytes in "
        f"{figures['bpe_train_seconds']:.3f} s "
        f"(Hugging Face: {figures['hf_bpe_train_seconds']:.3f} s, threads as configured), and encodes "
        f"{figures['bpe_encode_mb_per_s']:.2f} MB/s from a cold cache; median of {cfg.timing_repeats}.",
    )
    by_name = {r["tokenizer"]: r for r in table}
    return {
        **figures,
        "recommended_vocab": float(best["vocab"]),
        "best_val_bits_per_byte": best["val_bits_per_byte"],
        "ours_bpe_tokens_per_char": by_name["ours-bpe"]["tokens_per_char"],
        "hf_bpe_tokens_per_char": by_name["hf-bpe"]["tokens_per_char"],
        "bpe_vocab_jaccard": by_name["ours-bpe"]["vocab_jaccard"],
        "wordpiece_vocab_jaccard": by_name["ours-wordpiece"]["vocab_jaccard"],
        "unigram_vocab_jaccard": by_name["ours-unigram"]["vocab_jaccard"],
    }
