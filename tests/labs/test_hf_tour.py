"""n1 the Hugging Face tour: the smoke run shows every step, offline, on a tiny BERT; the local hub."""

from __future__ import annotations

import pytest
import torch
from transformers import AutoConfig, BertConfig, BertForSequenceClassification

from dlpractice.labs.nlp import n1_hf_tour as n1
from dlpractice.runner import RunSpec, start_run


@pytest.mark.slow
def test_smoke_run_shows_every_step(tiny_bert, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # any attempt to reach the Hub fails the test
    outcome = start_run(RunSpec("n1", "smoke", (f"model={tiny_bert}",), data="embedded"))
    m = outcome.metrics
    assert outcome.record.data_source == "embedded"
    assert m["pipeline_vs_manual_max_diff"] < 1e-4  # the pipeline pools what we pooled by hand
    assert m["reload_max_abs_diff"] == 0 and m["hub_reload_max_abs_diff"] == 0
    assert 0 <= outcome.value == m["pipeline_accuracy"] <= 1 and m["vocab_size"] > 100
    text = outcome.report.read_text()
    for step in (
        "1 · AutoTokenizer",
        "2 · AutoModel",
        "3 · pipeline('feature-extraction')",
        "4 · datasets",
        "5 · Trainer",
        "6 · save_pretrained",
        "7 · A local hub",
        "8 · pipeline('text-classification')",
    ):
        assert f"## {step}" in text, step
    assert "train_test_split" in text and "refs/main" not in text
    figures = {p.stem for p in (outcome.run_dir / "figures").glob("*.png")}
    assert figures == {"similarity", "lengths", "loss"}
    hub = outcome.run_dir / "hub" / "models--dlpractice--n1-sentiment"
    revision = (hub / "refs" / "main").read_text()
    assert (hub / "snapshots" / revision / "model.safetensors").is_file()


def test_local_hub_push_is_loadable_by_repo_id(tmp_path):
    torch.manual_seed(0)
    sizes = {"hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
    config = BertConfig(vocab_size=50, num_labels=3, **sizes)
    BertForSequenceClassification(config).save_pretrained(tmp_path / "saved")
    revision = n1.push_to_local_hub(tmp_path / "saved", tmp_path / "hub", "someone/tiny")
    assert revision == n1.push_to_local_hub(
        tmp_path / "saved", tmp_path / "hub", "someone/tiny"
    )  # same files
    loaded = AutoConfig.from_pretrained(
        "someone/tiny", cache_dir=str(tmp_path / "hub"), local_files_only=True
    )
    assert loaded.num_labels == 3 and loaded.hidden_size == 16


def test_mean_pool_ignores_padding():
    hidden = torch.arange(12.0).reshape(1, 4, 3).repeat(2, 1, 1)  # (B, T, H)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    pooled = n1.mean_pool(hidden, mask)
    torch.testing.assert_close(pooled[1], hidden[1, :2].mean(0))
    torch.testing.assert_close(pooled[0], hidden[0].mean(0))
