"""Extractive question answering data for n8: SQuAD v1.1, or generated biographies offline.

Real: SQuAD v1.1 (Rajpurkar et al., 2016), the official `train-v1.1.json` (87,599 questions) and
`dev-v1.1.json` (10,570 questions, 2,067 paragraphs, up to three reference answers each), found in the data
directory or downloaded once from the SQuAD site with a checksum. Training uses train-v1.1 less its last
articles, which validate; the dev set is the test set, as in the papers.

Embedded (generated, not real text): short biographies of invented people (census first and last names
from the `names` package; places from conll.py's list; subjects, jobs and years drawn at random), several
to a context, with a templated question for each fact and the answer's character offset. Several people
in one context share every kind of fact, so the answer has to be found next to the right name, and a
context of several biographies is longer than one window of the tokenizer.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

from dlpractice.data import phrases
from dlpractice.data.conll import PLACES, census_names
from dlpractice.data.fetch import RealFile, find_local, locate
from dlpractice.errors import DlpError

SQUAD_URL = "https://rajpurkar.github.io/SQuAD-explorer/dataset"
SQUAD_TRAIN = RealFile(
    name="train-v1.1.json",
    url=f"{SQUAD_URL}/train-v1.1.json",
    sha256="3527663986b8295af4f7fcdff1ba1ff3f72d07d61a20f487cb238a6ef92fd955",
    places=("squad/train-v1.1.json", "train-v1.1.json"),
)
SQUAD_DEV = RealFile(
    name="dev-v1.1.json",
    url=f"{SQUAD_URL}/dev-v1.1.json",
    sha256="95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
    places=("squad/dev-v1.1.json", "dev-v1.1.json"),
)
VAL_ARTICLES = 5  # the last articles of train-v1.1 validate


@dataclass(frozen=True)
class QAExample:
    id: str
    question: str
    context: str
    answers: tuple[str, ...]  # reference answers (training uses the first)
    answer_start: int  # character offset of answers[0] in the context


@dataclass(frozen=True)
class QAData:
    train: list[QAExample]
    val: list[QAExample]
    test: list[QAExample]
    source: str
    origin: str

    def describe(self) -> dict[str, str | int]:
        return {
            "data_source": self.source,
            "data_origin": self.origin,
            "train_questions": len(self.train),
            "val_questions": len(self.val),
            "test_questions": len(self.test),
        }


def read_squad(path: Path) -> list[list[QAExample]]:
    """The questions of a SQuAD v1.1 file, one list per article."""
    articles = json.loads(path.read_text(encoding="utf-8"))["data"]
    out = []
    for article in articles:
        examples = []
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                texts = tuple(a["text"] for a in qa["answers"])
                start = qa["answers"][0]["answer_start"]
                examples.append(QAExample(qa["id"], qa["question"], paragraph["context"], texts, start))
        out.append(examples)
    return out


def load_qa(
    source: str = "auto", data_dir: str | Path | None = None, n_generated: int = 2000, people: int = 3
) -> QAData:
    """SQuAD v1.1 (`real`), generated biographies (`embedded`), or `auto`: real when it is on disk."""
    if source == "auto":
        source = (
            "real" if find_local(SQUAD_TRAIN, data_dir) and find_local(SQUAD_DEV, data_dir) else "embedded"
        )
    if source == "real":
        train_path, dev_path = locate(SQUAD_TRAIN, data_dir), locate(SQUAD_DEV, data_dir)
        articles = read_squad(train_path)
        train = [e for a in articles[:-VAL_ARTICLES] for e in a]
        val = [e for a in articles[-VAL_ARTICLES:] for e in a]
        test = [e for a in read_squad(dev_path) for e in a]
        return QAData(train, val, test, "real", f"SQuAD v1.1 ({train_path.parent})")
    if source == "embedded":
        rng = random.Random(0)
        n_eval = max(1, n_generated // 5)
        train, val, test = (generate_questions(n, people, rng) for n in (n_generated, n_eval, n_eval))
        return QAData(train, val, test, "embedded", f"generated biographies, {people} people a context")
    raise DlpError(f"unknown data source {source!r}; use embedded, real or auto")


# ---- generated biographies (embedded source) ------------------------------------------------------------

SUBJECTS = phrases(
    "physics, law, medicine, history, music, chemistry, economics, painting, architecture, mathematics, "
    "biology, philosophy, engineering, geology"
)
JOBS = phrases(
    "teacher, engineer, journalist, doctor, pilot, architect, lawyer, chef, photographer, banker, nurse, "
    "librarian, carpenter, diplomat"
)
# (sentence, question, answer slot): {name} the person's full name, {last} the surname
FACTS = (
    ("{name} was born in {born} in {year}.", "Where was {name} born?", "born"),
    ("{last} studied {subject} at the University of {college}.", "What did {name} study?", "subject"),
    ("After graduating, {last} worked as a {job} in {city}.", "What was {name}'s job?", "job"),
    ("In {moved}, {last} moved to {city}.", "In which year did {name} move to {city}?", "moved"),
    ("{last} has {children} children.", "How many children does {name} have?", "children"),
    ("{name} was born in {born} in {year}.", "In what year was {name} born?", "year"),
    ("{last} studied {subject} at the University of {college}.", "Where did {name} study?", "college"),
)


def person(rng: random.Random) -> dict[str, str]:
    first, last = census_names()
    surname = rng.choice(last)
    return {
        "name": f"{rng.choice(first)} {surname}",
        "last": surname,
        "born": rng.choice(PLACES),
        "year": str(rng.randint(1900, 2000)),
        "subject": rng.choice(SUBJECTS),
        "college": rng.choice(PLACES),
        "job": rng.choice(JOBS),
        "city": rng.choice(PLACES),
        "moved": str(rng.randint(1920, 2020)),
        "children": str(rng.randint(2, 9)),
    }


def biography(facts: dict[str, str]) -> str:
    """One paragraph: every distinct sentence of FACTS, filled in for this person."""
    sentences = dict.fromkeys(sentence for sentence, _, _ in FACTS)
    return " ".join(sentence.format(**facts) for sentence in sentences)


def generate_questions(n: int, people: int, rng: random.Random) -> list[QAExample]:
    """n questions; each context holds `people` biographies, each question asks one fact of one of them."""
    examples: list[QAExample] = []
    while len(examples) < n:
        group = [person(rng) for _ in range(people)]
        if len({p["last"] for p in group}) < people:
            continue  # two people of one surname would make "{last} moved ..." ambiguous
        context = " ".join(biography(p) for p in group)
        for facts in group:
            sentence, question, slot = rng.choice(FACTS)
            before_slot = sentence[: sentence.index("{" + slot + "}")].format(**facts)
            start = context.index(sentence.format(**facts), context.index(biography(facts))) + len(
                before_slot
            )
            answer = facts[slot]
            question = question.format(**facts)
            examples.append(QAExample(f"g{len(examples)}", question, context, (answer,), start))
    return examples[:n]
