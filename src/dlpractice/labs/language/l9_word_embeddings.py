"""L9 · Word embeddings: word2vec skip-gram with negative sampling, and GloVe, on the same words.

The text (tinyshakespeare, or the standard library's docstrings offline) is cut into lower-case words;
words seen fewer than `min_count` times are dropped. Skip-gram (models/word2vec.py) learns to tell the
words seen near a centre word (a dynamic window, frequent words subsampled) from `negatives` noise words;
GloVe (models/glove.py) fits dot products to the log of the distance-weighted co-occurrence counts.
Both train with fit(): skip-gram with plain SGD at the C code's rate (0.025 per pair, so 0.025 x batch
size on the batch's mean loss) decaying linearly, GloVe with Adam. The validation loss is the same loss
on the held-out 10 % of the text. Both are then asked the same questions: the nearest neighbours of probe
words, and analogies a : b :: c : ? by 3CosAdd (gender, pronouns, plurals, verb forms), every question
whose four words are in the vocabulary; the metric is skip-gram's top-1 analogy accuracy. With gensim
installed, gensim's own skip-gram, trained on the same sentences with the same settings for as many
passes as ours saw, is a third row. A t-SNE map shows the most frequent words of both models.
Simplified: minibatches of pairs instead of one pair at a time; Adam instead of GloVe's AdaGrad.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Annotated, Literal

import matplotlib.pyplot as plt
import numpy as np
import torch

from dlpractice.config import NonNegativeFloat, PositiveFloat, PositiveInt, Range, UnitInterval
from dlpractice.data.batching import TensorData
from dlpractice.data.shakespeare import load_corpus
from dlpractice.data.words import (
    SkipGramData,
    WordVocab,
    analogy_questions,
    cooccurrence,
    keep_probabilities,
    noise_distribution,
    sentences,
    skipgram_pairs,
    subsample,
)
from dlpractice.models.glove import GloVe
from dlpractice.models.word2vec import SkipGramNS, analogy, nearest
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.train import FitConfig, evaluate, fit

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("l9", requires=("l8",), data=("shakespeare",), metric="analogy_acc", goal="max")

PROBES = {
    "real": ("king", "love", "death", "thou", "good", "father", "blood", "night", "sweet", "heaven"),
    "embedded": ("file", "string", "list", "return", "error", "thread", "socket", "number", "true", "path"),
}


@dataclass
class Config(FitConfig):
    steps: PositiveInt = 3500  # skip-gram's updates; the FitConfig knobs below are skip-gram's
    batch_size: PositiveInt = 1024  # pairs
    optimizer: Literal["adamw", "sgd"] = "sgd"
    lr: PositiveFloat = 25.6  # word2vec's 0.025 per pair x 1024 pairs (the loss is their mean)
    momentum: UnitInterval = 0.0
    schedule: Literal["cosine", "linear", "constant"] = "linear"
    min_lr_ratio: UnitInterval = 0.004  # word2vec ends at 0.0001 = 0.025 x 0.004
    grad_clip: NonNegativeFloat = 0.0
    min_count: PositiveInt = 5  # rarer words are dropped
    dim: PositiveInt = 100
    window: PositiveInt = 5  # skip-gram: the largest reach of the dynamic window
    sample: NonNegativeFloat = 1e-3  # subsampling threshold t; 0 keeps every word
    negatives: PositiveInt = 5  # noise words per pair
    pair_passes: PositiveInt = 5  # subsampled passes over the training text pooled as skip-gram's pairs
    val_pairs: PositiveInt = 20_000  # held-out pairs scored by the validation loss
    glove_window: PositiveInt = 10
    x_max: PositiveFloat = 100.0
    alpha: NonNegativeFloat = 0.75
    glove_steps: PositiveInt = 3000
    glove_batch_size: PositiveInt = 1024  # non-zero entries of X
    glove_optimizer: Literal["adamw", "sgd"] = "adamw"
    glove_lr: PositiveFloat = 0.01
    compare_gensim: bool = True  # also train gensim's skip-gram on the same sentences, when installed
    tsne_words: Annotated[int, Range(ge=2)] = 200
    neighbours: PositiveInt = 5


PRESETS = {
    "smoke": {
        "steps": 300,
        "batch_size": 512,
        "lr": 12.8,
        "dim": 32,
        "pair_passes": 1,
        "val_pairs": 4000,
        "glove_steps": 300,
        "glove_batch_size": 512,
        "eval_every": 150,
        "log_every": 25,
        "tsne_words": 60,
    },
    "quick": {
        "steps": 2000,
        "dim": 64,
        "pair_passes": 3,
        "glove_steps": 2000,
        "eval_every": 500,
        "log_every": 50,
    },
    "full": {"steps": 3500, "glove_steps": 3000, "eval_every": 500, "log_every": 50},
}


def skipgram_data(ids, owner, val_ids, val_owner, vocab: WordVocab, cfg: Config, seed: int) -> SkipGramData:
    """Pairs from `pair_passes` subsampled draws of the training text; held-out pairs not subsampled."""
    rng = np.random.default_rng(seed)
    keep = keep_probabilities(vocab.counts, cfg.sample)
    passes = [
        skipgram_pairs(*subsample(ids, owner, keep, rng), cfg.window, rng) for _ in range(cfg.pair_passes)
    ]
    train = tuple(np.concatenate(side) for side in zip(*passes))
    val = skipgram_pairs(val_ids, val_owner, cfg.window, rng)
    chosen = rng.permutation(len(val[0]))[: cfg.val_pairs]
    return SkipGramData(train, tuple(v[chosen] for v in val), noise_distribution(vocab.counts), cfg.negatives)


def glove_data(ids, owner, val_ids, val_owner, vocab_size: int, window: int) -> TensorData:
    """The non-zero entries (row, col, count) of X for the training and the held-out text.

    The held-out text is ~9 times shorter: its counts are scaled by the ratio of the lengths, or GloVe,
    which predicts log counts, would be scored against values log 9 too low."""
    splits = {}
    for split, i, o, scale in (
        ("train", ids, owner, 1.0),
        ("val", val_ids, val_owner, len(ids) / len(val_ids)),
    ):
        x = cooccurrence(i, o, vocab_size, window)
        splits[split] = (
            torch.from_numpy(x.row),
            torch.from_numpy(x.col),
            torch.from_numpy(x.data * scale).float(),
        )
    return TensorData(splits)


def train(model: torch.nn.Module, data, cfg: Config, ctx) -> dict:
    started = time.perf_counter()
    initial = evaluate(model, data, "val")
    result = fit(model, data, cfg, ctx)
    model.to("cpu")
    return {
        "vectors": model.vectors(),
        "history": result.history,
        "seconds": time.perf_counter() - started,
        "val_loss": evaluate(model, data, "val"),
        "initial_loss": initial,
        "params": sum(p.numel() for p in model.parameters()),
    }


def train_gensim(
    sents: list[list[str]], vocab: WordVocab, cfg: Config, epochs: int, seed: int
) -> dict | None:
    """gensim's skip-gram (its C loop: SGD one pair at a time) with our settings, vectors in our order."""
    try:
        from gensim.models import Word2Vec
    except ImportError:
        return None
    started = time.perf_counter()
    model = Word2Vec(
        sents,
        vector_size=cfg.dim,
        window=cfg.window,
        min_count=cfg.min_count,
        sg=1,
        hs=0,
        negative=cfg.negatives,
        sample=cfg.sample,
        epochs=epochs,
        workers=1,
        seed=seed,
        hashfxn=lambda text: zlib.crc32(text.encode()),  # Python's own str hash changes per process
    )
    vectors = torch.from_numpy(np.stack([model.wv[w] for w in vocab.words]))
    seconds = time.perf_counter() - started
    return {"vectors": vectors, "seconds": seconds, "epochs": epochs, "params": 2 * vectors.numel()}


