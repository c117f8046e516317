"""Fine-tuning helpers for the Hugging Face labs: layer-wise learning rates and domain adaptation.

- Layer-wise learning-rate decay (LLRD; Howard & Ruder 2018, "discriminative fine-tuning"; Clark et al.
  2020, ELECTRA): the head learns at the full rate, each encoder layer below it at `decay` times the
  rate of the layer above, the embeddings slowest. The lower layers hold the general features that
  pretraining paid for; a smaller step keeps them while the top adapts to the task.
- Re-initialising the top layers (Zhang et al. 2021, "Revisiting Few-sample BERT Fine-tuning"): the
  last encoder layers and the pooler start afresh. Pretraining shaped them for its own objective; the
  layers below carry what transfers.
- R-Drop (Liang et al. 2021): every batch goes through the model twice, under two dropout masks; the
  loss adds α times the symmetric KL divergence between the two predictions to their cross-entropy,
  which pulls the sub-networks dropout samples toward one answer.
- Domain-adaptive pretraining (Gururangan et al. 2020, "Don't Stop Pretraining"): a short masked-LM
  pass over the task's own training sentences before fine-tuning.

`fine_tune` puts them together for a sentence classifier (lab n6); `training_arguments` and
`trainer_history` connect any Hugging Face `Trainer` to our runs (n1, n6).
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import torch
import torch.nn.functional as F

from dlpractice.errors import DlpError
from dlpractice.models.backbone import load_pretrained

if TYPE_CHECKING:  # importing transformers takes seconds: only for the type checker
    from transformers import PretrainedConfig, Trainer, TrainerCallback, TrainingArguments

    from dlpractice.data.sentiment import Sentences
    from dlpractice.runner import RunContext
    from dlpractice.tracking import Tracker

LAYER = re.compile(r"\.layer\.(\d+)\.")  # BERT-style names: bert.encoder.layer.3.attention...


def layer_depth(name: str, n_layers: int) -> int:
    """0 for the embeddings, i + 1 for encoder layer i, n_layers + 1 for everything above (pooler, head)."""
    if "embeddings" in name:
        return 0
    match = LAYER.search(name)
    return int(match.group(1)) + 1 if match else n_layers + 1


def layerwise_groups(model: torch.nn.Module, lr: float, decay: float, weight_decay: float) -> list[dict]:
    """AdamW parameter groups: lr · decay^(n_layers + 1 − depth), no weight decay on biases and norms."""
    n_layers = model.config.num_hidden_layers
    groups: dict[tuple[int, bool], dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        depth = layer_depth(name, n_layers)
        decays = param.ndim > 1  # biases and LayerNorm weights are vectors: the Trainer skips them too
        group = groups.setdefault(
            (depth, decays),
            {"params": [], "lr": lr * decay ** (n_layers + 1 - depth), "weight_decay": weight_decay * decays},
        )
        group["params"].append(param)
    return [groups[key] for key in sorted(groups)]  # embeddings first, head last


def layerwise_optimizer(
    model: torch.nn.Module, lr: float, decay: float, weight_decay: float
) -> torch.optim.AdamW:
    """AdamW over `layerwise_groups`; the Trainer wraps it in its own warmup and linear decay."""
    return torch.optim.AdamW(layerwise_groups(model, lr, decay, weight_decay), lr=lr)


def check_reinit_layers(config: PretrainedConfig, n: int) -> None:
    """A one-line error, before any training, when the backbone has fewer than `n` layers to re-draw."""
    n_layers = getattr(config, "num_hidden_layers", None)
    if n and (n_layers is None or not 0 <= n <= n_layers):
        raise DlpError(f"ft_reinit_layers={n}: the backbone has {n_layers or 'no BERT-style'} encoder layers")


@torch.no_grad()
def reinit_top_layers(model: torch.nn.Module, n: int) -> None:
    """Draw the top `n` encoder layers and the pooler of a BERT-style model afresh, as BERT initialises
    them: linear weights N(0, initializer_range), biases 0, LayerNorms the identity. n = 0 changes nothing."""
    if n == 0:
        return
    base = model.base_model
    layers = getattr(getattr(base, "encoder", None), "layer", None)
    if layers is None or not 0 < n <= len(layers):
        raise DlpError(f"cannot re-initialise {n} layers of {type(base).__name__}: 1 to its layer count")
    pooler = base.pooler if getattr(base, "pooler", None) is not None else torch.nn.Identity()
    for module in [*layers[-n:].modules(), *pooler.modules()]:
        if isinstance(module, torch.nn.Linear):
            module.weight.normal_(0.0, model.config.initializer_range)
            module.bias.zero_()
        elif isinstance(module, torch.nn.LayerNorm):
            module.weight.fill_(1.0)
            module.bias.zero_()


def rdrop_trainer(alpha: float) -> type[Trainer]:
    """A `Trainer` whose training loss is R-Drop's, weight `alpha` on the KL term; evaluation as usual."""
    from transformers import Trainer  # here: importing transformers takes seconds

    class RDropTrainer(Trainer):
        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            if not model.training:
                return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            labels = inputs["labels"]  # (B,)
            twice = {k: torch.cat([v, v]) for k, v in inputs.items() if k != "labels"}  # (2B, T) each
            first, second = model(**twice).logits.chunk(2)  # (B, K) twice: two dropout masks
            cross_entropy = (F.cross_entropy(first, labels) + F.cross_entropy(second, labels)) / 2
            p, q = first.log_softmax(-1), second.log_softmax(-1)
            kl = F.kl_div(p, q, log_target=True, reduction="batchmean")  # KL(q || p)
            kl = (kl + F.kl_div(q, p, log_target=True, reduction="batchmean")) / 2
            loss = cross_entropy + alpha * kl
            return (loss, {"logits": first}) if return_outputs else loss

    return RDropTrainer


