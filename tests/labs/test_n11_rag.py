"""n11 RAG: FAISS flat against brute force, the threshold, the smoke run with a tiny random BERT, serving."""

from __future__ import annotations

import numpy as np
import pytest

from dlpractice.labs.nlp import n11_rag
from dlpractice.models.retriever import ann_sweep, brute_force, flat_against_brute_force, flat_index
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
    checks = flat_against_brute_force(vectors, flat_index(vectors), queries)
    assert checks["faiss_flat_equals_brute_force"] == 1.0 and checks["faiss_flat_same_ids"] == 1.0


def test_ann_recall_grows_with_the_search_effort():
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((2000, 16)).astype(np.float32)
    queries = rng.standard_normal((50, 16)).astype(np.float32)
    points = ann_sweep(vectors, queries, ivf_cells=32, hnsw_links=8)
    for kind, widest in (("ivf", 32), ("hnsw", 128)):
        recall = [found for k, _, _, found, _ in points if k == kind]
        assert recall == sorted(recall) and recall[0] < 0.9  # more cells probed, longer lists: more found
        assert [v for k, _, v, _, _ in points if k == kind][-1] == widest
    assert [found for k, _, v, found, _ in points if k == "ivf" and v == 32] == [1.0]  # every cell: exact


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
    assert "| hybrid_rerank |" in outcome.report.read_text()
    predictor = n11_rag.serve(outcome.run_dir, n11_rag.Config(model=tiny_bert))
    [answer] = predictor.predict([{"text": "What does the assert statement do?"}])
    if answer["sources"]:  # the answer is the first source's sentence, cited by chunk, document and span
        first = answer["sources"][0]
        assert answer["text"] == first["text"] and first["title"].startswith("[")
    else:
        assert answer["text"].startswith("The corpus does not answer")


def test_a_folder_that_is_no_model_is_a_one_line_error(tmp_path):
    from dlpractice.errors import DlpError
    from dlpractice.models.retriever import load_encoder

    with pytest.raises(DlpError, match="not a Hugging Face model directory"):
        load_encoder(str(tmp_path))
