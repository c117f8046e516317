"""N11 · Retrieval-augmented answers: find the passage, answer from it, and say so when there is none.

The corpus is the project's own lab articles and Python's language reference (data/docs_corpus.py), cut
into chunks three ways (fixed windows, sentences, heading-aware sections). Retrieval runs five ways:
dense (the packaged MiniLM sentence encoder, chunk vectors in a FAISS flat index, checked against
brute-force search), dense over sentences (each chunk's sentences embedded; a sentence hit stands for its
chunk), BM25 (ours, checked against rank_bm25), hybrid (reciprocal-rank fusion of BM25 and the sentence
ranking, the fusion constant chosen on validation questions), and the hybrid's candidates reranked by their
best sentence (max-sim with the same MiniLM: no cross-encoder ships offline).
The questions are fill-in-the-blanks made from corpus sentences, so each has a known source passage;
recall@k and MRR say how often and how high it is retrieved. The answer is extractive: the reranker's
best sentence, with its chunk cited. Questions made from sentences outside the corpus should get no
answer: the lab abstains below a reranker-score threshold chosen on validation questions, and counts
how often it answers those anyway (the hallucination rate). IVF and HNSW indexes show what approximate
search trades for speed. Simplified: no generator writes the answer; the "answer" is a retrieved sentence.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import NullFormatter

from dlpractice.config import Fraction, NonNegativeInt, PositiveInt
from dlpractice.data.docs_corpus import (
    STRATEGIES,
    Chunk,
    Document,
    Question,
    build_questions,
    chunk_corpus,
    describe,
    load_documents,
    relevant_chunks,
    split_questions,
    spread,
)
from dlpractice.metrics.retrieval import best_threshold, mean_reciprocal_rank, recall_at_k
from dlpractice.models.retriever import (
    Hit,
    PassageIndex,
    ann_sweep,
    embed,
    flat_against_brute_force,
    grounded_answer,
    hybrid,
    load_encoder,
    load_vectors,
    save_vectors,
)
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n11", requires=("n8",), data=("docs",), metric="hybrid_recall_at_5", goal="max")
METHODS = ("bm25", "dense", "dense_sentences", "hybrid", "hybrid_rerank")
SINGLE = METHODS[:3]  # what the hybrid must match or beat
KS = (1, 5, 10)
RRF_KS = (1, 3, 10, 30, 60)  # the fusion constants tried on validation questions


@dataclass
class Config:
    model: str = "minilm"  # the sentence encoder: the packaged MiniLM, a local directory or a Hub id
    chunking: Literal["fixed", "sentence", "heading"] = "heading"  # the index that answers and is served
    compare_chunking: bool = True  # also score the two other chunkings (dense, BM25, hybrid)
    chunk_words: PositiveInt = 120
    overlap_words: NonNegativeInt = 30  # fixed windows only
    n_docs: NonNegativeInt = 0  # keep n documents, evenly spread over the corpus (0: all)
    n_questions: PositiveInt = 300  # answerable
    n_unanswerable: PositiveInt = 100
    question_keep: Fraction = 0.75  # share of a sentence's other words a question keeps
    question_seed: NonNegativeInt = 0
    val_fraction: Fraction = 0.3  # of each kind of question: chooses the abstention threshold
    depth: PositiveInt = 20  # dense and BM25 hits fused; hybrid hits reranked
    rrf_k: NonNegativeInt = 0  # reciprocal-rank fusion constant (0: the best of RRF_KS on validation)
    ivf_cells: PositiveInt = 32
    hnsw_links: PositiveInt = 16
    batch_size: PositiveInt = 32


PRESETS = {
    "smoke": {"n_docs": 6, "n_questions": 12, "n_unanswerable": 6, "compare_chunking": False},
    "quick": {"n_docs": 30, "n_questions": 100, "n_unanswerable": 40, "compare_chunking": False},
    "full": {},  # ~5 CPU-minutes with one thread: three chunkings of the whole corpus through MiniLM
}


def search(
    index: PassageIndex, questions: list[Question], vectors: np.ndarray, depth: int, rrf_k: int
) -> dict:
    """Each method's ranked chunk ids per question, best first (`depth` of them); the hybrid fuses BM25
    with the sentence-level dense ranking (the better dense one here)."""
    ranked = {
        "bm25": index.lexical([q.text for q in questions], depth),
        "dense": index.dense(vectors, depth),
        "dense_sentences": index.dense_sentences(vectors, depth),
    }
    return ranked | {"hybrid": hybrid(ranked["dense_sentences"], ranked["bm25"], depth, rrf_k)}


def answer_hits(index: PassageIndex, questions: list[Question], vectors: np.ndarray, rrf_k: int, cfg) -> list:
    """The hybrid candidates of each question reranked by their best sentence (the first hit answers)."""
    fused = search(index, questions, vectors, cfg.depth, rrf_k)["hybrid"]
    return [index.rerank(v, r) for v, r in zip(vectors, fused, strict=True)]


def score_methods(
    index: PassageIndex, questions: list[Question], vectors: np.ndarray, rrf_k: int, cfg
) -> dict:
    """recall@k and MRR of each method, the reranker's too, on the answerable questions."""
    keep = [i for i, q in enumerate(questions) if q.answerable]
    questions, vectors = [questions[i] for i in keep], vectors[keep]
    ranked = search(index, questions, vectors, cfg.depth, rrf_k)
    hits = answer_hits(index, questions, vectors, rrf_k, cfg)
    ranked["hybrid_rerank"] = [[h.chunk for h in row] for row in hits]
    relevant = relevant_chunks(questions, index.chunks)
    table = {}
    for method, rows in ranked.items():
        table[method] = {f"recall_at_{k}": recall_at_k(rows, relevant, k) for k in KS}
        table[method]["mrr"] = mean_reciprocal_rank(rows, relevant)
    return table


