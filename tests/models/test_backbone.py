"""The default backbone is the packaged MiniLM; a bad model name is one clear error."""

from __future__ import annotations

import pytest
from transformers import AutoConfig

from dlpractice.errors import DlpError
from dlpractice.models.backbone import DEFAULT_BACKBONE, load_pretrained, resolve_backbone


def test_default_is_the_packaged_minilm():
    config = load_pretrained(AutoConfig, DEFAULT_BACKBONE)
    assert (config.model_type, config.num_hidden_layers, config.hidden_size) == ("bert", 6, 384)


def test_a_local_directory_is_used_as_is(tmp_path):
    AutoConfig.for_model("bert", hidden_size=32, num_hidden_layers=1).save_pretrained(tmp_path)
    assert resolve_backbone(str(tmp_path)) == str(tmp_path)
    assert load_pretrained(AutoConfig, str(tmp_path)).hidden_size == 32


def test_a_directory_without_a_config_is_refused(tmp_path):
    with pytest.raises(DlpError, match="not a Hugging Face model directory"):
        resolve_backbone(str(tmp_path))


@pytest.mark.slow
def test_an_unreachable_hub_id_is_one_line(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(DlpError, match="cannot load model 'nobody/no-such-model'") as error:
        load_pretrained(AutoConfig, "nobody/no-such-model")
    assert "\n" not in str(error.value)
