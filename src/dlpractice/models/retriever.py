"""A passage index for retrieval-augmented answers (lab n11): dense vectors in FAISS, BM25, their fusion,
a sentence-level reranker and an extractive answer with its source.

Dense retrieval embeds the question and every chunk with a sentence encoder (by default the packaged
MiniLM, mean-pooled, unit length) and ranks chunks by cosine, i.e. inner product, in a `faiss.IndexFlatIP`,
which is exact. The reranker is not a cross-encoder (none ships offline): it scores each candidate chunk
by its best sentence, the largest cosine between the question and one of the chunk's sentences, with the
same MiniLM ("max-sim" over sentences). That best sentence is also the answer, cited by its chunk; the
reranker's score is what the abstention threshold compares against.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlpractice.data.docs_corpus import Chunk, Document, sentence_spans
from dlpractice.errors import DlpError
from dlpractice.metrics.retrieval import BM25, bm25_tokens, reciprocal_rank_fusion, top_k
from dlpractice.models.backbone import resolve_backbone


def load_encoder(name_or_path: str) -> Any:
    """A SentenceTransformer on the CPU: the packaged MiniLM, or any BERT-like directory (mean pooling)."""
    from sentence_transformers import SentenceTransformer

    try:
        return SentenceTransformer(resolve_backbone(name_or_path), device="cpu")
    except OSError as error:  # a missing directory, an unknown or unreachable Hub id
        message = f"cannot load encoder {name_or_path!r} ({error}); offline, pass a local directory"
        raise DlpError(message) from error


def embed(encoder: Any, texts: list[str], batch_size: int = 32) -> np.ndarray:
    """(N, D) float32 unit vectors, so that inner product is cosine."""
    vectors = encoder.encode(texts, batch_size=batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(texts), -1)


def flat_index(vectors: np.ndarray) -> Any:
    import faiss

    index = faiss.IndexFlatIP(vectors.shape[1])
    index.add(vectors)
    return index


def brute_force(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The exact top k by inner product with NumPy: (Q, k) scores and ids, ties to the lower id."""
    scores = queries @ vectors.T  # (Q, N)
    ids = np.array([top_k(row, k) for row in scores])
    return np.take_along_axis(scores, ids, 1), ids