def choose_rrf_k(index: PassageIndex, val: list[Question], vectors: np.ndarray, cfg: Config) -> dict:
    """Validation hybrid (recall@5, MRR) for each fusion constant of RRF_KS (or the configured one)."""
    keep = [i for i, q in enumerate(val) if q.answerable]
    val, vectors = [val[i] for i in keep], vectors[keep]
    relevant = relevant_chunks(val, index.chunks)
    dense, bm25 = index.dense_sentences(vectors, cfg.depth), index.lexical([q.text for q in val], cfg.depth)
    fused = {k: hybrid(dense, bm25, cfg.depth, k) for k in ([cfg.rrf_k] if cfg.rrf_k else RRF_KS)}
    return {k: (recall_at_k(r, relevant, 5), mean_reciprocal_rank(r, relevant)) for k, r in fused.items()}


def correct(hit: Hit, q: Question, index: PassageIndex) -> bool:
    """Grounded and right: the cited chunk holds the answer's span and the answer sentence its word."""
    return index.chunks[hit.chunk].holds(q.doc, q.start, q.end) and q.answer in hit.sentence


def abstention(
    index: PassageIndex, test: list[Question], tops: list[Hit], threshold: float
) -> dict[str, float]:
    """Hallucination rate (unanswerable questions answered) and grounded accuracy, with and without it."""
    answered_unanswerable = [
        t.score >= threshold for t, q in zip(tops, test, strict=True) if not q.answerable
    ]
    answerable = [(t, q) for t, q in zip(tops, test, strict=True) if q.answerable]
    return {
        "abstention_threshold": threshold,
        "hallucination_rate_without_abstention": 1.0 if answered_unanswerable else 0.0,  # all get an answer
        "hallucination_rate": float(np.mean(answered_unanswerable)),
        "answerable_abstained": float(np.mean([t.score < threshold for t, _ in answerable])),
        "grounded_accuracy_without_abstention": float(np.mean([correct(t, q, index) for t, q in answerable])),
        "grounded_accuracy": float(
            np.mean([t.score >= threshold and correct(t, q, index) for t, q in answerable])
        ),
    }


def strategies(cfg: Config) -> list[str]:
    """The main chunking first, then the two others when they are compared."""
    return [cfg.chunking] + [s for s in STRATEGIES if s != cfg.chunking and cfg.compare_chunking]


