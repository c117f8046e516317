"""n9's second model: masked-LM domain adaptation of a BERT encoder (n6's MiniLM) to movie reviews.

The same question as the GPT's continued pre-training, asked of an encoder: how much better does it
predict masked words of the new domain (n6's rt-polarity reviews) after more masked-LM training on them,
and how much worse on the old one (prose), with and without replaying old text?

The packaged MiniLM is an encoder saved without BERT's masked-LM head. The head's output layer is the word
embeddings (tied), but its transform layer would start random, and a perplexity measured through a random
layer says nothing about the encoder. So the head is first fitted with the encoder frozen, on the old
domain ("calibration"); that model is the baseline every variant starts from and is compared with.
Perplexity is exp of the mean cross-entropy over the masked sub-words of held-out texts, with the same
masks (seeded once) for every model. The adapted encoder is saved for n6: `--set model=<run>/minilm-adapted`.
"""

from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from dlpractice.errors import DlpError
from dlpractice.models.backbone import load_pretrained
from dlpractice.models.finetune import MaskedPositionsOnly, save_adapted_encoder

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

MLM_VARIANTS = ("adapted", "adapted_replay")
TEXT_CHARS = 300  # the old domain is cut into pieces about as long as a long review
HEAD_LR, HEAD_BATCH = 3e-3, 256  # the fresh head: a larger step than the encoder's; positions a step


@dataclass(frozen=True)
class MlmOptions:
    model: str
    head_steps: int  # batches of old-domain text (and updates) fitting the fresh head, encoder frozen
    steps: int  # masked-LM training of the whole model on the new domain (per variant)
    batch_size: int
    max_length: int  # sub-words
    lr: float
    replay: float  # share of each batch from the old domain, in the replay variant
    eval_texts: int  # held-out texts of each domain


@dataclass(frozen=True)
class Texts:
    train: list[str]
    val: list[str]


def prose_pieces(text: str, size: int = TEXT_CHARS) -> list[str]:
    """Prose cut at whitespace into pieces of about `size` characters (BERT takes short texts)."""
    words, pieces, piece = text.split(), [], []
    for word in words:
        piece.append(word)
        if sum(map(len, piece)) + len(piece) > size:
            pieces.append(" ".join(piece))
            piece = []
    return pieces


class MaskedBatches:
    """Texts as masked-LM batches: 15 % of the sub-words chosen (80 % [MASK], 10 % random, 10 % kept)."""

    def __init__(self, tokenizer: Any, max_length: int, seed: int):
        from transformers import DataCollatorForLanguageModeling

        self.tokenizer, self.max_length = tokenizer, max_length
        self.collate = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=seed)

    def __call__(self, texts: list[str]) -> dict[str, torch.Tensor]:
        encoded = self.tokenizer(texts, truncation=True, max_length=self.max_length)
        rows = [dict(zip(encoded, values)) for values in zip(*encoded.values())]
        return self.collate(rows)  # input_ids, attention_mask, (token_type_ids), labels: (B, T) each


