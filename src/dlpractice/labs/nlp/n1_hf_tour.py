"""N1 · A tour of Hugging Face, offline: tokenizer, model, pipelines, datasets, Trainer, save, a local hub.

Every step prints what it produced into the report, in order:
1. `AutoTokenizer`: a sentence becomes word pieces and ids, a batch becomes padded tensors and masks.
2. `AutoModel`: the encoder's hidden states, mean-pooled into sentence vectors; their cosine similarities.
3. `pipeline("feature-extraction")`: the same vectors in one call (checked against step 2).
4. `datasets`: our sentences written to CSV files, loaded back with `load_dataset`, then `map`
   (tokenise), `filter` (too long), `train_test_split` and `set_format("torch")`.
5. `Trainer`: a classification head on the encoder, fine-tuned for a few hundred updates.
6. `save_pretrained` / `from_pretrained`: the fine-tuned model and tokenizer round-trip exactly.
7. A local hub: the model "pushed" into a folder laid out as the Hub's cache (refs/main -> a snapshot),
   then loaded back by its repository id with `local_files_only=True`, as an offline machine would.
8. `pipeline("text-classification")` on that model: labels and scores for new sentences, accuracy on
   held-out ones.
The encoder is the packaged MiniLM unless `--model NAME_OR_PATH`; the sentences are rt-polarity
(real) or the generated set of n6 (embedded). Nothing here touches the network.
Simplified: the local hub is a cache folder, not a server: no versions beyond `main`, no git history.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeInt, PositiveFloat, PositiveInt, Probability
from dlpractice.data.sentiment import LABELS, load_sentences
from dlpractice.models.backbone import DEFAULT_BACKBONE, load_pretrained
from dlpractice.models.finetune import tracker_callback, trainer_history, training_arguments
from dlpractice.registry import lab
from dlpractice.report import markdown_table

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n1", data=("rt-polarity",), metric="pipeline_accuracy", goal="max")
SENTENCES = [
    "a gripping, beautifully acted film.",
    "one of the most moving stories of the year.",
    "dull, predictable and far too long.",
    "the plot is a tedious mess.",
    "the train to paris leaves at noon.",
    "knead the dough and let it rise for an hour.",
]


@dataclass
class Config:
    model: str = DEFAULT_BACKBONE  # "minilm" (packaged), a local directory or a Hub id
    repo_id: str = "dlpractice/n1-sentiment"  # the name it gets on the local hub
    hub_dir: str = ""  # the local hub's folder; "" = <run dir>/hub
    max_length: PositiveInt = 64  # longer sentences are filtered out (step 4)
    train_sentences: NonNegativeInt = 4000  # taken from the training split (0: all of them)
    test_sentences: NonNegativeInt = 500
    steps: PositiveInt = 250
    batch_size: PositiveInt = 16
    lr: PositiveFloat = 5e-5
    warmup: Probability = 0.1  # share of the updates


PRESETS = {
    "smoke": {"train_sentences": 200, "test_sentences": 64, "steps": 6, "batch_size": 8, "max_length": 32},
    "quick": {"train_sentences": 1000, "test_sentences": 300, "steps": 60},
    "full": {},
}


def block(value) -> str:
    """A value as the report shows it: its repr in a code block."""
    return f"```\n{value}\n```"


def tour_tokenizer(tokenizer, ctx) -> dict[str, float]:
    encoded = tokenizer(SENTENCES[0])
    pieces = tokenizer.convert_ids_to_tokens(encoded["input_ids"])
    batch = tokenizer(SENTENCES[:3], padding=True, truncation=True, max_length=32, return_tensors="pt")
    ctx.section(
        "1 · AutoTokenizer",
        f"`{type(tokenizer).__name__}`, {len(tokenizer):,} pieces, special tokens "
        f"{tokenizer.all_special_tokens}.\n\n"
        + block(
            f"tokenizer({SENTENCES[0]!r})\npieces: {pieces}\nids: {encoded['input_ids']}\n"
            f"decode(ids): {tokenizer.decode(encoded['input_ids'])!r}"
        )
        + "\n\nA batch, padded to its longest sentence:\n"
        + block("\n".join(f"{k}: {tuple(v.shape)}\n{v}" for k, v in batch.items())),
    )
    return {"vocab_size": float(len(tokenizer)), "pieces_first_sentence": float(len(pieces))}


def mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, H) hidden states -> (B, H): the mean over real tokens (mask (B, T) is 1 on them)."""
    mask = mask[..., None].to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1)