def analogy_scores(vectors: torch.Tensor, questions: list, vocab: WordVocab) -> dict[str, float]:
    """Top-1 and top-10 accuracy over every question, and top-1 per relation."""
    stoi = vocab.stoi
    a, b, c, d = (torch.tensor([stoi[q[k]] for q in questions]) for k in (1, 2, 3, 4))
    top = analogy(vectors, a, b, c, k=10)  # (N, 10)
    hit = top[:, 0] == d
    scores = {"top1": hit.float().mean().item(), "top10": (top == d[:, None]).any(1).float().mean().item()}
    for relation in dict.fromkeys(q[0] for q in questions):
        mine = torch.tensor([q[0] == relation for q in questions])
        scores[relation] = hit[mine].float().mean().item()
    return scores


def neighbours(vectors: torch.Tensor, probes: list[str], vocab: WordVocab, k: int) -> list[str]:
    """Each probe's k nearest words by cosine, as one comma-separated string."""
    ids, _ = nearest(vectors, torch.tensor([vocab.stoi[w] for w in probes]), k)
    return [", ".join(vocab.words[i] for i in row) for row in ids.tolist()]


def comparison_table(rows: dict[str, dict], relations: list[str], n_questions: int) -> str:
    head = ["model", "params", "train s", "val loss (start → end)", "analogy top-1", "top-10", *relations]
    cells = []
    for name, r in rows.items():
        s = r["analogies"]
        val = f"{r['initial_loss']:.3f} → {r['val_loss']:.3f}" if "val_loss" in r else "—"
        cells.append(
            [name, f"{r['params']:,}", f"{r['seconds']:.0f}", val, f"{s['top1']:.1%}", f"{s['top10']:.1%}"]
            + [f"{s[relation]:.1%}" for relation in relations]
        )
    note = (
        f"\n\n{n_questions} analogy questions (all four words in the vocabulary), answered by 3CosAdd with"
        " the question words excluded. GloVe's loss is a different loss from skip-gram's: compare each"
        " with its own start."
    )
    return markdown_table(head, cells) + note


