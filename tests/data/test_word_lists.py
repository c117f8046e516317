"""The generated datasets' word lists, written as comma-separated strings (`data.phrases`): each entry is
one clean word or phrase, so a line break in the source never glues two entries together."""

from __future__ import annotations

import pytest

from dlpractice.data import conll, phrases, sentiment, squad, words


def test_phrases_split_on_commas_only():
    assert phrases("the film, this movie, plot") == ("the film", "this movie", "plot")
    assert words.pairs("king queen, man woman") == [("king", "queen"), ("man", "woman")]


LISTS = {
    "conll.PLACES": conll.PLACES,
    "conll.NATIONALITIES": conll.NATIONALITIES,
    "conll.EVENTS": conll.EVENTS,
    "conll.ORGANISATIONS": conll.ORGANISATIONS,
    "sentiment.SUBJECTS": sentiment.SUBJECTS,
    "sentiment.POSITIVE": sentiment.POSITIVE,
    "sentiment.NEGATIVE": sentiment.NEGATIVE,
    "sentiment.PADDING": sentiment.PADDING,
    "squad.SUBJECTS": squad.SUBJECTS,
    "squad.JOBS": squad.JOBS,
}


@pytest.mark.parametrize("name", sorted(LISTS))
def test_every_entry_is_one_clean_phrase(name):
    entries = LISTS[name]
    assert len(set(entries)) == len(entries) > 5, name
    for entry in entries:
        assert entry and entry == " ".join(entry.split()) and "," not in entry, (name, entry)
    if name.endswith(("NATIONALITIES", "POSITIVE", "NEGATIVE", "squad.SUBJECTS", "JOBS")):
        assert all(" " not in entry for entry in entries), name  # lists of single words


def test_relations_are_pairs_of_single_words():
    for relation, pairs in words.RELATIONS.items():
        assert pairs and all(len(pair) == 2 and all(w.isalpha() for w in pair) for pair in pairs), relation
