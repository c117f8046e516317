"""N3 · Attention and positional encodings: the pieces every transformer is built from.

The lab checks our scaled dot-product attention (with causal and padding masks) against
`torch.nn.functional.scaled_dot_product_attention`, and our multi-head attention against
`nn.MultiheadAttention` with the same weights copied in, on random inputs, in float32. It draws the
sinusoidal position matrix, shows that rotary scores depend only on the distance between positions,
draws the masks, and trains a toy model made of one cross-attention layer to reverse a sequence:
its attention map is the anti-diagonal it had to discover. The pieces live in `dlpractice.nn.attention`.
Simplified: the toy has no encoder layers, no feed-forward block and a fixed length.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.config import PositiveInt, Range, check_multiple, require
from dlpractice.data.batching import TensorData
from dlpractice.nn.attention import (
    MultiHeadAttention,
    RotaryEmbedding,
    causal_mask,
    padding_mask,
    scaled_dot_product_attention,
    sinusoidal_table,
)
from dlpractice.registry import lab
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n3", requires=("l2",), data=("generated",), metric="max_abs_diff_mha", bar=1e-5)


@dataclass
class Config(FitConfig):
    parity_trials: PositiveInt = 20  # random shapes and masks checked against PyTorch
    toy_len: PositiveInt = 8  # the toy reverses sequences of this many symbols
    toy_vocab: PositiveInt = 10
    toy_d_model: PositiveInt = 32
    toy_heads: PositiveInt = 1
    n_toy_train: PositiveInt = 20000
    pos_len: PositiveInt = 64  # rows of the position-encoding figure
    pos_dim: Annotated[int, Range(ge=2)] = 64

    def check(self) -> None:
        check_multiple(self, "toy_d_model", of="toy_heads")  # each head gets toy_d_model / toy_heads channels
        require(self.pos_dim % 2 == 0, f"pos_dim={self.pos_dim} must be even (RoPE rotates channel pairs)")


PRESETS = {
    "smoke": {
        "parity_trials": 5,
        "steps": 150,
        "batch_size": 64,
        "lr": 1e-2,
        "eval_every": 50,
        "log_every": 10,
    },
    "quick": {"steps": 600, "batch_size": 128, "lr": 1e-2, "eval_every": 100, "log_every": 20},
    "full": {"parity_trials": 100, "steps": 2000, "batch_size": 128, "lr": 5e-3, "eval_every": 200},
}


def parity(trials: int, generator: torch.Generator) -> dict[str, float]:
    """Largest absolute difference from PyTorch over random shapes, with padding and causal masks."""
    sdpa, mha = 0.0, 0.0
    for _ in range(trials):
        b, h, t, s, d = (int(torch.randint(1, 6, (1,), generator=generator)) for _ in range(5))
        q, k, v = (torch.randn(b, h, n, 4 * d, generator=generator) for n in (t, s, s))
        lengths = torch.randint(1, s + 1, (b,), generator=generator)
        mask = padding_mask(lengths, s)  # (B, 1, 1, S)
        expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        sdpa = max(sdpa, (scaled_dot_product_attention(q, k, v, mask)[0] - expected).abs().max().item())
        q = torch.randn(b, h, s, 4 * d, generator=generator)
        expected = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        sdpa = max(
            sdpa, (scaled_dot_product_attention(q, k, v, causal_mask(s))[0] - expected).abs().max().item()
        )

        theirs = nn.MultiheadAttention(h * 4 * d, h, batch_first=True).eval()
        ours = MultiHeadAttention(h * 4 * d, h).copy_from_torch(theirs).eval()
        x, memory = (
            torch.randn(b, t, h * 4 * d, generator=generator),
            torch.randn(b, s, h * 4 * d, generator=generator),
        )
        with torch.no_grad():
            expected = theirs(x, memory, memory, key_padding_mask=~mask[:, 0, 0], need_weights=False)[0]
            mha = max(mha, (ours(x, memory, mask) - expected).abs().max().item())
    return {"max_abs_diff_sdpa": sdpa, "max_abs_diff_mha": mha}


class ReverseToy(nn.Module):
    """One cross-attention layer: a learned query per output slot reads the embedded, positioned source."""

    def __init__(self, vocab: int, length: int, d_model: int, n_heads: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, d_model)
        self.register_buffer("positions", sinusoidal_table(length, d_model), persistent=False)
        self.slots = nn.Parameter(torch.randn(length, d_model) * 0.1)  # (T, C): one query per output
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.head = nn.Linear(d_model, vocab)

    def forward(self, src: torch.Tensor, targets: torch.Tensor | None = None):
        memory = self.embed(src) + self.positions  # (B, T, C)
        queries = (self.slots + self.positions).expand(len(src), -1, -1)  # (B, T, C)
        logits = self.head(self.attn(queries, memory))  # (B, T, V)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def toy_data(cfg: Config) -> TensorData:
    g = torch.Generator().manual_seed(0)  # the toy's data do not depend on the run's seed
    splits = {}
    for split, n in (("train", cfg.n_toy_train), ("val", 1000)):
        src = torch.randint(cfg.toy_vocab, (n, cfg.toy_len), generator=g)
        splits[split] = (src, src.flip(1))
    return TensorData(splits)


def position_figure(cfg: Config) -> plt.Figure:
    table = sinusoidal_table(cfg.pos_len, cfg.pos_dim)
    rope = RotaryEmbedding(cfg.pos_dim)
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(1, cfg.pos_dim, generator=g), torch.randn(1, cfg.pos_dim, generator=g)
    rq, rk = rope(q.expand(cfg.pos_len, -1)[None]), rope(k.expand(cfg.pos_len, -1)[None])  # (1, T, D)
    scores = (rq[0] @ rk[0].T).numpy()  # (T, T): query at m, key at n
    similarity = (table @ table.T).numpy()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    axes[0].imshow(table.numpy(), aspect="auto", cmap="RdBu")
    axes[0].set(title="sinusoidal encoding PE[p, i]", xlabel="dimension i", ylabel="position p")
    axes[1].imshow(similarity, cmap="viridis")
    axes[1].set(title="PE[p] · PE[p'] (depends on p - p')", xlabel="p'", ylabel="p")
    axes[2].imshow(scores, cmap="viridis")
    axes[2].set(title="rotary q_m · k_n: constant along diagonals", xlabel="key position n", ylabel="query m")
    return fig


def mask_figure() -> plt.Figure:
    fig, axes = plt.subplots(1, 3, figsize=(10, 3.4))
    combined = causal_mask(6) & padding_mask(torch.tensor([4]), 6)[0, 0]
    for ax, mask, title in zip(
        axes,
        (causal_mask(6), padding_mask(torch.tensor([4]), 6)[0, 0].expand(6, 6), combined),
        ("causal", "padding (length 4)", "causal & padding"),
    ):
        ax.imshow(mask.numpy(), cmap="Greys_r", vmin=0, vmax=1)
        ax.set(title=f"{title}: white = may attend", xlabel="key", ylabel="query")
    return fig


def attention_map_figure(weights: torch.Tensor, src: torch.Tensor) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.imshow(weights.numpy(), cmap="viridis")
    ax.set_xticks(range(len(src)), [str(t) for t in src.tolist()])
    ax.set(title="trained toy: cross-attention weights", xlabel="source token", ylabel="output slot")
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = toy_data(cfg)
    ctx.record_data(
        {
            "data_source": "embedded",
            "data_origin": "generated: random tensors and a reverse toy task",
            "toy_len": cfg.toy_len,
            "toy_vocab": cfg.toy_vocab,
        }
    )
    started = time.perf_counter()
    diffs = parity(cfg.parity_trials, torch.Generator().manual_seed(ctx.seed))
    parity_seconds = time.perf_counter() - started

    model = ReverseToy(cfg.toy_vocab, cfg.toy_len, cfg.toy_d_model, cfg.toy_heads)
    result = fit(model, data, cfg, ctx)
    model.eval()
    src, tgt = data.splits["val"]
    model.attn.keep_weights = True
    with torch.no_grad():
        logits, _ = model(src)
    accuracy = (logits.argmax(-1) == tgt).all(-1).float().mean().item()
    weights = model.attn.weights[0].mean(0)  # (T, T) of the first example, heads averaged
    anti_diagonal = weights.flip(1).diagonal().mean().item()  # attention mass on the mirrored position

    ctx.loss_figure(result.history)
    ctx.figure("positions", position_figure(cfg), "Sinusoidal and rotary position encodings")
    ctx.figure("masks", mask_figure(), "Causal and padding masks")
    ctx.figure("attention_map", attention_map_figure(weights, src[0]), "Attention map of the trained toy")
    ctx.section(
        "Parity with PyTorch",
        f"{cfg.parity_trials} random shapes with padding and causal masks, float32: largest difference "
        f"from `F.scaled_dot_product_attention` {diffs['max_abs_diff_sdpa']:.2e}, from "
        f"`nn.MultiheadAttention` (weights copied) {diffs['max_abs_diff_mha']:.2e}.",
    )
    ctx.section(
        "The toy",
        f"One cross-attention layer reverses {cfg.toy_len} symbols: {accuracy:.1%} of validation "
        f"sequences exactly right; on average {anti_diagonal:.1%} of each query's attention lands on the "
        "mirrored source position.",
    )
    return {
        **diffs,
        "parity_seconds": parity_seconds,
        "toy_exact_match": accuracy,
        "toy_anti_diagonal_mass": anti_diagonal,
        "val_loss": evaluate(model, data, "val"),
        "steps": float(result.step),
    }
