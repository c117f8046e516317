"""n11 RAG: FAISS flat against brute force, the threshold, the smoke run with a tiny random BERT, serving."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.labs.nlp import n11_rag
from dlpractice.models.retriever import Hit, brute_force, flat_index
from dlpractice.runner import RunSpec, start_run


def test_faiss_flat_equals_brute_force():
    rng = np.random.default_rng(0)
    vectors = rng.standard_normal((500, 24)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    queries = vectors[:40] + 0.1 * rng.standard_normal((40, 24)).astype(np.float32)
    scores, ids = flat_index(vectors).search(queries, 10)
    exact_scores, exact_ids = brute_force(vectors, queries, 10)
    assert np.array_equal(ids, exact_ids)
    np.testing.assert_allclose(scores, exact_scores, atol=1e-5)
    assert ids[0, 0] == 0  # a query near a stored vector finds it first


def test_threshold_makes_the_most_right_calls():
    hits = [Hit(0, s, "") for s in (0.9, 0.8, 0.75, 0.5, 0.4, 0.3)]
    answerable = [True, True, False, True, False, False]
    threshold = n11_rag.choose_threshold(hits, answerable)
    right = sum((h.score >= threshold) == a for h, a in zip(hits, answerable))
    assert right == 5 and 0.4 < threshold <= 0.5


def test_split_keeps_both_kinds_in_both_parts():
    from dlpractice.data.docs_corpus import Question

    questions = [Question(f"q{i}", "w", 0, i, i + 1) for i in range(10)]
    questions += [Question(f"u{i}", "", -1, -1, -1) for i in range(5)]
    val, test = n11_rag.split_questions(questions, 0.3)
    assert (sum(q.answerable for q in val), len(val)) == (3, 5)
    assert (sum(q.answerable for q in test), len(test)) == (7, 10)


@pytest.mark.slow
def test_smoke_run_and_serve(tiny_bert):
    outcome = start_run(RunSpec("n11", "smoke", (f"model={tiny_bert}",), data="embedded"))
    m = outcome.metrics
    assert outcome.value == m["hybrid_recall_at_5"]
    assert m["faiss_flat_equals_brute_force"] == 1.0 and m["faiss_flat_same_ids"] == 1.0
    for method in ("bm25", "dense", "hybrid", "hybrid_rerank"):
        at = [m[f"{method}_recall_at_{k}"] for k in (1, 5, 10)]
        assert 0 <= at[0] <= at[1] <= at[2] <= 1
    assert m["bm25_recall_at_10"] > 0.5  # fill-in-the-blanks share most words with their sentence
    assert m["hallucination_rate_without_abstention"] == 1.0 and 0 <= m["hallucination_rate"] <= 1
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures == {"methods", "ann", "abstention"}
    assert "| hybrid+rerank |" in outcome.report.read_text()
    predictor = n11_rag.serve(outcome.run_dir, n11_rag.Config(model=tiny_bert))
    [answer] = predictor.predict([{"text": "What does the assert statement do?"}])
    assert "Sources: [" in answer["text"] or answer["text"].startswith("The corpus does not answer")