def tsne_figure(rows: dict[str, dict], vocab: WordVocab, n: int, seed: int) -> plt.Figure:
    """t-SNE (scikit-learn) of the n most frequent words, one panel per model."""
    from sklearn.manifold import TSNE

    n = min(n, len(vocab))
    fig, axes = plt.subplots(1, len(rows), figsize=(7 * len(rows), 7))
    for ax, (name, r) in zip(axes, rows.items()):
        tsne = TSNE(2, perplexity=min(30.0, n / 4), init="pca", random_state=seed)
        xy = tsne.fit_transform(r["vectors"][:n].numpy())
        ax.scatter(xy[:, 0], xy[:, 1], s=4, color="tab:blue")
        for (x, y), word in zip(xy, vocab.words[:n]):
            ax.annotate(word, (x, y), fontsize=6, alpha=0.8)
        ax.set(title=f"{name}: the {n} most frequent words", xticks=[], yticks=[])
    return fig


def neighbours_figure(probes: list[str], rows: dict[str, dict]) -> plt.Figure:
    cells = [[word, *(r["neighbours"][i] for r in rows.values())] for i, word in enumerate(probes)]
    fig, ax = plt.subplots(figsize=(9, 0.25 * len(probes) + 0.4))
    ax.axis("off")
    widths = [0.12] + [0.88 / len(rows)] * len(rows)  # the table fills the axes: no empty band below
    table = ax.table(cells, colLabels=["word", *rows], colWidths=widths, bbox=(0, 0, 1, 1), cellLoc="left")
    table.auto_set_font_size(False)
    table.set_fontsize(8)
    return fig


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    corpus = load_corpus(ctx.data, ctx.data_dir)
    train_sents, val_sents = sentences(corpus.train), sentences(corpus.val)
    vocab = WordVocab.build(train_sents, cfg.min_count)
    ids, owner = vocab.encode(train_sents)
    val_ids, val_owner = vocab.encode(val_sents)
    ctx.record_data(corpus.describe() | {"n_train_words": len(ids), "vocab_size": len(vocab)})
    ctx.save_json("vocab.json", vocab.words)

    # 1. skip-gram with negative sampling, then GloVe, both through fit(); gensim's skip-gram beside them
    pairs = skipgram_data(ids, owner, val_ids, val_owner, vocab, cfg, ctx.seed)
    rows = {"skip-gram": train(SkipGramNS(len(vocab), cfg.dim), pairs, cfg, ctx)}
    torch.manual_seed(ctx.seed)
    counts = glove_data(ids, owner, val_ids, val_owner, len(vocab), cfg.glove_window)
    glove = GloVe(len(vocab), cfg.dim, cfg.x_max, cfg.alpha)
    glove_cfg = replace(
        cfg,
        steps=cfg.glove_steps,
        batch_size=cfg.glove_batch_size,
        optimizer=cfg.glove_optimizer,
        lr=cfg.glove_lr,
    )
    rows["GloVe"] = train(glove, counts, glove_cfg, ctx.child("glove"))
    passes_seen = cfg.steps * cfg.batch_size / (len(pairs.train[0]) / cfg.pair_passes)
    gensim = None
    if cfg.compare_gensim:
        gensim = train_gensim(train_sents, vocab, cfg, max(1, round(passes_seen)), ctx.seed)
    if gensim is not None:
        rows[f"gensim skip-gram, {gensim['epochs']} passes"] = gensim

    # 2. the same questions for every model
    questions = analogy_questions(vocab)
    probes = [w for w in PROBES.get(corpus.source, ()) if w in vocab] or vocab.words[50:60]
    for r in rows.values():
        r["analogies"] = analogy_scores(r["vectors"], questions, vocab)
        r["neighbours"] = neighbours(r["vectors"], probes, vocab, cfg.neighbours)
    relations = list(dict.fromkeys(q[0] for q in questions))

    ctx.loss_figure(rows["skip-gram"]["history"], "loss", "Skip-gram: negative sampling", ylabel="nats/pair")
    ctx.loss_figure(rows["GloVe"]["history"], "glove_loss", "GloVe: weighted squares", ylabel="loss/pair")
    ours = {name: rows[name] for name in ("skip-gram", "GloVe")}
    ctx.figure("tsne", tsne_figure(ours, vocab, cfg.tsne_words, ctx.seed), "t-SNE of the most frequent words")
    ctx.figure("neighbours", neighbours_figure(probes, ours), "Nearest neighbours by cosine")
    ctx.section("Comparison", comparison_table(rows, relations, len(questions)))
    neighbour_rows = [[word, *(r["neighbours"][i] for r in rows.values())] for i, word in enumerate(probes)]
    ctx.section("Nearest neighbours (cosine)", markdown_table(["word", *rows], neighbour_rows))

    sg, gl = rows["skip-gram"], rows["GloVe"]
    metrics = {
        "analogy_acc": sg["analogies"]["top1"],
        "analogy_top10": sg["analogies"]["top10"],
        "glove_analogy_acc": gl["analogies"]["top1"],
        "glove_analogy_top10": gl["analogies"]["top10"],
        "val_loss": sg["val_loss"],
        "initial_loss": sg["initial_loss"],
        "glove_val_loss": gl["val_loss"],
        "glove_initial_loss": gl["initial_loss"],
        "skipgram_seconds": sg["seconds"],
        "glove_seconds": gl["seconds"],
        "passes_seen": passes_seen,
        "analogy_questions": float(len(questions)),
        "vocab_size": float(len(vocab)),
        "train_words": float(len(ids)),
    }
    if gensim is not None:
        s = gensim["analogies"]
        metrics |= {
            "gensim_analogy_acc": s["top1"],
            "gensim_analogy_top10": s["top10"],
            "gensim_seconds": gensim["seconds"],
        }
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics
