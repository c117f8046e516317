"""The documents of lab n11 (retrieval-augmented answers): the project's own lab articles and Python's
language reference, cut into chunks, with a seeded set of questions whose source passage is known.

Documents. The lab articles are the Markdown files of docs/labs/ when the package runs from a checkout;
an installed package has no docs/, so the labs' module docstrings stand in for them. The language
reference is `pydoc_data.topics` (what `help("assert")` prints; it ships with every Python). Both are
embedded: nothing is downloaded, and the run records which of the two first sources it used.

Chunks. Three ways to cut a document, each keeping the chunk's character span in its document:
fixed-size windows of words (overlapping), whole sentences packed up to a size, and the same packing
inside each section with the section's heading written in front (heading-aware).

Questions. A question is a fill-in-the-blank made from one corpus sentence: one content word becomes
"___" (the answer) and only a fraction of the other words are kept, so the question shares part of its
wording with its passage, not all of it. Its source is the answer's character span: a chunk that holds
the span is a relevant chunk, whatever the chunking. Unanswerable questions are made the same way from
docstrings of standard-library modules that neither source covers (calendar, smtplib, wave, ...).
"""

from __future__ import annotations

import ast
import random
import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib.util import find_spec
from pathlib import Path

from dlpractice.data import phrases
from dlpractice.errors import DlpError, did_you_mean

STRATEGIES = ("fixed", "sentence", "heading")
PACKAGE_DIR = Path(__file__).resolve().parents[1]  # src/dlpractice
CHECKOUT_DOCS = PACKAGE_DIR.parents[1] / "docs" / "labs"  # present in a checkout, not in a wheel
# modules whose subject the corpus does not cover: the source of the unanswerable questions
FOREIGN_MODULES = (
    "calendar",
    "smtplib",
    "wave",
    "ftplib",
    "mailbox",
    "colorsys",
    "imaplib",
    "poplib",
    "tarfile",
    "zipfile",
    "gzip",
    "netrc",
    "mimetypes",
    "locale",
    "sched",
    "uuid",
    "webbrowser",
    "difflib",
)
STOPWORDS = frozenset(
    phrases(
        "a, an, and, are, as, at, be, been, but, by, can, do, does, for, from, has, have, if, in, into, is, "
        "it, its, may, more, most, must, no, not, of, on, one, only, or, other, same, so, some, such, than, "
        "that, the, their, then, there, these, they, this, those, to, two, under, was, we, were, what, when, "
        "where, which, while, who, will, with, would, you, your"
    )
)
WORD = re.compile(r"\S+")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z\"'(`*])")  # a full stop, space, and a capital next
MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(.+)$", re.MULTILINE)
UNDERLINED_HEADING = re.compile(r"^(\S.*)\n([*=\-~^])\2{2,}\s*$", re.MULTILINE)  # reST: a line, then ****


@dataclass(frozen=True)
class Document:
    name: str  # "docs/labs/n8-qa.md", "pydoc_data.topics:assert"
    title: str
    text: str


@dataclass(frozen=True)
class Chunk:
    doc: int  # index of its document
    start: int  # characters [start, end) of the document
    end: int
    text: str  # what is indexed: the span, with its heading in front when heading-aware

    def holds(self, doc: int, start: int, end: int) -> bool:
        return self.doc == doc and self.start <= start and end <= self.end


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the blanked word ("" when unanswerable)
    doc: int  # where the answer is: document and character span; -1 when unanswerable
    start: int
    end: int

    @property
    def answerable(self) -> bool:
        return self.doc >= 0


# ---- documents ------------------------------------------------------------------------------------------


def lab_articles(folder: Path) -> list[Document]:
    docs = []
    for path in sorted(folder.glob("*.md")):
        text = path.read_text(encoding="utf-8")
        first = text.splitlines()[0] if text else path.stem
        docs.append(Document(f"docs/labs/{path.name}", first.lstrip("# ").strip(), text))
    return docs


def lab_docstrings() -> list[Document]:
    """The module docstring of every lab file: what an installed package has instead of docs/labs/."""
    docs = []
    for path in sorted((PACKAGE_DIR / "labs").glob("*/*.py")):
        text = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
        if text and path.stem != "__init__":
            docs.append(
                Document(f"dlpractice/labs/{path.parent.name}/{path.name}", text.splitlines()[0], text)
            )
    return docs


def language_reference() -> list[Document]:
    from pydoc_data.topics import topics

    return [
        Document(f"pydoc_data.topics:{name}", text.splitlines()[0], text)
        for name, text in sorted(topics.items())
    ]