def ann_index(vectors: np.ndarray, kind: str, size: int) -> Any:
    """An approximate index: `ivf` (size = number of k-means cells) or `hnsw` (size = links per node)."""
    import faiss

    if kind == "ivf":
        quantizer = faiss.IndexFlatIP(vectors.shape[1])
        index = faiss.IndexIVFFlat(quantizer, vectors.shape[1], size, faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = 0
        index.train(vectors)
    else:
        index = faiss.IndexHNSWFlat(vectors.shape[1], size, faiss.METRIC_INNER_PRODUCT)
    index.add(vectors)
    return index


def timed_search(index: Any, queries: np.ndarray, k: int, repeats: int = 3) -> tuple[np.ndarray, float]:
    """(Q, k) ids, and the best of `repeats` timings of searching all queries, in ms per query."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        _, ids = index.search(queries, k)
        best = min(best, time.perf_counter() - started)
    return ids, 1000 * best / len(queries)


def flat_against_brute_force(vectors: np.ndarray, flat: Any, queries: np.ndarray, k: int = 10) -> dict:
    """Does the flat index return NumPy's exact top k (ids, and scores to float32 rounding)?"""
    k = min(k, len(vectors))
    exact_scores, exact_ids = brute_force(vectors, queries, k)
    flat_ids, flat_ms = timed_search(flat, queries, k)
    flat_scores = flat.search(queries, k)[0]
    same = flat_ids == exact_ids
    tied = np.isclose(flat_scores, exact_scores, atol=1e-6, rtol=0)  # equal scores may swap places
    equal = bool(np.all(same | tied)) and np.allclose(flat_scores, exact_scores, atol=1e-6, rtol=0)
    return {
        "faiss_flat_equals_brute_force": float(equal),
        "faiss_flat_same_ids": float(same.mean()),
        "faiss_flat_max_score_diff": float(np.abs(flat_scores - exact_scores).max()),
        "faiss_flat_ms_per_query": flat_ms,
    }


def ann_sweep(vectors: np.ndarray, queries: np.ndarray, ivf_cells: int, hnsw_links: int, k: int = 10) -> list:
    """(index, knob, value, recall@k of the exact top k, ms per query) for IVF over nprobe and HNSW over
    efSearch: what approximate search trades."""
    k = min(k, len(vectors))
    exact_ids = brute_force(vectors, queries, k)[1]
    cells = max(1, min(ivf_cells, len(vectors) // 39))  # faiss wants ~39 training points per cell
    points = []
    for kind, size, knob, values in (
        ("ivf", cells, "nprobe", [v for v in (1, 2, 4, 8, 16, 32) if v <= cells]),
        ("hnsw", hnsw_links, "efSearch", [4, 8, 16, 32, 64, 128]),
    ):
        index = ann_index(vectors, kind, size)
        for value in values:
            if kind == "ivf":
                index.nprobe = value
            else:
                index.hnsw.efSearch = value
            ids, ms = timed_search(index, queries, k)
            found = np.mean([len(set(a) & set(b)) / k for a, b in zip(ids, exact_ids, strict=True)])
            points.append((kind, knob, value, float(found), ms))
    return points


@dataclass
class Hit:
    chunk: int
    score: float  # the reranker's: cosine of the question and the chunk's best sentence
    sentence: str  # that sentence: the extracted answer


class PassageIndex:
    """Chunks seen three ways: their vectors (FAISS flat), their sentences' vectors (FAISS flat, a
    sentence standing for its chunk: "small-to-big" retrieval) and their tokens (BM25)."""

    def __init__(
        self,
        docs: list[Document],
        chunks: list[Chunk],
        chunk_sentences: list[list[str]],
        chunk_vectors: np.ndarray,
        sentence_vectors: np.ndarray,
    ):
        self.docs, self.chunks, self.chunk_sentences = docs, chunks, chunk_sentences
        self.vectors, self.sentence_vectors = chunk_vectors, sentence_vectors  # (N, D), (S, D)
        self.flat, self.sentence_flat = flat_index(chunk_vectors), flat_index(sentence_vectors)
        self.owner = np.array([c for c, texts in enumerate(chunk_sentences) for _ in texts])  # (S,) chunk
        self.first = np.cumsum([0] + [len(texts) for texts in chunk_sentences])  # chunk c: rows first[c]..
        self.bm25 = BM25([bm25_tokens(c.text) for c in chunks])

    @classmethod
    def build(
        cls,
        docs: list[Document],
        chunks: list[Chunk],
        encoder: Any,
        batch_size: int,
        cache: dict[str, np.ndarray],
    ) -> PassageIndex:
        """Embed the chunks, and the sentences not in `cache` (the chunkings share most sentences)."""
        chunk_sentences = sentences_of_chunks(docs, chunks)
        vectors = embed(encoder, [c.text for c in chunks], batch_size)
        flat = [t for texts in chunk_sentences for t in texts]
        return cls(docs, chunks, chunk_sentences, vectors, embed_cached(encoder, flat, cache, batch_size))

    def dense(self, question_vectors: np.ndarray, k: int) -> list[list[int]]:
        """Chunks by the cosine of their own vector with the question's."""
        return self.flat.search(question_vectors, k)[1].tolist()

    def dense_sentences(self, question_vectors: np.ndarray, k: int) -> list[list[int]]:
        """Chunks by their best sentence: the sentence hits, best first, each replaced by its chunk."""
        depth = min(len(self.owner), 8 * k)  # enough sentence hits to name k chunks, usually
        rows = self.sentence_flat.search(question_vectors, depth)[1]
        return [list(dict.fromkeys(self.owner[row].tolist()))[:k] for row in rows]

    def lexical(self, questions: list[str], k: int) -> list[list[int]]:
        return [top_k(self.bm25.scores(bm25_tokens(q)), k) for q in questions]

    def rerank(self, question_vector: np.ndarray, candidates: list[int]) -> list[Hit]:
        """The candidates re-ordered by their best sentence's cosine with the question (max-sim)."""
        hits = []
        for c in candidates:
            cosines = self.sentence_vectors[self.first[c] : self.first[c + 1]] @ question_vector  # (S_c,)
            best = int(np.argmax(cosines))
            hits.append(Hit(c, float(cosines[best]), self.chunk_sentences[c][best]))
        return sorted(hits, key=lambda h: (-h.score, h.chunk))

    def source(self, chunk: int) -> str:
        """How an answer cites a chunk: its number, document, character span and title."""
        c = self.chunks[chunk]
        return f"[{chunk}] {self.docs[c.doc].name} (chars {c.start}-{c.end}): {self.docs[c.doc].title}"


def embed_cached(encoder: Any, texts: list[str], cache: dict[str, np.ndarray], batch_size: int) -> np.ndarray:
    """(S, D) vectors of texts, embedding (together) only those not in `cache`, which keeps them."""
    new = sorted({t for t in texts if t not in cache})
    if new:
        cache.update(zip(new, embed(encoder, new, batch_size), strict=True))
    return np.stack([cache[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)


def hybrid(dense: list[list[int]], lexical: list[list[int]], k: int, rrf_k: int) -> list[list[int]]:
    """Each question's dense and BM25 rankings fused by reciprocal rank, first k."""
    return [reciprocal_rank_fusion([d, b], rrf_k)[:k] for d, b in zip(dense, lexical, strict=True)]


def sentences_of_chunks(docs: list[Document], chunks: list[Chunk]) -> list[list[str]]:
    """For each chunk, the sentences that overlap it, cut to it, whitespace collapsed (at least one)."""
    spans = {d: sentence_spans(doc.text) for d, doc in enumerate(docs)}
    per_chunk = []
    for c in chunks:
        text = docs[c.doc].text
        inside = [" ".join(text[max(s, c.start) : min(e, c.end)].split()) for s, e in spans[c.doc]]
        inside = [
            t for (s, e), t in zip(spans[c.doc], inside, strict=True) if s < c.end and e > c.start and t
        ]
        per_chunk.append(inside or [" ".join(c.text.split())])
    return per_chunk


def grounded_answer(hits: list[Hit], index: PassageIndex, threshold: float, cited: int = 3) -> dict[str, Any]:
    """The best sentence as the answer, and the hits over the threshold (at most `cited`) as its sources;
    below the threshold, an abstention with no sources (a served `answer`: see dlpractice.serving)."""
    if not hits or hits[0].score < threshold:
        score = f" (best match {hits[0].score:.2f} < threshold {threshold:.2f})" if hits else ""
        return {"text": f"The corpus does not answer this{score}.", "sources": []}
    sources = [
        {"title": index.source(h.chunk), "text": h.sentence, "score": float(h.score)}
        for h in hits[:cited]
        if h.score >= threshold
    ]
    return {"text": hits[0].sentence, "sources": sources}


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    from safetensors.numpy import save_file

    save_file({"vectors": vectors}, str(path))


def load_vectors(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["vectors"]
