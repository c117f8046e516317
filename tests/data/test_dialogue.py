"""data/dialogue.py: the generated café dialogues (held-out bookings unseen, every reference reply right by
its own slots), the answer check, word ids and contexts, and the Cornell reader on a tiny corpus zip written
in the real format."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from dlpractice.data.dialogue import (
    CORNELL,
    EOS,
    UNK,
    DialoguePairs,
    Vocab,
    answer_correct,
    cafe_conversations,
    context_ids,
    cornell_conversations,
    load_conversations,
    tokens,
)
from dlpractice.data.fetch import RealFile, sha256_of
from dlpractice.errors import DlpError


def bookings(talks: list) -> set[tuple[str, str, str]]:
    return {
        (s["day"], s["party"], s["time"])
        for talk in talks
        for *_, intent, s in talk
        if intent == "book_confirm"
    }


def test_held_out_dialogues_book_combinations_training_never_books() -> None:
    talks = cafe_conversations(n_train=600, n_eval=60)
    train, test = bookings(talks.splits["train"]), bookings(talks.splits["test"])
    assert train and test and not train & test
    assert talks.source == "embedded" and "generated" in talks.origin


def test_every_reference_reply_states_its_slots_and_no_other_value() -> None:
    data = DialoguePairs(cafe_conversations(n_train=300, n_eval=30))
    turns = [t for split in data.splits.values() for t in split]
    assert {"hours_followup", "price_followup", "book_confirm", "offer"} <= {t.task for t in turns}
    assert all(answer_correct(t.target, t.slots) for t in turns if t.slots)


def test_answer_check_wants_the_right_value_and_no_other() -> None:
    slots = {"day": "friday", "party": "for 4", "time": "at 7:30 pm", "name": "anna"}
    assert answer_correct("done: a table for 4 on friday at 7:30 pm, under anna.", slots)
    assert not answer_correct("done: a table for 4 on friday at 7 pm, under anna.", slots)  # wrong time
    assert not answer_correct("a table for 4 on friday or saturday at 7:30 pm, anna.", slots)  # two days
    price = {"item": "large chai latte", "price": "4.25"}
    assert answer_correct("a large chai latte is 4.25.", price)
    assert not answer_correct("a large latte is 4.25.", price)


def test_words_ids_and_contexts() -> None:
    assert tokens("We're open 7:30 am, the latte is 3.50!") == [
        *("we're", "open", "7:30", "am", ",", "the", "latte", "is", "3.50", "!"),
    ]
    vocab = Vocab.build(["hello there.", "hello!"])
    assert vocab.decode(vocab.encode("hello there!") + [EOS, 5]) == "hello there!"
    assert vocab.encode("goodbye there")[0] == UNK
    history = ["hello there.", "hello!", "hello hello there hello"]
    ids = context_ids(vocab, history, context_turns=2, max_len=3)
    # the last two turns, each cut to its last 3 words, <sep> between them, </s> at the end
    assert [vocab.words[i] for i in ids] == ["hello", "!", "<sep>", "hello", "there", "hello", "</s>"]


def write_cornell(path: Path) -> Path:
    """A corpus zip in the real layout: a folder, ' +++$+++ ' fields, ISO-8859-1 text."""
    lines = [
        "L1 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Can we make this quick?",
        "L2 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Well, I thought we'd start with pronunciation.",
        "L3 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Not the hacking and gagging, café.",
        "L4 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Okay... how 'bout French cuisine.",
        "L5 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ You're asking me out.",
    ]
    conversations = [
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L2', 'L3']",
        "u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L4', 'L5']",
    ]
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("cornell movie-dialogs corpus/movie_lines.txt", "\n".join(lines).encode("iso-8859-1"))
        zf.writestr(
            "cornell movie-dialogs corpus/movie_conversations.txt",
            "\n".join(conversations).encode("iso-8859-1"),
        )
    return path


def test_cornell_conversations_from_a_zip_in_the_real_format(tmp_path: Path) -> None:
    path = write_cornell(tmp_path / CORNELL.name)
    spec = RealFile(CORNELL.name, CORNELL.url, sha256_of(path), (CORNELL.name,))
    talks = cornell_conversations(tmp_path, spec)
    pairs = [pair[:2] for split in talks.splits.values() for talk in split for pair in talk]
    assert sorted(pairs) == sorted(
        [
            ("Can we make this quick?", "Well, I thought we'd start with pronunciation."),
            ("Well, I thought we'd start with pronunciation.", "Not the hacking and gagging, café."),
            ("Okay... how 'bout French cuisine.", "You're asking me out."),
        ]
    )
    assert talks.source == "real"


def test_missing_or_wrong_cornell_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    monkeypatch.setenv("DLP_HOME", str(tmp_path / "home"))
    with pytest.raises(DlpError, match="cornell_movie_dialogs_corpus.zip not found.*DLP_OFFLINE"):
        load_conversations("real", tmp_path, "cornell", 10, 2)
    assert load_conversations("auto", tmp_path, "cornell", 10, 2).source == "embedded"  # recorded as such
    write_cornell(tmp_path / CORNELL.name)
    for source in ("real", "auto"):  # a damaged copy is never replaced by the generated dialogues
        with pytest.raises(DlpError, match="checksum mismatch"):
            load_conversations(source, tmp_path, "cornell", 10, 2)
