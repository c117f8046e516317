"""Lab r4: the smoke preset end to end (every decoding scored, the figures, the served model replying as the
lab's beam search does), and real data that is not on disk refused in one line."""

from __future__ import annotations

import json

import pytest

from dlpractice.errors import DlpError
from dlpractice.runner import RunSpec, start_run


@pytest.mark.slow
def test_smoke_run_scores_every_decoding_and_serves_replies() -> None:
    outcome = start_run(RunSpec("r4", "smoke", data="embedded"))
    m = outcome.metrics
    for name in ("retrieval_TF_IDF", "bahdanau_greedy", "bahdanau_beam_2_alpha_1", "bahdanau_top_p_0p9_T_1"):
        assert 0 <= m[f"{name}_answer_accuracy"] <= 1
        assert 0 <= m[f"{name}_distinct_2"] <= 1
    assert outcome.value == m["answer_accuracy"] == m["bahdanau_greedy_answer_accuracy"]
    assert m["perplexity"] > 1
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= {
        "loss-bahdanau",
        "decoding",
        "attention",
    }
    assert "Example conversations" in outcome.report.read_text()
    failures = json.loads((outcome.run_dir / "failures.json").read_text())
    assert all(0 < case["confidence"] <= 1 and case["prediction"] != case["label"] for case in failures)

    from dlpractice.serve.app import served_from

    served = served_from(outcome.run_dir)
    assert (served.info["input"], served.info["output"]) == ("text", "text")
    answers = served.predictor.predict(
        [
            {"text": "hello!"},
            {"text": "how much is a large latte? | a large latte is 4.00. | and a small one?"},
        ]
    )
    assert len(answers) == 2 and all(isinstance(a["text"], str) for a in answers)


def test_real_corpus_missing_offline_is_one_line(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DLP_OFFLINE", "1")
    monkeypatch.setenv("DLP_DATA_DIR", str(tmp_path))
    with pytest.raises(DlpError, match="cornell_movie_dialogs_corpus.zip not found"):
        start_run(RunSpec("r4", "smoke", data="real"))
