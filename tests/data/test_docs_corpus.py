"""The n11 corpus: documents, the three chunkings (spans that match the text), questions and their sources."""

from __future__ import annotations

import pytest

from dlpractice.data import docs_corpus as dc
from dlpractice.errors import DlpError

ARTICLE = """# T1 · A lab

Intro sentence one is here. Intro sentence two follows it.

## Section A
Alpha words describe the first section in detail. Beta words come next in it.

## Section B
| a | table |
Gamma words close the article.
"""


@pytest.fixture(scope="module")
def docs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("labs")
    (folder / "t1-a-lab.md").write_text(ARTICLE)
    documents, origin = dc.load_documents(folder)
    assert origin.startswith("1 lab articles") and "pydoc_data.topics" in origin
    return documents


def test_documents(docs):
    assert docs[0].name == "docs/labs/t1-a-lab.md" and docs[0].title == "T1 · A lab"
    names = {d.name for d in docs}
    assert "pydoc_data.topics:assert" in names
    assert len(docs) > 50


def test_docstrings_stand_in_for_articles():
    docs = dc.lab_docstrings()
    assert any(d.name.endswith("n8_qa.py") and d.title.startswith("N8") for d in docs)


def test_a_folder_without_articles_is_an_error(tmp_path):
    with pytest.raises(DlpError, match="no .md file"):
        dc.load_documents(tmp_path)


def test_sentences_and_sections():
    spans = dc.sentence_spans(ARTICLE)
    sentences = [ARTICLE[s:e] for s, e in spans]
    assert "Intro sentence one is here." in sentences and "Intro sentence two follows it." in sentences
    assert "## Section A" in sentences and "| a | table |" in sentences  # headings, tables stand alone
    headings = [h for _, _, h in dc.sections(ARTICLE)]
    assert headings == ["T1 · A lab", "Section A", "Section B"]
    reference = "Title\n*****\n\nBody text here.\n\nSub\n===\nMore."
    assert [h for _, _, h in dc.sections(reference)] == ["Title", "Sub"]


@pytest.mark.parametrize("strategy", dc.STRATEGIES)
def test_chunks_cover_their_spans(docs, strategy):
    chunks = dc.chunk_corpus(docs[:20], strategy, size=50, overlap=10)
    assert {c.doc for c in chunks} == set(range(20))
    for c in chunks:
        span = docs[c.doc].text[c.start : c.end]
        assert span in c.text and dc.n_words(span) <= 50
    if strategy == "heading":
        assert any(c.text.startswith("T1 · A lab > Section A\n") for c in chunks)


def test_fixed_windows_overlap():
    text = " ".join(f"w{i}" for i in range(25))
    windows = [text[s:e].split() for s, e in dc.fixed_chunks(text, 10, 4)]
    assert windows[0] == [f"w{i}" for i in range(10)] and windows[1][0] == "w6" and windows[-1][-1] == "w24"


def test_bad_chunking_is_an_error(docs):
    with pytest.raises(DlpError, match="did you mean 'heading'"):
        dc.chunk_corpus(docs, "headings")


def test_questions_are_seeded_and_sourced(docs):
    questions = dc.build_questions(docs, 30, 10, seed=3)
    assert questions == dc.build_questions(docs, 30, 10, seed=3)
    assert questions != dc.build_questions(docs, 30, 10, seed=4)
    answerable = [q for q in questions if q.answerable]
    assert len(answerable) == 30 and len(questions) == 40
    for q in answerable:
        assert (
            docs[q.doc].text[q.start : q.end] == q.answer
            and "___" in q.text
            and q.answer not in q.text.split()
        )
    corpus = " ".join(" ".join(d.text.split()) for d in docs)
    for q in questions[30:]:
        assert q.answer == "" and q.text.replace("___", "").strip(" ?") not in corpus
    chunks = dc.chunk_corpus(docs, "sentence")
    relevant = dc.relevant_chunks(questions, chunks)
    assert all(relevant[i] for i in range(30)) and not any(relevant[30:])
    for q, found in zip(answerable, relevant):
        assert all(q.answer in chunks[c].text for c in found)


def test_split_keeps_both_kinds_in_both_parts():
    questions = [dc.Question(f"q{i}", "w", 0, i, i + 1) for i in range(10)]
    questions += [dc.Question(f"u{i}", "", -1, -1, -1) for i in range(5)]
    val, test = dc.split_questions(questions, 0.3)
    assert (sum(q.answerable for q in val), len(val)) == (3, 5)
    assert (sum(q.answerable for q in test), len(test)) == (7, 10)


def test_spread_takes_documents_from_both_ends(docs):
    picked = dc.spread(docs, 10)
    assert len(picked) == 10 and picked[0] is docs[0] and picked[-1].name.startswith("pydoc_data")
    assert dc.spread(docs, 0) == docs
