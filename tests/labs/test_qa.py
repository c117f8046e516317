"""n8 QA: SQuAD EM/F1 against the official v1.1 script, span decoding against brute force, windows, smoke."""

from __future__ import annotations

import json
import random
import sys
from collections import Counter

import pytest

from dlpractice.data.squad import generate_questions, read_squad
from dlpractice.errors import DlpError
from dlpractice.labs.nlp import n8_qa
from dlpractice.metrics import squad
from dlpractice.practice.checks.test_n8_qa import CASES, official_f1_score, official_normalize_answer
from dlpractice.runner import RunSpec, start_run

# ---- the official SQuAD v1.1 evaluation script (evaluate-v1.1.py), its functions as published ----------
# (normalize_answer and f1_score stand in the n8 check module, which grades the learner's F1 against them)


def official_exact_match_score(prediction, ground_truth):
    return official_normalize_answer(prediction) == official_normalize_answer(ground_truth)


def official_metric_max_over_ground_truths(metric_fn, prediction, ground_truths):
    scores_for_ground_truths = []
    for ground_truth in ground_truths:
        score = metric_fn(prediction, ground_truth)
        scores_for_ground_truths.append(score)
    return max(scores_for_ground_truths)


def official_evaluate(dataset, predictions):
    f1 = exact_match = total = 0
    for article in dataset:
        for paragraph in article["paragraphs"]:
            for qa in paragraph["qas"]:
                total += 1
                if qa["id"] not in predictions:
                    message = "Unanswered question " + qa["id"] + " will receive score 0."
                    print(message, file=sys.stderr)
                    continue
                ground_truths = list(map(lambda x: x["text"], qa["answers"]))
                prediction = predictions[qa["id"]]
                exact_match += official_metric_max_over_ground_truths(
                    official_exact_match_score, prediction, ground_truths
                )
                f1 += official_metric_max_over_ground_truths(official_f1_score, prediction, ground_truths)
    exact_match = 100.0 * exact_match / total
    f1 = 100.0 * f1 / total
    return {"exact_match": exact_match, "f1": f1}


DATASET = [
    {
        "paragraphs": [
            {
                "context": "...",
                "qas": [
                    {"id": "q1", "answers": [{"text": "Denver Broncos"}, {"text": "the Broncos"}]},
                    {
                        "id": "q2",
                        "answers": [{"text": "Santa Clara, California"}, {"text": "Levi's Stadium"}],
                    },
                    {"id": "q3", "answers": [{"text": "February 7, 2016"}]},
                    {"id": "q4", "answers": [{"text": "gold"}]},
                ],
            }
        ]
    }
]
PREDICTIONS = {
    "q1": "Broncos",
    "q2": "Levi's Stadium in Santa Clara",
    "q3": "7 February 2016",
}  # q4 unanswered


def test_scores_match_the_official_evaluation():
    answers = {qa["id"]: [a["text"] for a in qa["answers"]] for qa in DATASET[0]["paragraphs"][0]["qas"]}
    ours = squad.squad_scores(PREDICTIONS, answers)
    theirs = official_evaluate(DATASET, PREDICTIONS)
    assert 100 * ours["exact_match"] == pytest.approx(theirs["exact_match"])
    assert 100 * ours["f1"] == pytest.approx(theirs["f1"])
    for prediction, truth in CASES:
        assert squad.exact_match(prediction, truth) == official_exact_match_score(prediction, truth)


def test_failure_kinds():
    assert squad.failure_kind("the Denver Broncos", ["Denver Broncos"]) == "exact"
    assert squad.failure_kind("Denver Broncos team", ["Denver Broncos"]) == "too long"
    assert squad.failure_kind("Broncos", ["Denver Broncos"]) == "too short"
    assert squad.failure_kind("Broncos of Colorado", ["Denver Broncos"]) == "overlaps"
    assert squad.failure_kind("Carolina", ["Denver Broncos"]) == "elsewhere"
    assert squad.failure_kind("", ["Denver Broncos"]) == "no answer"
    assert squad.failure_kind("art", ["start"]) == "elsewhere"  # whole words, not characters


def test_windows_point_at_the_answer(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    examples = generate_questions(30, 3, random.Random(1))
    cfg = n8_qa.Config(max_length=64, stride=16)
    windows = n8_qa.make_windows(examples, tokenizer, cfg)
    targets = windows.tensors[3].tolist()
    holding: Counter = Counter()
    for w, (start, end) in enumerate(targets):
        e = examples[windows.example[w]]
        if (start, end) != (0, 0):
            holding[windows.example[w]] += 1
            text = e.context[windows.offsets[w][start][0] : windows.offsets[w][end][1]]
            assert text.lower() == e.answers[0].lower()
    assert set(holding) == set(range(len(examples)))  # every answer lies whole in some window
    assert any(not windows.first[w] for w in range(len(targets)) if targets[w] != [0, 0])  # ... some later
    assert windows.tensors[0].shape[1] == 64 and sum(windows.first) == len(examples)


def test_read_squad(tmp_path):
    path = tmp_path / "dev-v1.1.json"
    qas = [
        {"id": "a", "question": "Who?", "answers": [{"text": "Tesla", "answer_start": 4}, {"text": "Tesla"}]}
    ]
    path.write_text(
        json.dumps({"data": [{"title": "t", "paragraphs": [{"context": "Mr. Tesla.", "qas": qas}]}]})
    )
    [[example]] = read_squad(path)
    assert example.answers == ("Tesla", "Tesla") and example.context[example.answer_start :].startswith(
        "Tesla"
    )


@pytest.mark.slow
def test_smoke_run(tiny_bert):
    outcome = start_run(RunSpec("n8", "smoke", (f"model={tiny_bert}",), data="embedded"))
    m = outcome.metrics
    assert outcome.value == m["test_f1"] and 0 <= m["test_f1"] <= 1 and 0 <= m["first_window_f1"] <= 1
    assert m["multi_window_questions"] > 0 and m["windows_per_question"] > 1
    n_test = outcome.record.data_info["test_questions"]
    assert sum(m[f"answers_{k.replace(' ', '_')}"] for k in squad.FAILURE_KINDS) == n_test
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures == {"loss", "logits", "failures", "f1_by_question_word"}
    assert "| first window only |" in outcome.report.read_text()


@pytest.mark.slow
def test_missing_squad_is_a_one_line_error(tmp_path):
    with pytest.raises(DlpError, match="train-v1.1.json not found.*put https://rajpurkar"):
        start_run(RunSpec("n8", "smoke", data="real", data_dir=str(tmp_path)))