def fixed_eval_batches(masking: MaskedBatches, texts: list[str], batch_size: int) -> list[dict]:
    """The held-out texts masked once: every model is scored on the same masked positions."""
    return [masking(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]


@torch.no_grad()
def masked_perplexity(model: MaskedPositionsOnly, batches: list[dict]) -> float:
    """exp(mean cross-entropy) over every masked sub-word of the batches."""
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        n = int((batch["labels"] != -100).sum())
        total += float(model(**batch)["loss"]) * n
        count += n
    return math.exp(total / count)


def train_masked_lm(
    model: MaskedPositionsOnly,
    params: list[torch.nn.Parameter],
    draw: Any,
    steps: int,
    lr: float,
    log: Any,
) -> float:
    """`steps` AdamW updates of `params` on batches from draw(); a tenth of warm-up, then linear decay.
    Returns seconds."""
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    warmup = max(1, steps // 10)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    model.train()
    started = time.perf_counter()
    for step in range(steps):
        loss = model(**draw())["loss"]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        log(step, loss.item())
    return time.perf_counter() - started


def fit_head(
    model: MaskedPositionsOnly,
    masking: MaskedBatches,
    texts: list[str],
    opts: MlmOptions,
    seed: int,
    log: Any,
) -> None:
    """Fit the masked-LM head's fresh parts (transform layer, output bias) on a frozen encoder: the encoder
    reads `head_steps` batches of old-domain text once, without gradients, and the head then trains on its
    outputs at the masked positions for as many minibatches (a tenth of the cost of training through it)."""
    predictions = model.mlm.cls.predictions
    draw = batch_drawer(masking, texts, texts, 0.0, opts, seed)
    hidden, labels = [], []
    with torch.no_grad():
        for _ in range(opts.head_steps):
            batch = draw()
            keep = batch["labels"] != -100  # (B, T)
            kwargs = {k: v for k, v in batch.items() if k != "labels"}
            hidden.append(model.mlm.base_model(**kwargs)[0][keep])  # (M, D)
            labels.append(batch["labels"][keep])
    hidden, labels = torch.cat(hidden), torch.cat(labels)  # (N, D), (N,)
    params = [*predictions.transform.parameters(), predictions.bias]
    optimizer = torch.optim.AdamW(params, lr=HEAD_LR)
    rows = torch.Generator().manual_seed(seed)
    for step in range(opts.head_steps):
        pick = torch.randint(len(labels), (HEAD_BATCH,), generator=rows)
        loss = torch.nn.functional.cross_entropy(predictions(hidden[pick]), labels[pick])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        log(step, loss.item())


def batch_drawer(
    masking: MaskedBatches, new: list[str], old: list[str], replay: float, opts: MlmOptions, seed: int
) -> Any:
    """A function giving the next training batch: `replay` of it old-domain texts, the rest new-domain."""
    rng = random.Random(seed)
    n_old = round(replay * opts.batch_size)

    def draw() -> dict[str, torch.Tensor]:
        return masking(rng.sample(new, opts.batch_size - n_old) + rng.sample(old, n_old))

    return draw


def adapt_encoder(opts: MlmOptions, old: Texts, new: Texts, ctx: RunContext) -> dict[str, float]:
    """Calibrate the head, then adapt with and without replay; perplexities of both domains, before and
    after, as metrics `mlm_*`. The plain variant's encoder is saved in ctx.run_dir/minilm-adapted."""
    from transformers import AutoTokenizer

    tokenizer = load_pretrained(AutoTokenizer, opts.model)
    base = MaskedPositionsOnly(masked_lm(opts.model))
    masking = MaskedBatches(tokenizer, opts.max_length, ctx.seed)
    held_out = {
        "new": fixed_eval_batches(masking, new.val[: opts.eval_texts], opts.batch_size),
        "old": fixed_eval_batches(masking, old.val[: opts.eval_texts], opts.batch_size),
    }

    def scores(model: MaskedPositionsOnly) -> dict[str, float]:
        return {domain: masked_perplexity(model, batches) for domain, batches in held_out.items()}

    metrics = {f"mlm_raw_{d}_ppl": p for d, p in scores(base).items()}  # the untrained transform layer
    with ctx.progress(total=opts.head_steps + len(MLM_VARIANTS) * opts.steps) as bar:
        done = 0

        def logger(name: str) -> Any:
            def log(step: int, loss: float) -> None:
                ctx.tracker.log_metrics(step, {f"mlm_{name}_loss": loss})
                bar.update(done + step + 1, loss=loss)

            return log

        started = time.perf_counter()
        fit_head(base, masking, old.train, opts, ctx.seed, logger("head"))
        metrics["mlm_head_seconds"] = time.perf_counter() - started
        done += opts.head_steps
        before = scores(base)
        metrics |= {f"mlm_base_{d}_ppl": p for d, p in before.items()}
        for variant in MLM_VARIANTS:
            model = copy.deepcopy(base)
            replay = opts.replay if variant == "adapted_replay" else 0.0
            draw = batch_drawer(masking, new.train, old.train, replay, opts, ctx.seed + 1)
            params = list(model.parameters())
            seconds = train_masked_lm(model, params, draw, opts.steps, opts.lr, logger(variant))
            done += opts.steps
            after = scores(model)
            metrics |= {
                f"mlm_{variant}_new_ppl": after["new"],
                f"mlm_{variant}_old_ppl": after["old"],
                f"mlm_{variant}_new_ppl_drop": 1 - after["new"] / before["new"],
                f"mlm_{variant}_old_ppl_rise": after["old"] / before["old"] - 1,
                f"mlm_{variant}_seconds": seconds,
            }
            if variant == "adapted":
                save_adapted_encoder(model.mlm, opts.model, tokenizer, ctx.run_dir / "minilm-adapted")
    return metrics


def masked_lm(name_or_path: str) -> torch.nn.Module:
    """A BERT-layout masked LM (its head `cls` fresh if the checkpoint has none), or a one-line error."""
    from transformers import AutoModelForMaskedLM

    wrong = f"mlm_model {name_or_path!r} is not a BERT-layout masked LM"
    try:
        model = load_pretrained(AutoModelForMaskedLM, name_or_path)
    except ValueError as error:  # transformers: a config class with no masked-LM model (a causal LM)
        raise DlpError(f"{wrong}: {str(error).splitlines()[0]}") from None
    if not hasattr(model, "cls"):
        raise DlpError(f"{wrong} (it has no `cls` head)")
    return model
