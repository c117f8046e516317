"""l9 word embeddings: the smoke run; every from-scratch piece against a reference on the same inputs
(direct formulas, brute-force loops, gensim); the checks of exercises l9.1-l9.3."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch

from dlpractice.data.words import (
    SkipGramData,
    WordVocab,
    analogy_questions,
    cooccurrence,
    keep_probabilities,
    noise_distribution,
    sentences,
    skipgram_pairs,
)
from dlpractice.models.word2vec import analogy, nearest
from dlpractice.runner import RunSpec, start_run

TEXT = """The cat sat on the mat. The dog sat on the log!

A cat and a dog; the cat's mat.

  \t
Dogs and cats sat."""


@pytest.mark.slow
def test_smoke_run():
    outcome = start_run(RunSpec("l9", "smoke", data="embedded"))
    m = outcome.metrics
    assert outcome.value == m["analogy_acc"] and 0.0 <= m["analogy_acc"] <= m["analogy_top10"] <= 1.0
    assert m["initial_loss"] == pytest.approx(6 * np.log(2), abs=1e-4)  # u = 0: σ(0) = 1/2 for 1 + 5 pairs
    assert m["val_loss"] < m["initial_loss"] - 0.2
    assert m["glove_val_loss"] < m["glove_initial_loss"]
    assert m["analogy_questions"] > 100 and m["vocab_size"] > 1000
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} == {
        "loss",
        "glove_loss",
        "tsne",
        "neighbours",
    }
    report = outcome.report.read_text()
    assert "## Comparison" in report and "## Nearest neighbours (cosine)" in report
    assert ("| gensim skip-gram" in report) == (importlib.util.find_spec("gensim") is not None)


def test_sentences_are_paragraphs_of_lower_case_words():
    assert sentences(TEXT) == [
        ["the", "cat", "sat", "on", "the", "mat", "the", "dog", "sat", "on", "the", "log"],
        ["a", "cat", "and", "a", "dog", "the", "cat's", "mat"],
        ["dogs", "and", "cats", "sat"],
    ]


def test_vocabulary_orders_by_count_and_drops_rare_words():
    vocab = WordVocab.build(sentences(TEXT), min_count=2)
    assert vocab.words == ["the", "sat", "a", "and", "cat", "dog", "mat", "on"]  # ties alphabetical
    assert vocab.counts.tolist() == [5, 3, 2, 2, 2, 2, 2, 2]
    ids, owner = vocab.encode([["the", "zebra", "cat"], ["mat"]])
    assert ids.tolist() == [0, 4, 6] and owner.tolist() == [0, 0, 1]


def brute_force_cooccurrence(sents: list[list[int]], vocab_size: int, window: int) -> np.ndarray:
    x = np.zeros((vocab_size, vocab_size))
    for sent in sents:
        for i, word in enumerate(sent):
            for j in range(max(0, i - window), min(len(sent), i + window + 1)):
                if j != i:
                    x[word, sent[j]] += 1.0 / abs(i - j)
    return x


@pytest.mark.parametrize("window", [1, 3, 10])
def test_cooccurrence_equals_a_brute_force_loop(window):
    rng = np.random.default_rng(0)
    sents = [rng.integers(0, 7, size=n).tolist() for n in (9, 1, 4, 12)]
    ids = np.array([w for s in sents for w in s])
    owner = np.array([k for k, s in enumerate(sents) for _ in s])
    x = cooccurrence(ids, owner, 7, window).toarray()
    np.testing.assert_allclose(x, brute_force_cooccurrence(sents, 7, window), rtol=1e-12)
    np.testing.assert_allclose(x, x.T)


def test_skipgram_pairs_equal_a_brute_force_loop_with_the_same_reach():
    ids = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3])
    owner = np.array([0, 0, 0, 0, 1, 1, 1, 1, 1, 1])
    reach = np.random.default_rng(7).integers(1, 4, size=len(ids))  # what skipgram_pairs draws first
    expected = sorted(
        (ids[i], ids[j])
        for i in range(len(ids))
        for j in range(len(ids))
        if i != j and abs(i - j) <= reach[i] and owner[i] == owner[j]
    )
    centre, context = skipgram_pairs(ids, owner, 3, np.random.default_rng(7))
    assert sorted(zip(centre.tolist(), context.tolist())) == [(int(a), int(b)) for a, b in expected]


def test_dynamic_window_pairs_near_words_more_often():
    ids = np.arange(2000)
    centre, context = skipgram_pairs(ids, np.zeros_like(ids), 4, np.random.default_rng(0))
    distance = np.abs(centre - context)
    share = np.bincount(distance, minlength=5)[1:] / len(ids) / 2  # per side, per centre
    np.testing.assert_allclose(share, [1.0, 0.75, 0.5, 0.25], atol=0.04)  # (window - d + 1) / window


def test_skipgram_batches_are_reproducible_and_validation_fixed():
    pairs = (np.arange(50) % 7, (np.arange(50) + 1) % 7)
    noise = noise_distribution(np.array([5, 4, 3, 3, 2, 1, 1]))
    data = SkipGramData(pairs, pairs, noise, negatives=3, eval_batch_size=20)
    a = data.train_batch(8, torch.Generator().manual_seed(1))
    b = data.train_batch(8, torch.Generator().manual_seed(1))
    assert [t.shape for t in a] == [(8,), (8, 3), (8,)]
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert torch.equal((a[0] + 1) % 7, a[2])  # each centre with its own context
    first, second = list(data.eval_batches("val")), list(data.eval_batches("val"))
    assert [len(t[0]) for t in first] == [20, 20, 10]
    assert all(torch.equal(x, y) for p, q in zip(first, second) for x, y in zip(p, q))


def test_analogy_questions_pair_up_known_pairs_of_one_relation():
    vocab = WordVocab(["king", "queen", "man", "woman", "he", "she", "boy"], np.ones(7, dtype=np.int64))
    questions = analogy_questions(vocab, {"gender": [("king", "queen"), ("man", "woman"), ("boy", "girl")]})
    assert questions == [
        ("gender", "king", "queen", "man", "woman"),
        ("gender", "man", "woman", "king", "queen"),
    ]


# gensim is the reference implementation of word2vec (the `dev` extra installs it)


def gensim_model(sents: list[list[str]], min_count: int, sample: float):
    from gensim.models import Word2Vec

    model = Word2Vec(min_count=min_count, sample=sample, negative=5, workers=1)
    model.build_vocab(sents)
    return model


@pytest.fixture(scope="module")
def corpus_sentences() -> list[list[str]]:
    from dlpractice.data.shakespeare import stdlib_docstrings

    return sentences(stdlib_docstrings(60_000))


def test_vocabulary_and_subsampling_match_gensim(corpus_sentences):
    pytest.importorskip("gensim")
    vocab = WordVocab.build(corpus_sentences, min_count=3)
    model = gensim_model(corpus_sentences, min_count=3, sample=1e-3)
    assert set(vocab.words) == set(model.wv.index_to_key)
    counts = [model.wv.get_vecattr(w, "count") for w in vocab.words]
    assert vocab.counts.tolist() == counts
    theirs = np.array([model.wv.get_vecattr(w, "sample_int") for w in vocab.words]) / 2**32
    np.testing.assert_allclose(keep_probabilities(vocab.counts, 1e-3), theirs, atol=1e-9)
    assert (theirs < 1).sum() > 10  # the frequent words really are subsampled


def test_noise_distribution_matches_gensims_table(corpus_sentences):
    pytest.importorskip("gensim")
    model = gensim_model(corpus_sentences, min_count=3, sample=0)
    order = model.wv.index_to_key
    counts = np.array([model.wv.get_vecattr(w, "count") for w in order])
    theirs = np.diff(model.cum_table, prepend=0) / model.cum_table[-1]
    np.testing.assert_allclose(noise_distribution(counts), theirs, atol=1e-8)


def random_vectors(n: int = 40, dim: int = 8, seed: int = 0) -> torch.Tensor:
    """Vectors of very different lengths, so any method that forgets to normalise answers differently."""
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=g) * torch.rand(n, 1, generator=g).mul(10).exp()


def keyed_vectors(vectors: torch.Tensor):
    from gensim.models import KeyedVectors

    kv = KeyedVectors(vectors.shape[1])
    kv.add_vectors([f"w{i}" for i in range(len(vectors))], vectors.numpy())
    return kv


def test_nearest_and_analogy_match_gensim_most_similar():
    pytest.importorskip("gensim")
    vectors = random_vectors()
    kv = keyed_vectors(vectors)
    words = torch.tensor([0, 5, 17, 39])
    ids, cosines = nearest(vectors, words, 6)
    for row, word in enumerate(words.tolist()):
        theirs = kv.most_similar(f"w{word}", topn=6)
        assert [f"w{i}" for i in ids[row].tolist()] == [w for w, _ in theirs]
        np.testing.assert_allclose(cosines[row].numpy(), [s for _, s in theirs], atol=1e-5)
    a, b, c = torch.tensor([1, 2, 3, 4]), torch.tensor([5, 6, 7, 8]), torch.tensor([9, 10, 11, 12])
    ours = analogy(vectors, a, b, c, k=5)
    for row in range(len(a)):
        theirs = kv.most_similar(positive=[f"w{b[row]}", f"w{c[row]}"], negative=[f"w{a[row]}"], topn=5)
        assert [f"w{i}" for i in ours[row].tolist()] == [w for w, _ in theirs]


# the exercises
