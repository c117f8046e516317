"""N9 · Continued pre-training: a GPT pre-trained on English prose goes on to learn Python source.

Phase 1 pre-trains the base (recipes/base_lm.py: n2's byte-level BPE and l8's GPT, trained on prose);
`--set model=NAME_OR_PATH` starts instead from a Hugging Face causal LM (`from_pretrained`). Then each
variant continues from the same base weights on the new domain, code: plain (the whole batch is code),
with replay (a share of every batch is old prose: rehearsal) and with a lower learning rate. Each phase
is a child run. Perplexity is measured on both domains' held-out text before and after: the new domain's
drop is what continued pre-training buys, the old domain's rise is catastrophic forgetting.
Simplified: the tokenizer is the base's, learnt from prose only (code costs more tokens per character,
as a real LLM's tokenizer does on a language it rarely saw); perplexity is per token over fixed windows.
The base is what n10 fine-tunes: `dlp run n10 --set base=<this run's id>`.
Then the same question for an encoder (recipes/mlm_domain.py): n6's MiniLM, masked-LM training on movie
reviews (rt-polarity, or n6's generated sentences offline), with and without replay of prose; its adapted
encoder is saved for n6 (`--set model=<run dir>/minilm-adapted`). `mlm_steps=0` skips it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import (
    Fraction,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    UnitInterval,
)
from dlpractice.data.prose import Domain, ReplayStream, load_code, load_prose
from dlpractice.data.sentiment import load_sentences
from dlpractice.models.backbone import DEFAULT_BACKBONE
from dlpractice.models.gpt import generate
from dlpractice.recipes.base_lm import BaseConfig, BaseLM, get_base, perplexity, phase_config, token_stream
from dlpractice.recipes.mlm_domain import MLM_VARIANTS, MlmOptions, Texts, adapt_encoder, prose_pieces
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "n9",
    requires=("l8", "n2"),
    data=("python-stdlib", "tinyshakespeare", "the-verdict", "rt-polarity"),
    metric="code_ppl_drop",
    goal="max",
    bar=0.4,
)
VARIANTS = ("continued", "replay", "low_lr")
NAMES = {"continued": "continued", "replay": "continued + replay", "low_lr": "continued, lower rate"}


@dataclass
class Config(BaseConfig):
    """fit()'s knobs (steps, lr, ...) pre-train the base; cpt_* are the continued pre-training's."""

    model: str = ""  # a Hugging Face causal LM (Hub id or directory) to start from instead of pre-training
    cpt_steps: PositiveInt = 200
    cpt_lr: PositiveFloat = 1e-3
    cpt_warmup: NonNegativeInt = 30
    replay: UnitInterval = 0.25  # share of each batch drawn from the old domain in the replay variant
    low_lr_factor: Fraction = 0.1  # the lower-rate variant trains at cpt_lr times this
    sample_tokens: NonNegativeInt = 120  # a code sample from each model after the run; 0 skips it
    # the encoder: masked-LM adaptation to movie reviews (recipes/mlm_domain.py)
    mlm_model: str = DEFAULT_BACKBONE  # "minilm" (packaged), or a BERT-layout directory or Hub id
    mlm_steps: NonNegativeInt = 0  # updates per variant; 0 skips the encoder
    mlm_head_steps: PositiveInt = 100  # prose batches the masked-LM head is first fitted on, encoder frozen
    mlm_batch_size: PositiveInt = 16
    mlm_max_length: PositiveInt = 64  # sub-words
    mlm_lr: PositiveFloat = 5e-5
    mlm_eval_texts: PositiveInt = 256  # held-out texts of each domain


PRESETS = {
    "smoke": {
        "steps": 40,
        "batch_size": 8,
        "vocab_size": 300,
        "bpe_chars": 20_000,
        "block_size": 32,
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "lr": 3e-3,
        "eval_every": 20,
        "log_every": 10,
        "eval_iters": 2,
        "cpt_steps": 20,
        "cpt_lr": 3e-3,
        "cpt_warmup": 0,
        "sample_tokens": 20,
    },
    "quick": {
        "steps": 600,
        "batch_size": 12,
        "block_size": 64,
        "lr": 2e-3,
        "warmup_steps": 50,
        "weight_decay": 0.1,
        "eval_every": 200,
        "log_every": 20,
        "cpt_steps": 150,
        "cpt_lr": 1e-3,
        "mlm_steps": 40,
        "mlm_head_steps": 60,
        "mlm_eval_texts": 128,
    },
    "full": {  # about 2.4 M tokens of training in all
        "steps": 1000,
        "batch_size": 12,
        "lr": 2e-3,
        "warmup_steps": 100,
        "weight_decay": 0.1,
        "beta2": 0.99,
        "eval_every": 250,
        "log_every": 20,
        "ckpt_every": 500,
        "cpt_steps": 200,
        "cpt_lr": 1e-3,
        "cpt_warmup": 20,
        "mlm_steps": 200,
        "mlm_head_steps": 300,
    },
}


def continue_on(base: BaseLM, variant: str, streams: dict, cfg: Config, ctx: RunContext) -> tuple:
    """A copy of the base trained on code (with replay or a lower rate, by variant); (model, fit result)."""
    model = copy.deepcopy(base.model)
    replay = cfg.replay if variant == "replay" else 0.0
    lr = cfg.cpt_lr * (cfg.low_lr_factor if variant == "low_lr" else 1.0)
    phase = phase_config(cfg, steps=cfg.cpt_steps, lr=lr, warmup_steps=cfg.cpt_warmup, ckpt_every=10**9)
    result = fit(model, ReplayStream(streams["code"], streams["prose"], replay), phase, ctx)
    return model.to("cpu"), result


def change_figure(
    changes: dict[str, tuple[float, float]], domains: tuple[str, str], title: str, bar: float | None = None
) -> plt.Figure:
    """Per model: (new-domain perplexity drop, old-domain rise), as fractions of the starting model's."""
    x = np.arange(len(changes))
    fig, ax = plt.subplots(figsize=(6.5, 3.4))
    for offset, which, label in (
        (-0.2, 0, f"new domain ({domains[0]}): ppl drop"),
        (0.2, 1, f"old domain ({domains[1]}): ppl rise"),
    ):
        bars = ax.bar(x + offset, [100 * c[which] for c in changes.values()], width=0.4, label=label)
        ax.bar_label(bars, fmt="%.0f%%", fontsize=8)
    if bar is not None:  # the new domain's bar, as a percentage
        ax.axhline(100 * bar, color="grey", ls=":", lw=1)
    ax.set(xticks=x, xticklabels=list(changes), ylabel="% of the starting model's perplexity")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    return fig