def tour_model(tokenizer, ctx, cfg: Config) -> tuple[dict[str, float], np.ndarray]:
    from transformers import AutoModel, pipeline

    model = load_pretrained(AutoModel, cfg.model).eval()
    batch = tokenizer(SENTENCES, padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state  # (B, T, H)
    vectors = mean_pool(hidden, batch["attention_mask"])  # (B, H)
    unit = torch.nn.functional.normalize(vectors, dim=1)
    similarity = (unit @ unit.T).numpy()
    c = model.config
    ctx.section(
        "2 · AutoModel",
        f"`{type(model).__name__}`: {c.num_hidden_layers} layers, {c.hidden_size} wide, "
        f"{c.num_attention_heads} heads, {model.num_parameters():,} parameters.\n\n"
        + block(
            f"model(**batch).last_hidden_state.shape = {tuple(hidden.shape)}  # (sentences, pieces, width)\n"
            f"mean over real pieces -> {tuple(vectors.shape)}"
        ),
    )
    extractor = pipeline("feature-extraction", model=model, tokenizer=tokenizer)
    per_token = [np.array(out[0]) for out in extractor(SENTENCES)]  # each (T_i, H): no padding
    pooled = np.stack([tokens.mean(0) for tokens in per_token])
    gap = float(np.abs(pooled - vectors.numpy()).max())
    ctx.section(
        "3 · pipeline('feature-extraction')",
        block(
            f"extractor(sentences)[0]: {len(per_token[0])} pieces x {per_token[0].shape[1]} numbers\n"
            f"largest difference from step 2's mean-pooled vectors: {gap:.2e}"
        ),
    )
    return {"params": float(model.num_parameters()), "pipeline_vs_manual_max_diff": gap}, similarity


def similarity_figure(similarity: np.ndarray) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(8, 4.6), layout="constrained")  # room for the labels and the colour bar
    image = ax.imshow(similarity, cmap="viridis", vmin=min(0.0, similarity.min()), vmax=1)
    for (i, j), value in np.ndenumerate(similarity):
        ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7, color="w" if value < 0.6 else "k")
    names = [s if len(s) < 34 else s[:32] + "…" for s in SENTENCES]
    ax.set_yticks(range(len(names)), names, fontsize=7)
    ax.set_xticks(range(len(names)), [str(i + 1) for i in range(len(names))], fontsize=7)
    ax.set_title("Cosine similarity of mean-pooled sentence vectors", fontsize=9)
    fig.colorbar(image, ax=ax, shrink=0.8)
    return fig