class MaskedPositionsOnly(torch.nn.Module):
    """A BERT masked LM's loss, with the vocabulary projection applied to the masked positions only.

    The same loss as `BertForMaskedLM(..., labels=labels).loss`, but the (384 x 30,522) output layer runs
    on the ~15 % of positions that count instead of all of them: measured here, it cost more than the
    encoder did.
    """

    def __init__(self, mlm: torch.nn.Module):
        super().__init__()
        self.mlm = mlm

    def forward(self, input_ids, attention_mask, labels, token_type_ids=None) -> dict:
        kwargs = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
        hidden = self.mlm.base_model(input_ids, **kwargs)[0]  # (B, T, D)
        keep = labels != -100  # (B, T): the masked (or kept, or swapped) 15 %
        logits = self.mlm.cls(hidden[keep])  # (M, V)
        return {"loss": torch.nn.functional.cross_entropy(logits, labels[keep])}


def adapt_to_domain(
    name_or_path: str, texts: list[str], ctx: RunContext, epochs: float, lr: float, max_length: int
) -> tuple[str, float]:
    """Masked-LM training (15 % of the sub-words) on `texts`; the adapted backbone's directory and seconds.

    The adapted backbone and its tokenizer are saved in ctx.run_dir/adapted.

    A checkpoint saved without its MLM head (as the packaged MiniLM is) gets a fresh transform layer;
    the output layer is tied to the word embeddings, so only that small layer starts from scratch.
    """
    from datasets import Dataset
    from transformers import (
        AutoModelForMaskedLM,
        AutoTokenizer,
        DataCollatorForLanguageModeling,
        Trainer,
    )

    tokenizer = load_pretrained(AutoTokenizer, name_or_path)
    model = load_pretrained(AutoModelForMaskedLM, name_or_path)  # (B, T, vocab) logits, its own loss
    dataset = Dataset.from_dict({"text": texts}).map(
        lambda b: tokenizer(
            b["text"], truncation=True, max_length=max_length, return_special_tokens_mask=True
        ),
        batched=True,
        remove_columns=["text"],
    )
    args = training_arguments(
        ctx,
        num_train_epochs=epochs,
        per_device_train_batch_size=32,
        learning_rate=lr,
        warmup_steps=0.1,
        weight_decay=0.01,
        save_strategy="no",
        logging_steps=20,
    )
    collator = DataCollatorForLanguageModeling(tokenizer, mlm_probability=0.15, seed=ctx.seed)
    trainer = Trainer(
        model=MaskedPositionsOnly(model) if hasattr(model, "cls") else model,
        args=args,
        train_dataset=dataset,
        data_collator=collator,
        callbacks=[tracker_callback(ctx.tracker)],
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    save_adapted_encoder(model, name_or_path, tokenizer, ctx.run_dir / "adapted")
    return str(ctx.run_dir / "adapted"), seconds


def save_adapted_encoder(mlm: torch.nn.Module, name_or_path: str, tokenizer: Any, directory: Path) -> None:
    """A masked LM's encoder saved under the original checkpoint's pooler (the masked LM has none, and a
    fresh one would be random), with its tokenizer: a directory any `--model` option takes."""
    from transformers import AutoModel

    encoder = load_pretrained(AutoModel, name_or_path)
    encoder.load_state_dict(mlm.base_model.state_dict(), strict=False)
    encoder.save_pretrained(directory)
    tokenizer.save_pretrained(directory)


class FineTuneOptions(Protocol):
    """What `fine_tune` reads from a lab's Config (n6's Config has these fields)."""

    max_length: int  # sub-word tokens a sentence keeps
    ft_epochs: float
    ft_steps: int  # > 0: stop after this many updates instead
    ft_batch_size: int
    ft_lr: float
    ft_warmup: float  # share of the updates
    ft_weight_decay: float
    ft_layer_decay: float  # < 1: layer-wise learning rates (`layerwise_optimizer`)
    ft_reinit_layers: int  # > 0: re-draw this many top layers (`reinit_top_layers`)
    ft_rdrop: float  # > 0: R-Drop with this weight (`rdrop_trainer`)
    log_every: int


def fine_tune(
    backbone: str, data: Sentences, cfg: FineTuneOptions, ctx: RunContext, save_to: Path
) -> dict[str, Any]:
    """Fine-tune a pretrained encoder with a new classification head on `data`, using `Trainer`.

    Keeps the epoch of the best validation accuracy and saves it (weights, config and tokenizer: a
    pipeline loads it) in `save_to`. Returns the val and test logits (N, C) in the splits' own order, the
    loss history, the parameter count and the training seconds.
    """
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, Trainer

    tokenizer = load_pretrained(AutoTokenizer, backbone)
    torch.manual_seed(ctx.seed)  # the new head's weights: from the seed, not from models trained before
    model = load_pretrained(
        AutoModelForSequenceClassification,
        backbone,
        num_labels=len(data.classes),
        id2label=dict(enumerate(data.classes)),
        label2id={name: i for i, name in enumerate(data.classes)},
    )
    reinit_top_layers(model, cfg.ft_reinit_layers)  # 0: none

    def encode(batch: dict) -> dict:  # no padding here: the Trainer's collator pads each batch
        return tokenizer(batch["text"], truncation=True, max_length=cfg.max_length)

    splits = {
        split: Dataset.from_dict({"text": texts, "label": data.labels[split]}).map(
            encode, batched=True, remove_columns=["text"]
        )
        for split, texts in data.texts.items()
    }
    args = training_arguments(
        ctx,
        num_train_epochs=cfg.ft_epochs,
        max_steps=cfg.ft_steps or -1,
        per_device_train_batch_size=cfg.ft_batch_size,
        per_device_eval_batch_size=128,
        learning_rate=cfg.ft_lr,
        warmup_steps=cfg.ft_warmup,
        weight_decay=cfg.ft_weight_decay,
        train_sampling_strategy="group_by_length",  # batches of similar length: little padding
        eval_strategy="epoch",  # and keep the epoch with the best val accuracy
        save_strategy="epoch",
        save_total_limit=1,
        load_best_model_at_end=True,
        metric_for_best_model="accuracy",
        logging_steps=max(1, cfg.log_every // 5),
    )
    optimizer = None  # the Trainer's own AdamW, one learning rate; or one rate per layer:
    if cfg.ft_layer_decay < 1:
        optimizer = layerwise_optimizer(model, cfg.ft_lr, cfg.ft_layer_decay, cfg.ft_weight_decay)
    trainer = (rdrop_trainer(cfg.ft_rdrop) if cfg.ft_rdrop > 0 else Trainer)(
        model=model,
        args=args,
        train_dataset=splits["train"],
        eval_dataset=splits["val"],
        compute_metrics=lambda p: {"accuracy": float((p.predictions.argmax(-1) == p.label_ids).mean())},
        processing_class=tokenizer,
        callbacks=[tracker_callback(ctx.tracker)],
        optimizers=(optimizer, None),  # the Trainer adds its warmup and linear decay to either
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    trainer.save_model(str(save_to))
    # group_by_length orders evaluation batches by length too, and predict() returns the rows in that
    # order: read them in each dataset's own order instead, so that row i is sentence i
    trainer.args.train_sampling_strategy = "sequential"
    val = trainer.predict(splits["val"])
    return {
        "val": [val.predictions],
        "test": [trainer.predict(splits["test"]).predictions],
        "history": trainer_history(trainer, val.metrics["test_loss"]),
        "params": model.num_parameters(),
        "seconds": seconds,
    }


def training_arguments(ctx: RunContext, **options: Any) -> TrainingArguments:
    """`TrainingArguments` for a Trainer inside one of our runs; `options` are the lab's own settings.

    From the run: the Trainer's files in run_dir/trainer, its seed, its device (bf16 on a GPU that has
    it), its progress bar; no reporting to outside services, since `tracker_callback` sends the logs to
    the run's tracker.
    """
    from transformers import TrainingArguments  # here: importing transformers takes seconds

    run = {
        "output_dir": str(ctx.run_dir / "trainer"),
        "report_to": "none",
        "seed": ctx.seed,
        "use_cpu": ctx.device == "cpu",
        "bf16": ctx.device == "cuda" and torch.cuda.is_bf16_supported(),
        "disable_tqdm": not ctx.progress.show,
    }
    return TrainingArguments(**(run | options))


def trainer_history(trainer: Trainer, val_loss: float) -> list[dict[str, float]]:
    """Our loss history from a Trainer's log: the training loss at each logging step, then `val_loss`."""
    logged = trainer.state.log_history
    history = [{"step": h["step"], "train_loss": h["loss"]} for h in logged if "loss" in h]
    return [*history, {"step": trainer.state.global_step, "val_loss": val_loss}]


def tracker_callback(tracker: Tracker) -> TrainerCallback:
    """A TrainerCallback that sends the Trainer's logs (loss, learning rate, grad norm) to our tracker."""
    from transformers import TrainerCallback  # here: importing transformers takes seconds

    class ToTracker(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            numbers = {k: float(v) for k, v in (logs or {}).items() if isinstance(v, int | float)}
            tracker.log_metrics(state.global_step, numbers)

    return ToTracker()