def encoder_texts(prose: Domain, ctx: RunContext) -> tuple[Texts, Texts]:
    """The encoder's old domain (the prose, in pieces) and new one (the reviews n6 classifies)."""
    reviews = load_sentences(ctx.data, ctx.data_dir)
    ctx.data_info["mlm_reviews"] = f"{reviews.source}: {reviews.origin}"
    old = Texts(prose_pieces(prose.train), prose_pieces(prose.val))
    return old, Texts(reviews.texts["train"], reviews.texts["val"] + reviews.texts["test"])


def encoder_section(metrics: dict[str, float], ctx: RunContext) -> None:
    """The encoder's table and figure: masked-LM perplexity of both domains before and after."""
    names = {"base": "MiniLM, head fitted", "adapted": "adapted", "adapted_replay": "adapted + replay"}
    body = [[names["base"], *(f"{metrics[f'mlm_base_{d}_ppl']:.1f}" for d in ("old", "new")), "—", "—", "—"]]
    changes = {}
    for v in MLM_VARIANTS:
        drop, rise = metrics[f"mlm_{v}_new_ppl_drop"], metrics[f"mlm_{v}_old_ppl_rise"]
        cells = [f"{metrics[f'mlm_{v}_old_ppl']:.1f}", f"{metrics[f'mlm_{v}_new_ppl']:.1f}", f"{drop:.0%}"]
        body.append([names[v], *cells, f"{rise:+.0%}", f"{metrics[f'mlm_{v}_seconds']:.0f}"])
        changes[names[v]] = (drop, rise)
    header = ["encoder", "prose ppl", "reviews ppl", "reviews drop", "prose rise", "train s"]
    prose, reviews = metrics["mlm_raw_old_ppl"], metrics["mlm_raw_new_ppl"]
    raw = f"Before the head was fitted: prose {prose:.0f}, reviews {reviews:.0f}."
    ctx.section("Masked-LM perplexity of the encoder", markdown_table(header, body) + "\n\n" + raw)
    ctx.figure(
        "encoder",
        change_figure(changes, ("reviews", "prose"), "MiniLM adapted to reviews"),
        "The encoder: gain and forgetting",
    )