def load_documents(docs_dir: Path | None = None) -> tuple[list[Document], str]:
    """The lab articles (docs_dir, else the checkout's docs/labs, else the labs' docstrings) and the
    language reference; and a line that says which."""
    folder = docs_dir or CHECKOUT_DOCS
    if docs_dir is not None and not any(docs_dir.glob("*.md")):
        raise DlpError(f"{docs_dir} holds no .md file: point docs_dir at a folder of Markdown articles")
    labs = lab_articles(folder) if folder.is_dir() else []
    origin = f"{len(labs)} lab articles ({folder})"
    if not labs:
        labs, origin = lab_docstrings(), "lab module docstrings (no docs/labs/ beside the package)"
    reference = language_reference()
    return labs + reference, f"{origin} + {len(reference)} topics of pydoc_data.topics"


# ---- cutting a document ---------------------------------------------------------------------------------


def paragraph_spans(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Runs of non-blank lines of text[start:end]; a heading, table row or reST underline stands alone."""
    spans: list[tuple[int, int]] = []
    open_run = False
    for line in re.finditer(r"^.*$", text[start:end], re.MULTILINE):
        body = line.group().strip()
        alone = body.startswith(("#", "|")) or bool(re.fullmatch(r"([*=\-~^])\1{2,}", body))
        if body and open_run and not alone:
            spans[-1] = (spans[-1][0], start + line.start() + len(line.group().rstrip()))
        elif body:
            first = start + line.start() + line.group().index(body[0])
            spans.append((first, first + len(body)))
        open_run = bool(body) and not alone
    return spans


def sentence_spans(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentences of text[start:end] as character spans: paragraphs cut after full stops."""
    spans = []
    for p_start, p_end in paragraph_spans(text, start, len(text) if end is None else end):
        cursor = p_start
        for cut in SENTENCE_END.finditer(text, p_start, p_end):
            spans.append((cursor, cut.start()))
            cursor = cut.end()
        spans.append((cursor, p_end))
    return spans


def sections(text: str) -> list[tuple[int, int, str]]:
    """(start, end, heading) of each section: Markdown `#` headings or reST underlined ones."""
    marks = [(m.start(), m.group(1).strip()) for m in MARKDOWN_HEADING.finditer(text)]
    marks += [(m.start(), m.group(1).strip()) for m in UNDERLINED_HEADING.finditer(text)]
    marks = sorted(marks) or [(0, "")]
    if marks[0][0] > 0:
        marks.insert(0, (0, ""))
    ends = [m[0] for m in marks[1:]] + [len(text)]
    return [(s, e, h) for (s, h), e in zip(marks, ends)]


def n_words(text: str) -> int:
    return len(WORD.findall(text))


def pack(spans: list[tuple[int, int]], text: str, size: int) -> list[tuple[int, int]]:
    """Consecutive sentence spans joined while the chunk stays within `size` words; a sentence longer than
    that (a code block, a long list) is cut into windows of `size` words."""
    packed: list[tuple[int, int]] = []
    words = 0
    for start, end in spans:
        count = n_words(text[start:end])
        if packed and words + count <= size:
            packed[-1] = (packed[-1][0], end)
            words += count
        elif count > size:
            packed += [(start + s, start + e) for s, e in fixed_chunks(text[start:end], size, 0)]
            words = size
        else:
            packed.append((start, end))
            words = count
    return packed


def fixed_chunks(text: str, size: int, overlap: int) -> list[tuple[int, int]]:
    """Windows of `size` words, each starting `size - overlap` words after the last."""
    words = [m.span() for m in WORD.finditer(text)]
    starts = range(0, max(1, len(words) - overlap), size - overlap)
    return [(words[i][0], words[min(i + size, len(words)) - 1][1]) for i in starts if words]


def chunk_corpus(docs: list[Document], strategy: str, size: int = 120, overlap: int = 30) -> list[Chunk]:
    """Every document cut by `strategy` (fixed, sentence or heading) into chunks of about `size` words."""
    if strategy not in STRATEGIES:
        raise DlpError(f"unknown chunking {strategy!r}{did_you_mean(strategy, STRATEGIES)}; use {STRATEGIES}")
    if not 0 <= overlap < size:
        raise DlpError(f"chunk overlap={overlap} must be at least 0 and below the chunk size {size}")
    chunks = []
    for d, doc in enumerate(docs):
        if strategy == "fixed":
            chunks += [Chunk(d, s, e, doc.text[s:e]) for s, e in fixed_chunks(doc.text, size, overlap)]
        elif strategy == "sentence":
            spans = pack(sentence_spans(doc.text), doc.text, size)
            chunks += [Chunk(d, s, e, doc.text[s:e]) for s, e in spans]
        else:
            for start, end, heading in sections(doc.text):
                label = f"{doc.title} > {heading}" if heading and heading != doc.title else doc.title
                spans = pack(sentence_spans(doc.text, start, end), doc.text, size)
                chunks += [Chunk(d, s, e, f"{label}\n{doc.text[s:e]}") for s, e in spans]
    return chunks


# ---- questions ------------------------------------------------------------------------------------------


def is_prose(sentence: str) -> bool:
    """A sentence worth asking about: 10-40 words, mostly letters, no code or table."""
    words = sentence.split()
    letters = sum(c.isalpha() for c in sentence) / max(1, len(sentence.replace(" ", "")))
    return 10 <= len(words) <= 40 and letters > 0.8 and not re.search(r"::=|>>>|\||`|\n\s{3}", sentence)


def blank_question(sentence: str, rng: random.Random, keep: float) -> tuple[str, int, int] | None:
    """A fill-in-the-blank question from `sentence` (the answer's span within it), or None when the
    sentence has no content word (5+ letters, said once) to blank. A `keep` fraction of the other words
    stays, in order."""
    words = [(m.start(), m.end(), m.group()) for m in re.finditer(r"[A-Za-z][\w'-]*", sentence)]
    counts = Counter(w[2].lower() for w in words)  # a word said twice would give the blank away
    content = [
        i
        for i, (_, _, w) in enumerate(words)
        if len(w) >= 5 and w.lower() not in STOPWORDS and counts[w.lower()] == 1
    ]
    if not content:
        return None
    blank = rng.choice(content)
    kept = [w[2] if i != blank else "___" for i, w in enumerate(words) if i == blank or rng.random() < keep]
    return " ".join(kept) + "?", words[blank][0], words[blank][1]


def prose_sentences(docs: list[Document]) -> list[tuple[int, int, int]]:
    """(doc, start, end) of every prose sentence whose text occurs once in the whole corpus."""
    found = [(d, s, e) for d, doc in enumerate(docs) for s, e in sentence_spans(doc.text)]
    found = [(d, s, e) for d, s, e in found if is_prose(docs[d].text[s:e])]
    counts = Counter(" ".join(docs[d].text[s:e].split()) for d, s, e in found)
    return [(d, s, e) for d, s, e in found if counts[" ".join(docs[d].text[s:e].split())] == 1]


@cache
def foreign_sentences() -> list[str]:
    """Prose sentences of the docstrings of FOREIGN_MODULES (read from their files, nothing imported)."""
    out = []
    for name in FOREIGN_MODULES:
        spec = find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        tree = ast.parse(Path(spec.origin).read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef)) and ast.get_docstring(node):
                text = ast.get_docstring(node)
                out += [" ".join(text[s:e].split()) for s, e in sentence_spans(text)]
    return sorted({s for s in out if is_prose(s)})


