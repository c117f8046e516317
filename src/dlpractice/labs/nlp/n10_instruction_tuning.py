"""N10 · Instruction tuning: supervised fine-tuning (SFT) of a small base GPT to follow instructions.

The base is n9's pre-trained GPT (`--set base=RUN_ID`), a Hugging Face causal LM (`--set model=...`), or,
with neither, one pre-trained here on prose first (recipes/base_lm.py). Each record becomes the Alpaca
prompt followed by the response and an end-of-text token (data/prose.py). Variants, each a child run
from the same base weights: `full` (loss on the response only, padded batches, every weight trained),
`unmasked` (loss on the prompt too), `packed` (examples laid end to end in full rows: no padding, the
same number of epochs) and `lora` (low-rank adapters on every linear layer through `peft`, the rest
frozen; `lora_impl=ours` uses models/lora.py's LoRALinear). Scored on the 110 held-out records by
greedy decoding: ROUGE-L (metrics/rouge.py, equal to `rouge_score`'s) and exact match, against the base.
Simplified: packed rows let attention cross from one example into the next (no per-document mask); the
memory column counts the training state (weights, gradients, AdamW's two moments), not activations.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import torch
from torch import nn

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt
from dlpractice.data.batching import LengthBatches, TensorData, pad_rows
from dlpractice.data.prose import Instruction, alpaca_prompt, load_instructions, load_prose
from dlpractice.errors import DlpError
from dlpractice.metrics.rouge import exact_match, rouge_l
from dlpractice.models.lora import with_lora
from dlpractice.models.sampling import Request, complete_stream
from dlpractice.models.saved import load_run_model
from dlpractice.recipes.base_lm import (
    BaseConfig,
    BaseLM,
    Codec,
    get_base,
    gpt_from_files,
    load_hub,
    phase_config,
    save_gpt_files,
)
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import Predictor, ServingSpec
from dlpractice.train import fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab(
    "n10", requires=("n9",), data=("instruction-data",), metric="sft_rouge_l_gain", goal="max", bar=0.01
)
IGNORE = -100  # cross_entropy's ignore_index: positions that do not count in the loss
Variant = Literal["full", "unmasked", "packed", "lora"]


@dataclass
class Config(BaseConfig):
    """fit()'s knobs are the fine-tuning's; base_* pre-train a base when neither base nor model is set."""

    base: str = ""  # an n9 run id whose pre-trained GPT to start from
    model: str = ""  # or a Hugging Face causal LM (Hub id or directory)
    base_steps: PositiveInt = 1000  # as n9's full preset
    base_lr: PositiveFloat = 2e-3
    base_batch_size: PositiveInt = 12
    variants: tuple[Variant, ...] = ("full", "unmasked", "packed", "lora")
    lora_impl: Literal["peft", "ours"] = "peft"
    lora_rank: PositiveInt = 8
    lora_alpha: PositiveFloat = 16.0
    lora_lr: PositiveFloat = 3e-3  # adapters start at zero and learn faster at a higher rate
    max_new_tokens: PositiveInt = 64
    n_generated: PositiveInt = 1100  # embedded: generated records
    n_shown: NonNegativeInt = 6  # held-out generations in the report


PRESETS = {
    "smoke": {
        "base_steps": 30,
        "vocab_size": 300,
        "bpe_chars": 20_000,
        "block_size": 192,  # 300 tokens cut the Alpaca prompts into many
        "n_layer": 1,
        "n_head": 2,
        "n_embd": 32,
        "eval_iters": 2,
        "steps": 15,
        "batch_size": 8,
        "lr": 3e-3,
        "eval_every": 15,
        "log_every": 5,
        "max_new_tokens": 8,
        "n_generated": 200,
        "n_shown": 2,
    },
    "quick": {"base_steps": 400, "steps": 120, "batch_size": 16, "lr": 1e-3, "eval_every": 40},
    "full": {"steps": 180, "batch_size": 16, "lr": 1e-3, "warmup_steps": 20, "eval_every": 60},
}


def sft_example(
    prompt: list[int], response: list[int], mask_prompt: bool = True
) -> tuple[list[int], list[int]]:
    """(inputs, targets) for next-token training on prompt + response; with mask_prompt, the targets
    that are prompt tokens become IGNORE, so only the response (and its end token) is learnt."""
    # BEGIN EXERCISE n10.1: shift prompt + response by one; ignore the targets inside the prompt when masked
    ids = prompt + response
    inputs, targets = ids[:-1], ids[1:]
    if mask_prompt:
        targets = [IGNORE] * (len(prompt) - 1) + targets[len(prompt) - 1 :]
    return inputs, targets
    # END EXERCISE


def encode_split(
    records: list[Instruction], codec: Codec, block_size: int
) -> list[tuple[list[int], list[int]]]:
    """(prompt ids, response ids + end token) of each record whose training row fits in block_size."""
    pairs = [(codec.encode(alpaca_prompt(r)), codec.encode(r.output) + [codec.eot]) for r in records]
    pairs = [(p, r) for p, r in pairs if len(p) + len(r) - 1 <= block_size]
    if not pairs:
        raise DlpError(
            f"no instruction fits in the base's context of {block_size} tokens; use a larger block_size"
        )
    return pairs


def padded(pairs: list, mask: bool) -> tuple[tuple[torch.Tensor, ...], torch.Tensor]:
    """Examples padded to the longest: (inputs, targets) and their lengths."""
    rows = [sft_example(p, r, mask) for p, r in pairs]
    inputs, targets = pad_rows([x for x, _ in rows], 0), pad_rows([y for _, y in rows], IGNORE)
    return (inputs, targets), torch.tensor([len(x) for x, _ in rows])


class PackedBatches:
    """Training rows cut from all examples laid end to end (no padding); evaluation as padded batches."""

    def __init__(self, pairs: list, block_size: int, evaluation: LengthBatches):
        rows = [sft_example(p, r) for p, r in pairs]
        x = torch.tensor([t for x, _ in rows for t in x])
        y = torch.tensor([t for _, y in rows for t in y])
        n = len(x) // block_size * block_size
        self.rows = TensorData({"train": (x[:n].view(-1, block_size), y[:n].view(-1, block_size))})
        self.train_batch, self.eval_batches = self.rows.train_batch, evaluation.eval_batches


@torch.no_grad()
def greedy_responses(model: nn.Module, prompts: list[list[int]], eot: int, max_new: int) -> list[list[int]]:
    """Each prompt's greedy continuation up to its end token. Prompts sit left-aligned in one batch with
    padding on the right: a causal model's logits at a row's last real position never see the padding."""
    model.eval()
    room = model.block_size - max_new
    prompts = [p[-room:] for p in prompts]  # the prompt's tail when it and the answer would not fit
    lengths = torch.tensor([len(p) for p in prompts])
    ids = pad_rows([p + [eot] * max_new for p in prompts], eot)  # (B, longest + max_new)
    done = torch.zeros(len(prompts), dtype=torch.bool)
    rows = torch.arange(len(prompts))
    for step in range(max_new):
        position = lengths + step  # where each row's next token goes
        logits = model(ids[:, : int(position.max())])[0]  # (B, T, V)
        nxt = logits[rows, position - 1].argmax(-1)  # (B,)
        ids[rows, position] = torch.where(done, eot, nxt)
        done |= nxt == eot
        if done.all():
            break
    return [ids[i, n : n + max_new].tolist() for i, n in enumerate(lengths.tolist())]


def responses(
    model: nn.Module, codec: Codec, records: list[Instruction], max_new: int, chunk: int = 16
) -> list[str]:
    """Greedy answers, decoded up to the end token; prompts of similar length share a batch, which stops
    as soon as all of its rows have ended."""
    prompts = [codec.encode(alpaca_prompt(r)) for r in records]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[list[int]] = [[] for _ in prompts]
    for start in range(0, len(order), chunk):
        rows = order[start : start + chunk]
        for i, ids in zip(rows, greedy_responses(model, [prompts[i] for i in rows], codec.eot, max_new)):
            out[i] = ids[: ids.index(codec.eot)] if codec.eot in ids else ids
    return [codec.decode(ids).strip() for ids in out]


def scores(answers: list[str], records: list[Instruction]) -> dict[str, float]:
    n = len(records)
    return {
        "rouge_l": sum(rouge_l(r.output, a) for r, a in zip(records, answers)) / n,
        "exact_match": sum(exact_match(r.output, a) for r, a in zip(records, answers)) / n,
    }


def tune(base: BaseLM, variant: str, pairs: dict, cfg: Config, ctx: RunContext) -> tuple[nn.Module, dict]:
    """A copy of the base fine-tuned one way; its sizes, training time and throughput."""
    model = copy.deepcopy(base.model)
    val, val_lengths = padded(pairs["val"], variant != "unmasked")
    train, train_lengths = padded(pairs["train"], variant != "unmasked")
    data = LengthBatches({"train": train, "val": val}, {"train": train_lengths, "val": val_lengths})
    phase = phase_config(cfg, ckpt_every=10**9)
    if variant == "packed":  # the same epochs in fewer, fuller rows
        data = PackedBatches(pairs["train"], model.block_size, data)
        share = len(data.rows.splits["train"][0]) / len(train_lengths)
        phase = replace(phase, steps=max(1, round(cfg.steps * share)))
    if variant == "lora":
        model = with_lora(model, cfg.lora_rank, cfg.lora_alpha, cfg.lora_impl)
        phase = replace(phase, lr=cfg.lora_lr)
    result = fit(model, data, phase, ctx)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return model.to("cpu"), {
        "trainable_params": float(trainable),
        "train_state_mb": (4 * total + 12 * trainable) / 2**20,  # fp32 weights; grads + 2 AdamW moments
        "train_seconds": result.seconds,
        "steps": float(phase.steps),
        "tokens_per_second": result.targets_per_second,
        "best_val_loss": result.best_val,
    }


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    data = load_instructions(ctx.data, ctx.data_dir, cfg.n_generated)
    ctx.record_data(data.describe())
    warmup = cfg.base_steps // 10  # as n9's full preset
    pretrain = replace(
        cfg, steps=cfg.base_steps, lr=cfg.base_lr, batch_size=cfg.base_batch_size, warmup_steps=warmup
    )
    base = get_base(cfg.base, cfg.model, lambda: load_prose(ctx.data, ctx.data_dir)[0], pretrain, ctx)
    save_gpt_files(base, ctx.run_dir)  # for `dlp serve`
    block_size = base.model.block_size  # the base's context, whatever cfg.block_size says
    if cfg.max_new_tokens >= block_size:
        raise DlpError(
            f"max_new_tokens {cfg.max_new_tokens} leaves no room for a prompt in {block_size} tokens"
        )
    pairs = {s: encode_split(getattr(data, s), base.codec, block_size) for s in ("train", "val")}
    dropped = len(data.train) - len(pairs["train"])  # too long for the context: not trained on
    answers = {"base": responses(base.model, base.codec, data.test, cfg.max_new_tokens)}
    rows = {"base": scores(answers["base"], data.test) | {"trainable_params": 0.0}}
    for variant in cfg.variants:
        model, row = tune(base, variant, pairs, cfg, ctx.child(variant))
        answers[variant] = responses(model, base.codec, data.test, cfg.max_new_tokens)
        rows[variant] = scores(answers[variant], data.test) | row
    metrics = {f"{name}_{k}": v for name, row in rows.items() for k, v in row.items()}
    metrics["train_examples_dropped"] = float(dropped)
    first = cfg.variants[0] if cfg.variants else "base"
    metrics["sft_rouge_l_gain"] = rows[first]["rouge_l"] - rows["base"]["rouge_l"]
    if {"full", "lora"} <= rows.keys():
        metrics["lora_score_ratio"] = rows["lora"]["rouge_l"] / max(rows["full"]["rouge_l"], 1e-9)
        metrics["lora_param_share"] = rows["lora"]["trainable_params"] / rows["full"]["trainable_params"]
    report(rows, answers, data.test, cfg, ctx)
    return metrics


def scores_figure(rows: dict) -> plt.Figure:
    """Per model: held-out ROUGE-L and exact match; per fine-tune: trainable parameters and time."""
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.2))
    names = list(rows)
    for offset, key in ((-0.2, "rouge_l"), (0.2, "exact_match")):
        bars = axes[0].bar(
            [i + offset for i in range(len(names))], [rows[n][key] for n in names], 0.4, label=key
        )
        axes[0].bar_label(bars, fmt="%.2f", fontsize=7)
    axes[0].set(xticks=range(len(names)), xticklabels=names, title="held-out score (test split)")
    axes[0].legend(fontsize=8)
    tuned = names[1:]  # the base trains nothing
    for ax, key, title in (
        (axes[1], "trainable_params", "trainable parameters"),
        (axes[2], "train_seconds", "training time (s)"),
    ):
        bars = ax.bar(tuned, [rows[n][key] for n in tuned], color="tab:gray")
        ax.bar_label(bars, fmt="%.3g", fontsize=7)
        ax.set_title(title)
    axes[1].set_yscale("log")
    fig.tight_layout()
    return fig


def report(rows: dict, answers: dict, test: list[Instruction], cfg: Config, ctx: RunContext) -> None:
    header = ["model", "trainable params", "train state MB", "train s", "tokens/s", "ROUGE-L", "exact match"]
    body = [
        [
            name,
            f"{row['trainable_params']:,.0f}",
            f"{row.get('train_state_mb', 0):.1f}",
            f"{row.get('train_seconds', 0):.0f}",
            f"{row.get('tokens_per_second', 0):,.0f}",
            f"{row['rouge_l']:.3f}",
            f"{row['exact_match']:.1%}",
        ]
        for name, row in rows.items()
    ]
    ctx.section("Held-out scores (test split, greedy decoding)", markdown_table(header, body))
    ctx.figure("scores", scores_figure(rows), "Score, size and time of each fine-tune")

    def cell(text: str) -> str:
        return text.replace("|", "\\|").replace("\n", " ")[:90]

    shown = [
        [
            cell(r.instruction + (f" [{r.input}]" if r.input else "")),
            cell(r.output),
            *(cell(a[i]) for a in answers.values()),
        ]
        for i, r in enumerate(test[: cfg.n_shown])
    ]
    ctx.section("Held-out generations", markdown_table(["instruction [input]", "reference", *answers], shown))
    ctx.save_json("generations.json", {"test": [r.__dict__ for r in test], "answers": answers})


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: the first fully fine-tuned variant answers each prompt, read as an instruction."""
    variant = next((v for v in cfg.variants if v != "lora"), None)
    if variant is None:
        raise DlpError(f"run {run_dir.name} trained LoRA adapters only; serve a run with a full fine-tune")
    if cfg.model:
        base = load_hub(cfg.model, cfg.block_size)
    else:
        base = gpt_from_files(run_dir, f"run {run_dir.name}")
    model, codec = load_run_model(run_dir / variant, base.model), base.codec

    def predict(batch: list[dict]) -> list[dict]:
        prompts = [codec.encode(alpaca_prompt(Instruction(item["prompt"], "", ""))) for item in batch]
        requests = [Request(p, i["max_tokens"], i["temperature"], i["top_k"]) for p, i in zip(prompts, batch)]
        out = complete_stream(model, model.block_size, requests)
        answers = [
            codec.decode(ids[: ids.index(codec.eot)] if codec.eot in ids else ids).strip() for ids in out
        ]
        return [{"text": f"{item['prompt']}\n\n{a}"} for item, a in zip(batch, answers)]

    return Predictor(predict)


SERVING = ServingSpec(
    input="prompt",
    output="text",
    load=serve,
    examples=(
        "What is the capital of France?",
        "Convert 12 kilometers to meters.",
        "Give a synonym for 'fast'.",
    ),
    max_chars=500,
    max_tokens=100,
    defaults={"max_tokens": 64, "temperature": 0.3, "top_k": 20},
)
