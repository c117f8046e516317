"""N11 · Retrieval-augmented answers: find the passage, answer from it, and say so when there is none.

The corpus is the project's own lab articles and Python's language reference (data/docs_corpus.py), cut
into chunks three ways (fixed windows, sentences, heading-aware sections). Retrieval runs four ways:
dense (the packaged MiniLM sentence encoder, vectors in a FAISS flat index, checked against brute-force
search), BM25 (ours, checked against rank_bm25), hybrid (reciprocal-rank fusion of the two), and hybrid
reranked by each chunk's best sentence (max-sim with the same MiniLM: no cross-encoder ships offline).
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

from dlpractice.config import Fraction, NonNegativeInt, PositiveInt
from dlpractice.data.docs_corpus import (
    STRATEGIES,
    Chunk,
    Document,
    Question,
    build_questions,
    chunk_corpus,
    load_documents,
    relevant_chunks,
)
from dlpractice.metrics.retrieval import mean_reciprocal_rank, recall_at_k
from dlpractice.models.retriever import (
    Hit,
    PassageIndex,
    ann_index,
    answer_text,
    brute_force,
    embed,
    hybrid,
    load_encoder,
    load_vectors,
    save_vectors,
    timed_search,
)
from dlpractice.registry import lab
from dlpractice.report import markdown_table
from dlpractice.serving import FAILURES, Predictor, ServingSpec

if TYPE_CHECKING:
    from dlpractice.runner import RunContext

LAB = lab("n11", requires=("n8",), data=("docs",), metric="hybrid_recall_at_5", goal="max")
METHODS = ("bm25", "dense", "hybrid", "hybrid+rerank")
KS = (1, 5, 10)


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
    rrf_k: PositiveInt = 60
    ivf_cells: PositiveInt = 32
    hnsw_links: PositiveInt = 16
    batch_size: PositiveInt = 32


PRESETS = {
    "smoke": {
        "n_docs": 12,
        "n_questions": 16,
        "n_unanswerable": 8,
        "compare_chunking": False,
        "ivf_cells": 4,
    },
    "quick": {
        "n_docs": 30,
        "n_questions": 100,
        "n_unanswerable": 40,
        "compare_chunking": False,
        "ivf_cells": 16,
    },
    "full": {},  # ~5 CPU-minutes with one thread: three chunkings of the whole corpus through MiniLM
}


def spread(docs: list[Document], n: int) -> list[Document]:
    """n documents at even steps over the list (both sources), or all of them when n is 0."""
    return docs if not n or n >= len(docs) else [docs[round(i * len(docs) / n)] for i in range(n)]


def split_questions(questions: list[Question], fraction: float) -> tuple[list[Question], list[Question]]:
    """Validation and test questions: `fraction` of the answerable and of the unanswerable ones each."""
    val, test = [], []
    for answerable in (True, False):
        group = [q for q in questions if q.answerable == answerable]
        cut = max(1, round(fraction * len(group)))
        val, test = val + group[:cut], test + group[cut:]
    return val, test


def search(index: PassageIndex, questions: list[Question], vectors: np.ndarray, cfg: Config) -> dict:
    """Each method's ranked chunk ids per question, best first (`depth` of them)."""
    dense = index.dense(vectors, cfg.depth)
    bm25 = index.lexical([q.text for q in questions], cfg.depth)
    return {"bm25": bm25, "dense": dense, "hybrid": hybrid(dense, bm25, cfg.depth, cfg.rrf_k)}


def answer_hits(
    index: PassageIndex, questions: list[Question], vectors: np.ndarray, cfg: Config
) -> list[list[Hit]]:
    """The hybrid candidates of each question reranked by their best sentence (the first hit answers)."""
    fused = search(index, questions, vectors, cfg)["hybrid"]
    index.sentence_vectors([s for r in fused for c in r for s in index.chunk_sentences[c]])  # one batch
    return [index.rerank(v, r) for v, r in zip(vectors, fused, strict=True)]


def score_methods(
    index: PassageIndex, questions: list[Question], vectors: np.ndarray, cfg: Config, rerank: bool
):
    """recall@k and MRR of each method (the reranker too when `rerank`) on the answerable questions."""
    keep = [i for i, q in enumerate(questions) if q.answerable]
    questions, vectors = [questions[i] for i in keep], vectors[keep]
    ranked = search(index, questions, vectors, cfg)
    if rerank:
        ranked["hybrid+rerank"] = [
            [h.chunk for h in row] for row in answer_hits(index, questions, vectors, cfg)
        ]
    relevant = relevant_chunks(questions, index.chunks)
    table = {}
    for method, rows in ranked.items():
        table[method] = {f"recall_at_{k}": recall_at_k(rows, relevant, k) for k in KS}
        table[method]["mrr"] = mean_reciprocal_rank(rows, relevant)
    return table