def build_questions(
    docs: list[Document], n_answerable: int, n_unanswerable: int, seed: int = 0, keep: float = 0.6
) -> list[Question]:
    """Seeded questions: n_answerable with a known source span, then n_unanswerable whose sentence is
    in no document. Raises DlpError when the corpus has too few sentences to ask about."""
    rng = random.Random(seed)
    sentences = prose_sentences(docs)
    if len(sentences) < n_answerable:
        raise DlpError(f"the corpus has {len(sentences)} prose sentences; {n_answerable} questions asked")
    questions = []
    for d, s, e in rng.sample(sentences, len(sentences)):
        made = blank_question(docs[d].text[s:e], rng, keep)
        if made and len(questions) < n_answerable:
            text, a, b = made
            questions.append(Question(text, docs[d].text[s + a : s + b], d, s + a, s + b))
    corpus = " ".join(" ".join(doc.text.split()) for doc in docs)
    foreign = [s for s in foreign_sentences() if s not in corpus]
    if len(foreign) < n_unanswerable:
        raise DlpError(f"only {len(foreign)} unanswerable sentences available; {n_unanswerable} asked")
    for sentence in rng.sample(foreign, len(foreign)):
        made = blank_question(sentence, rng, keep)
        if made and len(questions) < n_answerable + n_unanswerable:
            questions.append(Question(made[0], "", -1, -1, -1))
    return questions


def relevant_chunks(questions: list[Question], chunks: list[Chunk]) -> list[set[int]]:
    """For each question, the chunks holding its answer's whole span (empty when unanswerable)."""
    by_doc: dict[int, list[int]] = {}
    for i, c in enumerate(chunks):
        by_doc.setdefault(c.doc, []).append(i)
    return [{i for i in by_doc.get(q.doc, []) if chunks[i].holds(q.doc, q.start, q.end)} for q in questions]


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


def describe(docs: list[Document], origin: str, val: list[Question], test: list[Question]) -> dict:
    """What a run records about its data: the sources, their size, the questions."""
    return {
        "data_source": "embedded",
        "data_origin": origin,
        "documents": len(docs),
        "characters": sum(len(d.text) for d in docs),
        "val_questions": len(val),
        "test_questions": len(test),
        "test_unanswerable": sum(not q.answerable for q in test),
    }
