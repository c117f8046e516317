"""`dlp serve`'s app through FastAPI's TestClient: an l2 run (prompt in, name out) and an n6 run (sentence
in, label and probabilities out); bad input is 413 or 422 with a message, never a 5xx; a run that cannot
be served is one line."""

from __future__ import annotations

import asyncio
import json
import shutil

import httpx
import pytest
from fastapi.testclient import TestClient

from dlpractice.errors import DlpError
from dlpractice.serve.app import build_app, served_from

pytestmark = pytest.mark.slow  # each module's first test trains its run (seconds)


@pytest.fixture(scope="module")
def l2(l2_run):
    return served_from(l2_run)


@pytest.fixture
def client(l2):
    with TestClient(build_app(l2, ui=False, max_body=2000)) as c:
        yield c


def test_l2_completes_the_prompt_and_top_k_1_is_greedy(client):
    answer = client.post("/predict", json={"prompt": "em", "max_tokens": 10, "top_k": 1}).json()
    assert answer["text"].startswith("em") and len(answer["text"]) <= 12
    again = client.post("/predict", json={"prompt": "em", "max_tokens": 10, "top_k": 1}).json()
    assert again == answer  # one choice per step: nothing random left
    assert set(client.post("/predict", json={}).json()) == {"text"}  # every field has a default


def test_model_and_health_say_what_is_served(client, l2_run):
    model = client.get("/model").json()
    assert model["lab"] == "l2" and model["run_id"] == l2_run.name and model["metric"] == "val_loss"
    assert model["data"]["source"] == "embedded" and model["commit"] != "" and model["input"] == "prompt"
    assert model["value"] == pytest.approx(json.loads((l2_run / "run.json").read_text())["value"])
    assert client.get("/health").json()["status"] == "ok"
    assert "/predict" in client.get("/openapi.json").json()["paths"]
    assert client.get("/docs").status_code == 200


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"prompt": 3}, "valid string"),
        ({"prompt": "em", "temperature": "hot"}, "valid number"),
        ({"prompt": "em", "temperature": 0}, "greater than or equal to 0.01"),
        ({"prompt": "em", "max_tokens": 0}, "greater than or equal to 1"),
        ({"prompt": "em", "top_k": -1}, "greater than or equal to 0"),
        ({"prompt": "a" * 21}, "at most 20 characters"),
        ({"prompt": "Em!"}, "characters the model never saw: '!E'"),
        ({"prompt": "em", "colour": "red"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_requests_are_422_with_a_message(client, body, message):
    response = client.post("/predict", json=body)
    assert response.status_code == 422 and message in response.text


def test_nan_json_and_a_body_over_the_limit_are_rejected(client):
    nan = client.post("/predict", content=b'{"prompt": "em", "temperature": NaN}')
    assert nan.status_code == 422
    big = client.post("/predict", json={"prompt": "a" * 3000})
    assert big.status_code == 413 and "over 2000 bytes" in big.json()["detail"]
    chunked = client.post("/predict", content=iter([b'{"prompt": "', b"a" * 3000, b'"}']))
    assert chunked.status_code == 413


def test_concurrent_requests_share_model_calls_and_each_gets_its_own_prompt(l2):
    app = build_app(l2, ui=False, max_batch=16, max_wait_ms=100)
    prompts = [chr(ord("a") + i % 26) * (1 + i // 26) for i in range(32)]

    async def all_at_once() -> list[dict]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://serve") as http:
            sent = (http.post("/predict", json={"prompt": p, "max_tokens": 5}) for p in prompts)
            return [r.json() for r in await asyncio.gather(*sent)]

    answers = asyncio.run(all_at_once())
    assert [a["text"][: len(p)] for a, p in zip(answers, prompts)] == prompts
    stats = app.state.batcher.stats
    assert stats.items == 32 and stats.calls <= 4  # one at a time would be 32 calls


def test_the_page_is_mounted_beside_the_api(l2):
    pytest.importorskip("gradio", reason="the page needs gradio (the serve extra)")
    with TestClient(build_app(l2)) as client:
        assert client.get("/ui/").status_code == 200
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui"
        assert client.post("/predict", json={"prompt": "jo"}).json()["text"].startswith("jo")


def test_n6_gives_a_label_with_probabilities_and_its_failure_cases(n6_run):
    served = served_from(n6_run)
    failures = json.loads((n6_run / "failures.json").read_text())
    assert failures and set(failures[0]) == {"input", "label", "prediction", "confidence"}
    assert all(f["label"] != f["prediction"] for f in failures)
    confidences = [f["confidence"] for f in failures]
    assert confidences == sorted(confidences, reverse=True)
    with TestClient(build_app(served, ui=False)) as client:
        answer = client.post("/predict", json={"text": "a gripping , beautifully acted film"}).json()
        assert set(answer["probabilities"]) == {"negative", "positive"}
        assert sum(answer["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        assert answer["label"] == max(answer["probabilities"], key=answer["probabilities"].get)
        assert client.post("/predict", json={"text": ""}).status_code == 422
        assert client.post("/predict", json={"text": "x" * 2001}).status_code == 422
        negatives = client.get("/failures", params={"label": "negative"}).json()
        assert negatives == [f for f in failures if f["label"] == "negative"]


def test_n6_serves_the_model_its_report_analyses(n6_run):
    """The cnn (the last model) answers, not the bag: its weights are the ones in cnn/."""
    served = served_from(n6_run)
    (n6_run / "cnn" / "model.safetensors").rename(n6_run / "cnn" / "moved")
    try:
        with pytest.raises(DlpError, match="has no trained weights"):
            served_from(n6_run)
    finally:
        (n6_run / "cnn" / "moved").rename(n6_run / "cnn" / "model.safetensors")
    assert served.predictor.predict([{"text": "fine"}])[0]["label"] in ("negative", "positive")


def finished_copy(run_dir, tmp_path):
    copy = tmp_path / run_dir.name
    shutil.copytree(run_dir, copy)
    return copy


def test_runs_that_cannot_be_served_are_one_line(l2_run, tmp_path):
    damaged = finished_copy(l2_run, tmp_path / "damaged")
    (damaged / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{not json")
    with pytest.raises(DlpError, match="unreadable"):
        served_from(damaged)
    unfinished = finished_copy(l2_run, tmp_path / "unfinished")
    record = json.loads((unfinished / "run.json").read_text())
    (unfinished / "run.json").write_text(json.dumps({**record, "status": "interrupted"}))
    with pytest.raises(DlpError, match="is interrupted: only a finished run can be served"):
        served_from(unfinished)
    (unfinished / "run.json").write_text("{")
    with pytest.raises(DlpError, match="unreadable"):
        served_from(unfinished)
    no_spec = finished_copy(l2_run, tmp_path / "nospec")
    (no_spec / "run.json").write_text(json.dumps({**record, "lab": "f3", "config": {}}))
    with pytest.raises(DlpError, match="lab f3 has no serving spec"):
        served_from(no_spec)