def faiss_checks(index: PassageIndex, queries: np.ndarray, cfg: Config) -> tuple[dict[str, float], list]:
    """Flat against brute force; IVF and HNSW recall@10 (of the exact top 10) and ms per query."""
    k = min(10, len(index.chunks))
    exact_scores, exact_ids = brute_force(index.vectors, queries, k)
    flat_ids, flat_ms = timed_search(index.flat, queries, k)
    flat_scores = index.flat.search(queries, k)[0]
    same = flat_ids == exact_ids
    tied = np.isclose(flat_scores, exact_scores, atol=1e-6, rtol=0)  # equal scores may swap places
    checks = {
        "faiss_flat_equals_brute_force": float(
            np.all(same | tied) and np.allclose(flat_scores, exact_scores, atol=1e-6)
        ),
        "faiss_flat_same_ids": float(same.mean()),
        "faiss_flat_max_score_diff": float(np.abs(flat_scores - exact_scores).max()),
        "faiss_flat_ms_per_query": flat_ms,
    }
    points = []
    for kind, size, knob, values in (
        ("ivf", min(cfg.ivf_cells, len(index.chunks) // 4 or 1), "nprobe", (1, 2, 4, 8, 16, 32)),
        ("hnsw", cfg.hnsw_links, "efSearch", (4, 8, 16, 32, 64, 128)),
    ):
        ann = ann_index(index.vectors, kind, size)
        for value in values:
            if kind == "ivf":
                ann.nprobe = min(value, size)
            else:
                ann.hnsw.efSearch = value
            ids, ms = timed_search(ann, queries, k)
            found = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids, strict=True)])
            points.append((kind, knob, value, float(found), ms))
    return checks, points


def choose_threshold(hits: list[Hit], answerable: list[bool]) -> float:
    """The score cut that makes the most right calls (answer the answerable, abstain on the rest)."""
    values = sorted({h.score for h in hits})
    cuts = [values[0] - 1e-6] + [(a + b) / 2 for a, b in zip(values, values[1:])] + [values[-1] + 1e-6]
    right = [sum((h.score >= t) == a for h, a in zip(hits, answerable, strict=True)) for t in cuts]
    return cuts[int(np.argmax(right))]


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
    encoder = load_encoder(cfg.model)
    val_vectors, test_vectors = (embed(encoder, [q.text for q in qs], cfg.batch_size) for qs in (val, test))
    tables, sizes = {}, {}
    for strategy in strategies(cfg):
        chunks = chunk_corpus(docs, strategy, cfg.chunk_words, cfg.overlap_words)
        index = PassageIndex.build(docs, chunks, encoder, cfg.batch_size)
        tables[strategy] = score_methods(index, test, test_vectors, cfg, rerank=strategy == cfg.chunking)
        sizes[strategy] = len(chunks)
        if strategy == cfg.chunking:
            main = index
    table = tables[cfg.chunking]
    metrics = {f"{m.replace('+', '_')}_{name}": v for m, row in table.items() for name, v in row.items()}
    metrics |= {f"{s}_chunks": float(n) for s, n in sizes.items()}
    metrics |= {f"{s}_{m}_recall_at_5": t[m]["recall_at_5"] for s, t in tables.items() for m in METHODS[:3]}
    best_single = max(table["bm25"]["recall_at_5"], table["dense"]["recall_at_5"])
    metrics["hybrid_minus_best_single_recall_at_5"] = table["hybrid"]["recall_at_5"] - best_single
    checks, points = faiss_checks(main, np.concatenate([val_vectors, test_vectors]), cfg)
    metrics |= checks
    for kind, knob, value, found, ms in points:
        metrics |= {f"{kind}_{knob}_{value}_recall_at_10": found, f"{kind}_{knob}_{value}_ms_per_query": ms}
    val_hits = answer_hits(main, val, val_vectors, cfg)
    test_hits = answer_hits(main, test, test_vectors, cfg)
    threshold = choose_threshold([h[0] for h in val_hits], [q.answerable for q in val])
    metrics |= abstention(main, test, [h[0] for h in test_hits], threshold)
    report(ctx, tables, sizes, points, checks["faiss_flat_ms_per_query"], test, test_hits, threshold, main)
    save_for_serving(ctx, main, threshold)
    metrics["wall_seconds"] = time.perf_counter() - started
    return metrics


