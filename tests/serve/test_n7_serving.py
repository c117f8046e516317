"""n7 served: text in, entities out (type, character span, score) from the run's transformer, the same
model and word split the run was scored with; failures.json holds its most confident wrong entities."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from dlpractice.data.conll import ENTITY_TYPES
from dlpractice.errors import DlpError
from dlpractice.recipes.serving import entity_failures, entity_spans, split_words, word_values


def lab_fixtures():
    """tests/labs/conftest.py, for its tiny BERT checkpoint (a conftest's fixtures reach its folder only)."""
    path = Path(__file__).parents[1] / "labs" / "conftest.py"
    spec = importlib.util.spec_from_file_location("labs_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tiny_bert = lab_fixtures().tiny_bert  # a fixture here too


# ---- the tagger's pieces: no model ----------------------------------------------------------------------


def test_words_keep_their_character_offsets():
    text = "Real Madrid beat Bayern 2-1 in O'Neill's town, on Monday."
    words = split_words(text)
    assert [w for w, _, _ in words] == [
        "Real", "Madrid", "beat", "Bayern", "2-1", "in", "O'Neill's", "town", ",", "on", "Monday", ".",
    ]  # fmt: skip
    assert all(text[a:b] == w for w, a, b in words)


def test_each_word_takes_its_first_pieces_value_and_a_cut_word_the_default():
    word_ids = [None, 0, 0, 1, 2, 2, None]  # word 3 was cut off by max_length
    assert word_values(word_ids, list("xabcdez"), 4, default="-") == ["a", "c", "d", "-"]


def test_entities_are_iob2_spans_scored_by_the_mean_probability_of_their_tags():
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-ORG"]
    scores = [0.9, 0.7, 0.99, 0.6, 0.5, 0.4]
    found = [(t, a, b, round(s, 6)) for t, a, b, s in entity_spans(tags, scores)]
    assert found == [("PER", 0, 1, 0.8), ("LOC", 3, 3, 0.6), ("LOC", 4, 4, 0.5), ("ORG", 5, 5, 0.4)]


def test_failures_are_the_wrong_predicted_entities_most_confident_first():
    words = ["Ann", "Lee", "met", "Bob", "in", "Rome"]
    gold = ["B-PER", "I-PER", "O", "B-PER", "O", "B-LOC"]
    pred = ["B-PER", "O", "B-LOC", "B-PER", "O", "B-ORG"]  # boundary, spurious, right, type
    cases = entity_failures([words], [gold], [pred], [[0.5, 0.1, 0.7, 0.99, 0.1, 0.9]])
    assert [(c["prediction"], c["label"], c["truth"], c["confidence"]) for c in cases] == [
        ("ORG", "LOC", "Rome", 0.9),
        ("LOC", "O", "", 0.7),
        ("PER", "PER", "Ann Lee", 0.5),
    ]
    assert cases[0]["input"] == "Ann Lee met Bob in [Rome]"
    assert entity_failures([words], [gold], [gold], [[1.0] * 6]) == []  # a perfect tagger: none


# ---- a tiny n7 run, served --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def n7_run(tmp_path_factory, tiny_bert):
    from dlpractice.runner import RunSpec, start_run

    overrides = (f"model={tiny_bert}", "steps=80", "lr=3e-3", "crf_steps=20")  # enough to tag some words
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DLP_HOME", str(tmp_path_factory.mktemp("home-n7")))
        env.setenv("DLP_THREADS", "1")
        env.setenv("DLP_OFFLINE", "1")
        env.delenv("DLP_TRACKING_URI", raising=False)
        return start_run(RunSpec("n7", "smoke", overrides, data="embedded")).run_dir


@pytest.fixture(scope="module")
def client(n7_run):
    from fastapi.testclient import TestClient

    from dlpractice.serve.app import build_app, served_from

    with TestClient(build_app(served_from(n7_run))) as c:
        yield c


@pytest.mark.slow
def test_served_entities_are_spans_of_the_text_with_a_type_and_a_score(client):
    texts = ["Police in Berlin arrested John Smith on Friday.", "Fans of Boston United greeted Maria Lopez ."]
    found = []
    for text in texts:
        answer = client.post("/predict", json={"text": text})
        assert answer.status_code == 200
        assert answer.json()["text"] == text
        found += [(text, e) for e in answer.json()["entities"]]
    assert found, "the tagger found no entity at all"
    for text, e in found:
        assert text[e["start"] : e["end"]] == e["text"] and e["type"] in ENTITY_TYPES and 0 < e["score"] <= 1
    model = client.get("/model").json()
    assert model["lab"] == "n7" and model["output"] == "entities"
    assert "EntitiesAnswer" in client.get("/openapi.json").text
    assert client.get("/ui/").status_code == 200  # the page builds (highlighted entities)
    assert client.post("/predict", json={"text": ""}).status_code == 422


@pytest.mark.slow
def test_failure_cases_are_what_the_served_model_predicts_on_those_sentences(client):
    cases = client.get("/failures").json()
    confidences = [c["confidence"] for c in cases]
    assert cases and confidences == sorted(confidences, reverse=True)
    for case in cases[:5]:  # the served model, given the sentence, makes the same mistake, as sure of it
        entity = case["input"].split("[", 1)[1].split("]", 1)[0]
        text = case["input"].replace("[", "").replace("]", "")
        served = client.post("/predict", json={"text": text}).json()["entities"]
        same = [e for e in served if e["text"] == entity and e["type"] == case["prediction"]]
        assert same and same[0]["score"] == pytest.approx(case["confidence"], abs=2e-3), (case, served)
        assert (case["label"], case["truth"]) != (case["prediction"], entity)  # wrong, not a right entity
    label = cases[0]["label"]
    assert {c["label"] for c in client.get("/failures", params={"label": label}).json()} == {label}


@pytest.mark.slow
def test_a_run_without_its_tagger_is_one_line(n7_run, tmp_path):
    from dlpractice.serve.app import served_from

    copy = shutil.copytree(n7_run, tmp_path / n7_run.name)
    (copy / "tagger" / "config.json").unlink()
    with pytest.raises(DlpError, match="has no tagger to serve"):
        served_from(copy)
