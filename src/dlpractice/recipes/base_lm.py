"""The base language model the LLM-adaptation labs start from (n9 trains it, n10 and later take it).

A base is a causal LM that follows the project's contract, `logits, loss = model(ids, targets)`, with a
`block_size`, and a `Codec` that turns text into its token ids and back. Three ways to get one:
- `pretrain_base`: our GPT (models/gpt.py) with n2's byte-level BPE (tokenizers/bpe.py), both trained
  here on prose; it lands in the run's folder as model.safetensors, tokenizer.json and gpt.json.
- `load_base(RUN_ID)`: that folder of a finished n9 run (`--set base=RUN_ID`), read back from safetensors.
- `load_hub(NAME_OR_PATH)`: any Hugging Face causal LM (`AutoModelForCausalLM.from_pretrained`, a Hub id
  or a local directory) and its own tokenizer (`--set model=...`), wrapped to follow the same contract.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from dlpractice.config import PositiveInt, Probability, check_multiple
from dlpractice.data.prose import EOT, Domain
from dlpractice.data.shakespeare import TokenStream
from dlpractice.errors import DlpError
from dlpractice.home import runs_dir
from dlpractice.models.gpt import GPT, GPTConfig, lm_loss
from dlpractice.models.saved import load_run_model, read_run_json
from dlpractice.tokenizers import BPETokenizer
from dlpractice.train import FitConfig, FitResult, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

BASE_LAB = "n9"
PRETRAIN_DIR = "pretrain"  # the child run of an n9 run that holds the base model
TOKENIZER, SIZE = "tokenizer.json", "gpt.json"


@dataclass
class BaseConfig(FitConfig):
    """The base GPT's size and tokenizer; fit()'s knobs (steps, lr, ...) are its pre-training."""

    vocab_size: PositiveInt = 2048  # 256 bytes + merges + EOT
    bpe_chars: PositiveInt = 300_000  # the BPE learns its merges from this much of the prose
    block_size: PositiveInt = 128  # holds 92 % of instruction-data.json's records in n10
    n_layer: PositiveInt = 4
    n_head: PositiveInt = 4
    n_embd: PositiveInt = 128
    dropout: Probability = 0.0
    eval_iters: PositiveInt = 10  # batches of fixed random windows per perplexity estimate

    def check(self) -> None:
        check_multiple(self, "n_embd", of="n_head")  # each head gets n_embd / n_head channels


@dataclass(frozen=True)
class Codec:
    """Text <-> token ids for one model, and its end-of-text id (a response ends with it)."""

    encode: Callable[[str], list[int]]
    decode: Callable[[list[int]], str]
    eot: int
    vocab_size: int


@dataclass
class BaseLM:
    model: nn.Module  # logits, loss = model(ids, targets); has block_size
    codec: Codec
    origin: str  # what it is: "pretrained in run ...", "n9 run ...", "hub: gpt2"
    tokenizer: BPETokenizer | None = None  # ours (None for a Hub model, whose tokenizer is its own)


def bpe_codec(tokenizer: BPETokenizer) -> Codec:
    return Codec(tokenizer.encode, tokenizer.decode, tokenizer.special_tokens[EOT], tokenizer.vocab_size)


def gpt_size(cfg: BaseConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size,
        block_size=cfg.block_size,
        n_layer=cfg.n_layer,
        n_head=cfg.n_head,
        n_embd=cfg.n_embd,
        dropout=cfg.dropout,
    )


def token_stream(codec: Codec, domain: Domain, cfg: BaseConfig, batch_size: int) -> TokenStream:
    """A domain's train and val text as id streams; evaluation uses eval_iters fixed batches of windows."""
    splits = {s: torch.tensor(codec.encode(getattr(domain, s)), dtype=torch.long) for s in ("train", "val")}
    return TokenStream(splits, cfg.block_size, cfg.eval_iters, eval_batch_size=batch_size)


def perplexity(model: nn.Module, stream: TokenStream) -> float:
    """exp of the mean next-token loss on the stream's fixed validation windows."""
    return float(torch.tensor(evaluate(model, stream, "val")).exp())


def pretrain_base(prose: Domain, cfg: BaseConfig, ctx: RunContext) -> tuple[BaseLM, FitResult]:
    """Train the BPE on the prose, then the GPT on it; save both where `load_base` finds them."""
    tokenizer = BPETokenizer.train(prose.train[: cfg.bpe_chars], cfg.vocab_size, special_tokens=[EOT])
    codec = bpe_codec(tokenizer)
    torch.manual_seed(ctx.seed)
    base = BaseLM(GPT(gpt_size(cfg, codec.vocab_size)), codec, f"pretrained in run {ctx.run_id}", tokenizer)
    save_gpt_files(base, ctx.run_dir)
    result = fit(base.model, token_stream(codec, prose, cfg, cfg.batch_size), cfg, ctx)
    base.model.to("cpu")
    ctx.loss_figure(result.history, "pretrain_loss", "Pre-training of the base on prose")
    return base, result