def run(cfg: Config, ctx: RunContext) -> dict[str, float]:
    started = time.perf_counter()
    docs, origin = load_documents()
    docs = spread(docs, cfg.n_docs)
    questions = build_questions(
        docs, cfg.n_questions, cfg.n_unanswerable, cfg.question_seed, cfg.question_keep
    )
    val, test = split_questions(questions, cfg.val_fraction)
    ctx.record_data(describe(docs, origin, val, test))
    encoder, cache = load_encoder(cfg.model), {}
    val_vectors, test_vectors = (embed(encoder, [q.text for q in qs], cfg.batch_size) for qs in (val, test))
    indexes = {s: None for s in strategies(cfg)}
    for strategy in indexes:  # the main chunking first: it chooses the fusion constant
        chunks = chunk_corpus(docs, strategy, cfg.chunk_words, cfg.overlap_words)
        indexes[strategy] = PassageIndex.build(docs, chunks, encoder, cfg.batch_size, cache)
    main = indexes[cfg.chunking]
    val_by_k = choose_rrf_k(main, val, val_vectors, cfg)
    rrf_k = max(val_by_k, key=lambda k: (*val_by_k[k], -k))  # best recall@5, then MRR, then the smallest
    tables = {s: score_methods(index, test, test_vectors, rrf_k, cfg) for s, index in indexes.items()}
    table = tables[cfg.chunking]
    metrics = {f"{m}_{name}": v for m, row in table.items() for name, v in row.items()}
    metrics |= {f"{s}_chunks": float(len(index.chunks)) for s, index in indexes.items()}
    metrics |= {f"{s}_{m}_recall_at_5": t[m]["recall_at_5"] for s, t in tables.items() for m in METHODS}
    metrics |= {"rrf_k": float(rrf_k)} | {
        f"val_hybrid_recall_at_5_rrf_k_{k}": v[0] for k, v in val_by_k.items()
    }
    best_single = max(table[m]["recall_at_5"] for m in SINGLE)
    metrics["hybrid_minus_best_single_recall_at_5"] = table["hybrid"]["recall_at_5"] - best_single
    queries = np.concatenate([val_vectors, test_vectors])
    checks = flat_against_brute_force(main.vectors, main.flat, queries)
    points = ann_sweep(main.vectors, queries, cfg.ivf_cells, cfg.hnsw_links)
    metrics |= checks
    for kind, knob, value, found, ms in points:
        metrics |= {f"{kind}_{knob}_{value}_recall_at_10": found, f"{kind}_{knob}_{value}_ms_per_query": ms}
    val_hits = answer_hits(main, val, val_vectors, rrf_k, cfg)
    test_hits = answer_hits(main, test, test_vectors, rrf_k, cfg)
    threshold = best_threshold([h[0].score for h in val_hits], [q.answerable for q in val])
    metrics |= abstention(main, test, [h[0] for h in test_hits], threshold)
    report(ctx, indexes, tables, points, checks["faiss_flat_ms_per_query"], test, test_hits, threshold)
    save_for_serving(ctx, main, threshold, rrf_k)
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


# ---- report -------------------------------------------------------------------------------------------


def methods_figure(table: dict[str, dict[str, float]]) -> plt.Figure:
    names = [f"recall_at_{k}" for k in KS] + ["mrr"]
    fig, ax = plt.subplots(figsize=(8, 3.5))
    width = 0.8 / len(table)
    for i, (method, row) in enumerate(table.items()):
        ax.bar(np.arange(len(names)) + i * width, [row[n] for n in names], width, label=method)
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, [n.replace("_at_", "@") for n in names])
    ax.set(ylim=(0, 1), ylabel="answerable test questions", title="Retrieval by method")
    ax.legend(fontsize=8)
    return fig


def ann_figure(points: list, flat_ms: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(6, 4))
    for kind in ("ivf", "hnsw"):
        row = [p for p in points if p[0] == kind]
        ax.plot([p[4] for p in row], [p[3] for p in row], "o-", label=f"{kind.upper()} ({row[0][1]})")
        for _, _, value, found, ms in row:
            ax.annotate(str(value), (ms, found), fontsize=7, textcoords="offset points", xytext=(3, -8))
    ax.axvline(flat_ms, color="grey", ls=":", label="flat (exact)")
    ax.set(xscale="log", xlabel="ms per query (one thread)", ylabel="recall@10 of the exact top 10")
    ax.xaxis.set_minor_formatter(NullFormatter())  # log-axis minor labels overlap on a narrow range
    ax.set_title("Approximate search: recall against speed")
    ax.legend(fontsize=8)
    return fig


def threshold_figure(tops: list[Hit], test: list[Question], threshold: float) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(7, 3.5))
    for answerable, label in ((True, "answerable"), (False, "unanswerable")):
        values = [t.score for t, q in zip(tops, test, strict=True) if q.answerable == answerable]
        ax.hist(values, bins=20, alpha=0.6, label=label)
    ax.axvline(threshold, color="black", ls="--", label=f"threshold {threshold:.3f} (validation)")
    ax.set(xlabel="best sentence cosine (reranker score)", ylabel="test questions", title="Abstention")
    ax.legend(fontsize=8)
    return fig