def tour_datasets(data, tokenizer, cfg: Config, ctx, seed: int):
    """CSV files -> load_dataset -> map -> filter -> train_test_split -> set_format; each step's output."""
    from datasets import load_dataset

    folder = ctx.run_dir / "csv"
    folder.mkdir(exist_ok=True)
    files = {}
    for split, n in (("train", cfg.train_sentences), ("test", cfg.test_sentences)):
        texts, labels = data.texts[split], data.labels[split]
        n = n or len(texts)
        files[split] = str(folder / f"{split}.csv")
        lines = [
            "text,label",
            *(f'"{t.replace(chr(34), chr(34) * 2)}",{y}' for t, y in zip(texts[:n], labels[:n])),
        ]
        Path(files[split]).write_text("\n".join(lines) + "\n", encoding="utf-8")
    raw = load_dataset("csv", data_files=files, cache_dir=str(ctx.run_dir / "hf-cache"))
    tokenized = raw.map(lambda b: tokenizer(b["text"]), batched=True)
    tokenized = tokenized.map(lambda b: {"n_pieces": [len(ids) for ids in b["input_ids"]]}, batched=True)
    short = tokenized.filter(lambda row: row["n_pieces"] <= cfg.max_length)
    parts = short["train"].train_test_split(test_size=0.1, seed=seed)
    for split in parts.values():
        split.set_format("torch", columns=["input_ids", "attention_mask", "label"])
    row = {k: (type(v).__name__, tuple(v.shape)) for k, v in parts["train"][0].items()}
    kept = {split: f"{short[split].num_rows} of {tokenized[split].num_rows}" for split in files}
    steps = [
        f"load_dataset('csv', data_files=...)\n{raw}",
        f"first row: {raw['train'][0]}",
        f".map(tokenizer) -> columns {tokenized['train'].column_names}",
        f".filter(n_pieces <= {cfg.max_length}) -> rows kept: {kept}",
        f"train.train_test_split(test_size=0.1) -> {parts}",
        f".set_format('torch') -> row 0: {row}",
    ]
    ctx.section("4 · datasets", block("\n\n".join(steps)))
    lengths = np.array(list(tokenized["train"]["n_pieces"]))  # a column reads lazily: list() it
    return parts["train"], parts["test"], short["test"], lengths  # test: text and label, as written