def describe(docs: list[Document], origin: str, val: list[Question], test: list[Question]) -> dict:
    return {
        "data_source": "embedded",
        "data_origin": origin,
        "documents": len(docs),
        "characters": sum(len(d.text) for d in docs),
        "val_questions": len(val),
        "test_questions": len(test),
        "test_unanswerable": sum(not q.answerable for q in test),
    }


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


def answers_table(test: list[Question], hits: list[list[Hit]], threshold: float, index: PassageIndex) -> str:
    rows = []
    for q, row in list(zip(test, hits, strict=True))[:3] + list(zip(test, hits, strict=True))[-2:]:
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
            cases.append(
                {
                    "input": q.text,
                    "label": q.answer if q.answerable else "(unanswerable)",
                    "prediction": top.sentence if answered else "(abstained)",
                    "confidence": round(top.score, 4),
                }
            )
    return sorted(cases, key=lambda c: -c["confidence"])[:100]


def report(ctx, tables, sizes, points, flat_ms, test, hits, threshold, index) -> None:
    main = next(iter(tables))
    ctx.figure("methods", methods_figure(tables[main]), f"Retrieval by method ({main} chunks)")
    ctx.figure("ann", ann_figure(points, flat_ms), "IVF and HNSW: recall against speed")
    tops = [h[0] for h in hits]
    ctx.figure("abstention", threshold_figure(tops, test, threshold), "Reranker scores and the threshold")
    header = ("chunking", "chunks", "method", "recall@1", "recall@5", "recall@10", "MRR")
    rows = [
        (s, sizes[s], m, *(f"{r[k]:.3f}" for k in ("recall_at_1", "recall_at_5", "recall_at_10", "mrr")))
        for s, t in tables.items()
        for m, r in t.items()
    ]
    ctx.section("Retrieval (answerable test questions)", markdown_table(header, rows))
    ann_rows = [(k.upper(), f"{knob}={v}", f"{found:.3f}", f"{ms:.3f}") for k, knob, v, found, ms in points]
    ctx.section("Approximate search", markdown_table(("index", "setting", "recall@10", "ms/query"), ann_rows))
    ctx.section("Answers (first and last test questions)", answers_table(test, hits, threshold, index))
    ctx.save_json(FAILURES, failures(test, hits, threshold, index))


# ---- serving ------------------------------------------------------------------------------------------


def save_for_serving(ctx: RunContext, index: PassageIndex, threshold: float) -> None:
    """The main index: chunk texts, spans and sentences (JSON), vectors (safetensors), the threshold."""
    save_vectors(ctx.run_dir / "chunk_vectors.safetensors", index.vectors)
    ctx.save_json(
        "index.json",
        {
            "threshold": threshold,
            "docs": [{"name": d.name, "title": d.title} for d in index.docs],
            "chunks": [[c.doc, c.start, c.end, c.text] for c in index.chunks],
            "sentences": index.chunk_sentences,
        },
    )


def serve(run_dir: Path, cfg: Config) -> Predictor:
    """`dlp serve`: a question in, the best sentence and its source out (or an abstention)."""
    saved = json.loads((run_dir / "index.json").read_text())
    docs = [Document(d["name"], d["title"], "") for d in saved["docs"]]
    chunks = [Chunk(*row) for row in saved["chunks"]]
    encoder = load_encoder(cfg.model)
    vectors = load_vectors(run_dir / "chunk_vectors.safetensors")
    index = PassageIndex(docs, chunks, saved["sentences"], vectors, encoder)

    def predict(batch: list[dict]) -> list[dict]:
        questions = [Question(item["text"], "", -1, -1, -1) for item in batch]
        hits = answer_hits(index, questions, embed(encoder, [q.text for q in questions]), cfg)
        return [{"text": answer_text(row[0] if row else None, index, saved["threshold"])} for row in hits]

    return Predictor(predict)


SERVING = ServingSpec(
    input="text",
    output="text",  # the answer, then "Sources: ..." (no output kind for an answer with sources yet)
    load=serve,
    examples=(
        "What does the assert statement do when optimization is requested?",
        "How does reciprocal rank fusion combine rankings?",
        "What is the boiling point of water on Mars?",
    ),
)