def answers_table(test: list[Question], hits: list[list[Hit]], threshold: float) -> str:
    pairs = list(zip(test, hits, strict=True))
    rows = []
    for q, row in pairs[:3] + pairs[-2:]:  # answerable questions come first, unanswerable last
        answer = row[0].sentence if row[0].score >= threshold else "(abstains)"
        cells = (q.text, q.answer or "(none in corpus)", answer[:160], f"{row[0].score:.3f}", row[0].chunk)
        rows.append(tuple(str(c).replace("|", "/").replace("\n", " ") for c in cells))
    return markdown_table(
        ("question", "blanked word", "answer (best sentence)", "score", "cites chunk"), rows
    )


def failures(
    test: list[Question], hits: list[list[Hit]], threshold: float, index: PassageIndex
) -> list[dict]:
    """Hallucinations (an unanswerable question answered) and wrong answers, the most confident first."""
    cases = []
    for q, row in zip(test, hits, strict=True):
        top, answered = row[0], row[0].score >= threshold
        if (answered and not q.answerable) or (q.answerable and not (answered and correct(top, q, index))):
            label, prediction = q.answer or "(unanswerable)", top.sentence if answered else "(abstained)"
            cases.append({"input": q.text, "label": label, "prediction": prediction, "confidence": top.score})
    return sorted(cases, key=lambda c: -c["confidence"])[:100]


def report(ctx, indexes: dict, tables: dict, points: list, flat_ms: float, test, hits, threshold) -> None:
    main = next(iter(tables))
    ctx.figure("methods", methods_figure(tables[main]), f"Retrieval by method ({main} chunks)")
    ctx.figure("ann", ann_figure(points, flat_ms), "IVF and HNSW: recall against speed")
    tops = [h[0] for h in hits]
    ctx.figure("abstention", threshold_figure(tops, test, threshold), "Reranker scores and the threshold")
    header = ("chunking", "chunks", "method", "recall@1", "recall@5", "recall@10", "MRR")
    names = ("recall_at_1", "recall_at_5", "recall_at_10", "mrr")
    rows = [
        (s, len(indexes[s].chunks), m, *(f"{r[k]:.3f}" for k in names))
        for s, t in tables.items()
        for m, r in t.items()
    ]
    ctx.section("Retrieval (answerable test questions)", markdown_table(header, rows))
    ann_rows = [(k.upper(), f"{knob}={v}", f"{found:.3f}", f"{ms:.4f}") for k, knob, v, found, ms in points]
    ctx.section("Approximate search", markdown_table(("index", "setting", "recall@10", "ms/query"), ann_rows))
    ctx.section("Answers (first and last test questions)", answers_table(test, hits, threshold))
    ctx.save_json(FAILURES, failures(test, hits, threshold, indexes[main]))


# ---- serving ------------------------------------------------------------------------------------------


def save_for_serving(ctx: RunContext, index: PassageIndex, threshold: float, rrf_k: int) -> None:
    """The main index: chunks, spans and sentences (JSON), both sets of vectors (safetensors), settings."""
    save_vectors(ctx.run_dir / "chunk_vectors.safetensors", index.vectors)
    save_vectors(ctx.run_dir / "sentence_vectors.safetensors", index.sentence_vectors)
    ctx.save_json(
        "index.json",
        {
            "threshold": threshold,
            "rrf_k": rrf_k,
            "docs": [{"name": d.name, "title": d.title} for d in index.docs],
            "chunks": [[c.doc, c.start, c.end, c.text] for c in index.chunks],
            "sentences": index.chunk_sentences,
        },
    )


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a question in, the best sentence and its sources out (or an abstention)."""
    saved = json.loads((run_dir / "index.json").read_text())
    docs = [Document(d["name"], d["title"], "") for d in saved["docs"]]
    chunks = [Chunk(*row) for row in saved["chunks"]]
    vectors = [load_vectors(run_dir / f"{name}_vectors.safetensors") for name in ("chunk", "sentence")]
    index = PassageIndex(docs, chunks, saved["sentences"], *vectors)
    encoder = load_encoder(cfg.model)

    def predict(batch: list[dict]) -> list[dict]:
        questions = [Question(item["text"], "", -1, -1, -1) for item in batch]
        hits = answer_hits(index, questions, embed(encoder, [q.text for q in questions]), saved["rrf_k"], cfg)
        return [grounded_answer(row, index, saved["threshold"]) for row in hits]

    return Predictor(predict)


SERVING = ServingSpec(
    input="text",
    output="answer",
    load=serve,
    examples=(
        "What does the assert statement do when optimization is requested?",
        "How does reciprocal rank fusion combine rankings?",
        "What is the boiling point of water on Mars?",
    ),
)