def length_figure(lengths: np.ndarray, limit: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.hist(lengths, bins=range(0, int(lengths.max()) + 2), color="tab:blue")
    ax.axvline(limit + 0.5, color="tab:red", linestyle="--", label=f"filter: ≤ {limit} pieces")
    ax.set(xlabel="word pieces per sentence ([CLS] and [SEP] included)", ylabel="sentences")
    ax.set_title("Training sentences, after .map(tokenizer)", fontsize=9)
    ax.legend()
    return fig


def fine_tune(train, val, tokenizer, cfg: Config, ctx):
    from transformers import AutoModelForSequenceClassification, Trainer

    model = load_pretrained(
        AutoModelForSequenceClassification,
        cfg.model,
        num_labels=len(LABELS),
        id2label=dict(enumerate(LABELS)),
        label2id={name: i for i, name in enumerate(LABELS)},
    )
    args = training_arguments(  # the run's folder, seed and device (models/finetune.py), and these:
        ctx,
        max_steps=cfg.steps,
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=64,
        learning_rate=cfg.lr,
        warmup_steps=cfg.warmup,
        eval_strategy="no",
        save_strategy="no",
        logging_steps=max(1, cfg.steps // 20),
    )
    trainer = Trainer(
        model=model,
        args=args,
        train_dataset=train,
        eval_dataset=val,
        processing_class=tokenizer,  # its collator pads each batch
        callbacks=[tracker_callback(ctx.tracker)],
    )
    started = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - started
    val_loss = trainer.evaluate()["eval_loss"]
    history = trainer_history(trainer, val_loss)  # the training loss at each logging step, then val_loss
    ctx.loss_figure(history, "loss", "5 · Trainer: fine-tuning loss", ylabel="cross-entropy (nats/sentence)")
    ctx.section(
        "5 · Trainer",
        block(
            f"{cfg.steps} updates of {cfg.batch_size} sentences in {seconds:.0f} s; "
            f"validation loss {val_loss:.3f} (ln 2 = 0.693 is a coin toss)"
        ),
    )
    return model.eval(), {"train_seconds": seconds, "val_loss": val_loss}


def logits_of(model, tokenizer, texts: list[str]) -> torch.Tensor:
    with torch.no_grad():
        return model(**tokenizer(texts, padding=True, return_tensors="pt")).logits


def push_to_local_hub(folder: Path, hub: Path, repo_id: str) -> str:
    """Copy a saved model into the Hub's cache layout under `hub`; returns the snapshot's revision.

    models--{owner}--{name}/snapshots/{revision}/<files> holds the files, refs/main names the revision:
    what `from_pretrained(repo_id, cache_dir=hub)` reads when it may not go online.
    """
    digest = hashlib.sha1()
    for path in sorted(folder.iterdir()):
        digest.update(path.name.encode() + path.read_bytes())
    revision = digest.hexdigest()  # like a commit id: the same files give the same revision
    repo = hub / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / revision, dirs_exist_ok=True)
    (repo / "refs").mkdir(parents=True, exist_ok=True)
    (repo / "refs" / "main").write_text(revision)
    return revision


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    from huggingface_hub import scan_cache_dir
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

    data = load_sentences(ctx.data, ctx.data_dir)
    ctx.record_data(data.describe())
    tokenizer = load_pretrained(AutoTokenizer, cfg.model)
    metrics = tour_tokenizer(tokenizer, ctx)
    model_metrics, similarity = tour_model(tokenizer, ctx, cfg)
    metrics |= model_metrics
    ctx.figure("similarity", similarity_figure(similarity), "2 · Sentence similarity")
    train, val, test, lengths = tour_datasets(data, tokenizer, cfg, ctx, ctx.seed)
    ctx.figure("lengths", length_figure(lengths, cfg.max_length), "4 · Sentence lengths in word pieces")
    model, train_metrics = fine_tune(train, val, tokenizer, cfg, ctx)
    metrics |= train_metrics

    saved = ctx.run_dir / "model"
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    reloaded = AutoModelForSequenceClassification.from_pretrained(saved).eval()
    before = logits_of(model, tokenizer, SENTENCES)
    metrics["reload_max_abs_diff"] = float((logits_of(reloaded, tokenizer, SENTENCES) - before).abs().max())
    files = "\n".join(f"{p.name:28} {p.stat().st_size:>12,} bytes" for p in sorted(saved.iterdir()))
    ctx.section(
        "6 · save_pretrained / from_pretrained",
        block(f"{files}\nlargest logit difference after reloading: {metrics['reload_max_abs_diff']:.1e}"),
    )

    hub = Path(cfg.hub_dir) if cfg.hub_dir else ctx.run_dir / "hub"
    revision = push_to_local_hub(saved, hub, cfg.repo_id)
    options = {"cache_dir": str(hub), "local_files_only": True}
    hub_model = AutoModelForSequenceClassification.from_pretrained(cfg.repo_id, **options).eval()
    hub_tokenizer = AutoTokenizer.from_pretrained(cfg.repo_id, **options)
    metrics["hub_reload_max_abs_diff"] = float(
        (logits_of(hub_model, hub_tokenizer, SENTENCES) - before).abs().max()
    )
    repos = [
        f"{r.repo_id} ({r.repo_type}): {len(r.revisions)} revision, {r.size_on_disk:,} bytes"
        for r in scan_cache_dir(hub).repos
    ]
    ctx.section(
        "7 · A local hub",
        block(
            f"pushed to {hub} as {cfg.repo_id} @ {revision[:12]}\nscan_cache_dir(hub): {repos}\n"
            f"from_pretrained({cfg.repo_id!r}, cache_dir=hub, local_files_only=True): "
            f"largest logit difference {metrics['hub_reload_max_abs_diff']:.1e}"
        ),
    )

    classify = pipeline("text-classification", model=hub_model, tokenizer=hub_tokenizer)
    rows = [[text, out["label"], f"{out['score']:.3f}"] for text, out in zip(SENTENCES, classify(SENTENCES))]
    labels = list(test["label"])
    predicted = classify(list(test["text"]), batch_size=64)
    metrics["pipeline_accuracy"] = float(
        np.mean([LABELS.index(p["label"]) == y for p, y in zip(predicted, labels)])
    )
    ctx.section(
        "8 · pipeline('text-classification')",
        markdown_table(["sentence", "label", "score"], rows)
        + f"\n\nOn {len(labels)} held-out sentences: accuracy {metrics['pipeline_accuracy']:.1%}.",
    )
    return metrics
