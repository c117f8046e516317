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


@dataclass
class Hit:
    chunk: int
    score: float  # the reranker's: cosine of the question and the chunk's best sentence
    sentence: str  # that sentence: the extracted answer


class PassageIndex:
    """Chunks, their vectors (FAISS flat) and tokens (BM25), and each chunk's sentences (for reranking)."""

    def __init__(
        self,
        docs: list[Document],
        chunks: list[Chunk],
        chunk_sentences: list[list[str]],
        chunk_vectors: np.ndarray,
        encoder: Any,
    ):
        self.docs, self.chunks, self.chunk_sentences, self.encoder = docs, chunks, chunk_sentences, encoder
        self.vectors = chunk_vectors  # (N, D)
        self.flat = flat_index(chunk_vectors)
        self.bm25 = BM25([bm25_tokens(c.text) for c in chunks])
        self._sentence_vectors: dict[str, np.ndarray] = {}

    @classmethod
    def build(cls, docs: list[Document], chunks: list[Chunk], encoder: Any, batch_size: int) -> PassageIndex:
        vectors = embed(encoder, [c.text for c in chunks], batch_size)
        return cls(docs, chunks, sentences_of_chunks(docs, chunks), vectors, encoder)

    def dense(self, question_vectors: np.ndarray, k: int) -> list[list[int]]:
        return self.flat.search(question_vectors, k)[1].tolist()

    def lexical(self, questions: list[str], k: int) -> list[list[int]]:
        return [top_k(self.bm25.scores(bm25_tokens(q)), k) for q in questions]

    def sentence_vectors(self, texts: list[str]) -> np.ndarray:
        """(S, D) vectors of these sentences; each is embedded once per index (a cache), new ones together."""
        new = sorted({t for t in texts if t not in self._sentence_vectors})
        if new:
            self._sentence_vectors.update(zip(new, embed(self.encoder, new, 64), strict=True))
        return np.stack([self._sentence_vectors[t] for t in texts])

    def rerank(self, question_vector: np.ndarray, candidates: list[int]) -> list[Hit]:
        """The candidates re-ordered by their best sentence's cosine with the question (max-sim)."""
        hits = []
        for c in candidates:
            texts = self.chunk_sentences[c] or [self.chunks[c].text]
            cosines = self.sentence_vectors(texts) @ question_vector  # (S,)
            best = int(np.argmax(cosines))
            hits.append(Hit(c, float(cosines[best]), texts[best]))
        return sorted(hits, key=lambda h: (-h.score, h.chunk))

    def source(self, chunk: int) -> str:
        """How an answer cites a chunk: its number, document, character span and title."""
        c = self.chunks[chunk]
        return f"[{chunk}] {self.docs[c.doc].name} (chars {c.start}-{c.end}): {self.docs[c.doc].title}"


def hybrid(dense: list[list[int]], lexical: list[list[int]], k: int, rrf_k: int) -> list[list[int]]:
    """Each question's dense and BM25 rankings fused by reciprocal rank, first k."""
    return [reciprocal_rank_fusion([d, b], rrf_k)[:k] for d, b in zip(dense, lexical, strict=True)]


def sentences_of_chunks(docs: list[Document], chunks: list[Chunk]) -> list[list[str]]:
    """For each chunk, the sentences that start inside it (cut at its end), whitespace collapsed."""
    spans = {d: sentence_spans(doc.text) for d, doc in enumerate(docs)}
    per_chunk = []
    for c in chunks:
        text = docs[c.doc].text
        inside = [" ".join(text[s : min(e, c.end)].split()) for s, e in spans[c.doc] if c.start <= s < c.end]
        per_chunk.append([t for t in inside if t])
    return per_chunk


def answer_text(hit: Hit | None, index: PassageIndex, threshold: float) -> str:
    """A grounded answer: the best sentence and its source, or an abstention below the threshold."""
    if hit is None or hit.score < threshold:
        score = f" (best match {hit.score:.2f} < threshold {threshold:.2f})" if hit else ""
        return f"The corpus does not answer this{score}."
    return f"{hit.sentence}\n\nSources: {index.source(hit.chunk)}"


def save_vectors(path: Path, vectors: np.ndarray) -> None:
    from safetensors.numpy import save_file

    save_file({"vectors": vectors}, str(path))


def load_vectors(path: Path) -> np.ndarray:
    from safetensors.numpy import load_file

    return load_file(str(path))["vectors"]