def code_sample(base: BaseLM, model: torch.nn.Module, n_tokens: int, seed: int) -> str:
    start = torch.tensor([base.codec.encode("def ")], dtype=torch.long)
    out = generate(
        model, start, n_tokens, temperature=0.8, top_k=50, generator=torch.Generator().manual_seed(seed)
    )
    return base.codec.decode(out[0].tolist())


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    prose, source = load_prose(ctx.data, ctx.data_dir)
    code = load_code()
    ctx.record_data(
        {
            "data_source": source,
            "data_origin": f"{prose.origin} | {code.origin}",
            "split": "90/10 by position",
        }
    )
    base = get_base("", cfg.model, lambda: prose, cfg, ctx)
    streams = {d.name: token_stream(base.codec, d, cfg, cfg.batch_size) for d in (prose, code)}
    before = {name: perplexity(base.model, s) for name, s in streams.items()}
    metrics = {f"base_{name}_ppl": ppl for name, ppl in before.items()}
    metrics["code_chars_per_token"] = len(code.val) / len(streams["code"].splits["val"])
    metrics["prose_chars_per_token"] = len(prose.val) / len(streams["prose"].splits["val"])
    rows, samples = (
        {},
        {"base": code_sample(base, base.model, cfg.sample_tokens, ctx.seed)} if cfg.sample_tokens else {},
    )
    for variant in VARIANTS:
        model, result = continue_on(base, variant, streams, cfg, ctx.child(variant))
        after = {name: perplexity(model, s) for name, s in streams.items()}
        rows[variant] = {
            "code_ppl": after["code"],
            "prose_ppl": after["prose"],
            "code_ppl_drop": 1 - after["code"] / before["code"],
            "prose_ppl_rise": after["prose"] / before["prose"] - 1,
            "train_seconds": result.seconds,
        }
        metrics |= {f"{variant}_{k}": v for k, v in rows[variant].items()}
        if cfg.sample_tokens:
            samples[variant] = code_sample(base, model, cfg.sample_tokens, ctx.seed)
    metrics["code_ppl_drop"] = rows["continued"]["code_ppl_drop"]
    forgetting = rows["continued"]["prose_ppl_rise"]
    if forgetting > 0:  # the remedy's bar: the share of plain continued training's forgetting replay leaves
        metrics["replay_rise_ratio"] = rows["replay"]["prose_ppl_rise"] / forgetting
    report(before, rows, samples, base, ctx)
    if cfg.mlm_steps:
        opts = MlmOptions(
            cfg.mlm_model,
            cfg.mlm_head_steps,
            cfg.mlm_steps,
            cfg.mlm_batch_size,
            cfg.mlm_max_length,
            cfg.mlm_lr,
            cfg.replay,
            cfg.mlm_eval_texts,
        )
        metrics |= adapt_encoder(opts, *encoder_texts(prose, ctx), ctx.child("encoder"))
        encoder_section(metrics, ctx)
    return metrics


def report(before: dict, rows: dict, samples: dict, base: BaseLM, ctx: RunContext) -> None:
    body = [["base (" + base.origin + ")", f"{before['prose']:.1f}", f"{before['code']:.1f}", "—", "—", "—"]]
    for variant, r in rows.items():
        cells = [f"{r['prose_ppl']:.1f}", f"{r['code_ppl']:.1f}", f"{r['code_ppl_drop']:.0%}"]
        body.append([NAMES[variant], *cells, f"{r['prose_ppl_rise']:+.0%}", f"{r['train_seconds']:.0f}"])
    header = ["model", "prose ppl", "code ppl", "code drop", "prose rise", "train s"]
    ctx.section("Perplexity before and after", markdown_table(header, body))
    changes = {NAMES[v]: (r["code_ppl_drop"], r["prose_ppl_rise"]) for v, r in rows.items()}
    figure = change_figure(
        changes, ("code", "prose"), "Continued pre-training: what is gained, what is forgotten"
    )
    ctx.figure("change", figure, "New-domain gain and old-domain forgetting")
    if samples:
        shown = "\n\n".join(f"**{NAMES.get(k, k)}**\n\n```\n{text}\n```" for k, text in samples.items())
        ctx.section("Samples (prompt `def `)", shown)