def save_gpt_files(base: BaseLM, folder: Path) -> None:
    """Our GPT's size (gpt.json) and tokenizer (tokenizer.json): what rebuilds it around saved weights."""
    if base.tokenizer is not None:
        base.tokenizer.save(folder / TOKENIZER)
        (folder / SIZE).write_text(json.dumps(asdict(base.model.config), indent=1))


def gpt_from_files(folder: Path, origin: str) -> BaseLM:
    """A GPT of the saved size with its tokenizer; its weights still to be loaded (`load_run_model`)."""
    size = read_run_json(folder, SIZE)
    read_run_json(folder, TOKENIZER)  # the one-line error when it is missing or damaged
    tokenizer = BPETokenizer.load(folder / TOKENIZER)
    return BaseLM(GPT(GPTConfig(**size)), bpe_codec(tokenizer), origin, tokenizer)


def base_folder(run_id: str) -> Path:
    """The base model's folder in n9 run `run_id`; a one-line error when there is no such n9 run."""
    run_dir = runs_dir() / run_id
    if not run_id or "/" in run_id or not (run_dir / "run.json").is_file():
        raise DlpError(f"no run {run_id!r} in {runs_dir()}; train a base with `dlp run {BASE_LAB}` first")
    lab_id = read_run_json(run_dir, "run.json").get("lab")
    if lab_id != BASE_LAB:
        raise DlpError(
            f"run {run_id} is a run of lab {lab_id}, not {BASE_LAB}: pass an {BASE_LAB} run as base"
        )
    return run_dir / PRETRAIN_DIR


def load_base(run_id: str) -> BaseLM:
    """The GPT and tokenizer pre-trained by n9 run `run_id` (weights from safetensors, sizes from JSON)."""
    folder = base_folder(run_id)
    base = gpt_from_files(folder, f"n9 run {run_id}")
    load_run_model(folder, base.model)
    return base


class HubCausalLM(nn.Module):
    """A Hugging Face causal LM behind the project's contract: `logits, loss = model(ids, targets)`."""

    def __init__(self, hf: nn.Module, block_size: int):
        super().__init__()
        self.hf, self.block_size = hf, block_size

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        logits = self.hf(input_ids=idx).logits  # (B, T, V)
        return logits, lm_loss(logits, targets)


def load_hub(name_or_path: str, block_size: int) -> BaseLM:
    """`AutoModelForCausalLM.from_pretrained` and its tokenizer: a local directory or a Hub id."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        hf = AutoModelForCausalLM.from_pretrained(name_or_path)
    except (OSError, ValueError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DlpError(f"cannot load causal LM {name_or_path!r}: {first}") from None
    longest = getattr(hf.config, "max_position_embeddings", None) or getattr(
        hf.config, "n_positions", block_size
    )
    if tokenizer.eos_token_id is None:
        raise DlpError(f"the tokenizer of {name_or_path!r} has no end-of-text (eos) token")
    codec = Codec(
        lambda text: tokenizer.encode(text, add_special_tokens=False),
        lambda ids: tokenizer.decode(ids, skip_special_tokens=True),
        tokenizer.eos_token_id,
        len(tokenizer),
    )
    return BaseLM(HubCausalLM(hf, min(block_size, longest)), codec, f"hub: {name_or_path}")


def get_base(
    run_id: str, hub_model: str, prose: Callable[[], Domain], cfg: BaseConfig, ctx: RunContext
) -> BaseLM:
    """The base a lab asked for: an n9 run, a Hub model, or one pre-trained now in a child run."""
    if run_id and hub_model:
        raise DlpError("set either base (an n9 run) or model (a Hugging Face causal LM), not both")
    if run_id:
        return load_base(run_id)
    if hub_model:
        return load_hub(hub_model, cfg.block_size)
    return pretrain_base(prose(), cfg, ctx.child(PRETRAIN_DIR))[0]


def phase_config(cfg: FitConfig, **changes: object) -> FitConfig:
    """fit()'s knobs alone (a plain FitConfig), with `changes`: one phase's training settings."""
    fields = {k: getattr(cfg, k) for k in FitConfig.__dataclass_fields__}
    return replace(FitConfig(**fields), **changes)
