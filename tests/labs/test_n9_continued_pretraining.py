"""n9 continued pre-training: the smoke run, the base it leaves for n10, and the Hugging Face path on tiny
GPT-2-style and Llama-style checkpoints the tests build (nothing is downloaded)."""

from __future__ import annotations

import json

import pytest
import torch

from dlpractice.errors import DlpError
from dlpractice.home import runs_dir
from dlpractice.models.gpt import GPT
from dlpractice.recipes import base_lm
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="session", params=["gpt2", "llama"])
def tiny_causal_lm(request, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tiny_causal_lm(request.param, tmp_path_factory)


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_tiny_causal_lm("llama", tmp_path_factory)


def build_tiny_causal_lm(family: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A directory like a Hub checkpoint: a one-layer, 32-wide causal LM of the given family with random
    weights and a byte-level BPE tokenizer (300 tokens) trained on the language reference."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import (
        GPT2Config,
        GPT2LMHeadModel,
        LlamaConfig,
        LlamaForCausalLM,
        PreTrainedTokenizerFast,
    )

    from dlpractice.data.prose import EOT, embedded_prose

    directory = tmp_path_factory.mktemp(f"tiny-{family}")
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=[EOT], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    bpe.train_from_iterator([embedded_prose(50_000)], trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token=EOT)
    tokenizer.save_pretrained(directory)
    size = {"vocab_size": len(tokenizer)}
    if family == "gpt2":
        model = GPT2LMHeadModel(GPT2Config(n_layer=1, n_head=2, n_embd=32, n_positions=256, **size))
    else:
        config = LlamaConfig(
            hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2, **size
        )
        model = LlamaForCausalLM(config)
    model.save_pretrained(directory)
    return str(directory)


def test_hub_model_follows_the_contract_and_its_loss_is_the_models_own(tiny_causal_lm):
    """Our loss on (ids[:-1], ids[1:]) equals what the HF model computes itself from labels=ids."""
    base = base_lm.load_hub(tiny_causal_lm, block_size=32)
    ids = torch.tensor([base.codec.encode("def f(x):\n    return x + 1\n" * 2)[:20]])
    logits, loss = base.model(ids[:, :-1], ids[:, 1:])
    assert logits.shape == (1, 19, base.codec.vocab_size)
    torch.testing.assert_close(loss, base.model.hf(input_ids=ids, labels=ids).loss)
    assert base.codec.decode(ids[0].tolist()).startswith("def f(x):")
    assert base.model.block_size == 32


def test_a_missing_hub_model_is_one_line(tmp_path):
    with pytest.raises(DlpError, match="cannot load causal LM"):
        base_lm.load_hub(str(tmp_path / "nowhere"), 32)


def test_base_must_be_a_run_of_n9():
    with pytest.raises(DlpError, match="no run 'n9-missing'"):
        base_lm.load_base("n9-missing")
    other = runs_dir() / "n6-20260101-000000-abcd"
    other.mkdir(parents=True)
    (other / "run.json").write_text(json.dumps({"lab": "n6"}))
    with pytest.raises(DlpError, match="a run of lab n6, not n9"):
        base_lm.load_base(other.name)


@pytest.mark.slow
def test_smoke_run_leaves_a_base_for_n10():
    outcome = start_run(RunSpec("n9", "smoke", data="embedded"))
    m = outcome.metrics
    assert m["continued_code_ppl"] < m["base_code_ppl"] and m["code_ppl_drop"] == m["continued_code_ppl_drop"]
    assert m["low_lr_code_ppl_drop"] < m["continued_code_ppl_drop"]  # a tenth of the rate learns less
    assert 1 < m["base_prose_ppl"] < 300 and m["base_code_ppl"] < 300  # vocabulary of 300 tokens
    assert {p.name for p in outcome.run_dir.iterdir() if p.is_dir()} >= {"pretrain", *base_lm_variants()}
    assert (outcome.run_dir / "figures" / "change.png").is_file()
    base = base_lm.load_base(outcome.run_id)
    assert isinstance(base.model, GPT) and base.codec.vocab_size == 300
    assert base.codec.decode(base.codec.encode("def f():\n    pass")) == "def f():\n    pass"


def base_lm_variants() -> tuple[str, ...]:
    from dlpractice.labs.nlp.n9_continued_pretraining import VARIANTS

    return VARIANTS


@pytest.mark.slow
def test_smoke_run_from_a_hub_model(tiny_llama):
    overrides = (f"model={tiny_llama}", "sample_tokens=0")
    outcome = start_run(RunSpec("n9", "smoke", overrides=overrides, data="embedded"))
    m = outcome.metrics
    assert m["continued_code_ppl"] < m["base_code_ppl"]
    assert not (outcome.run_dir / "pretrain").exists()  # started from the checkpoint, not pre-trained


def test_lora_adapts_every_linear_layer_of_a_hub_model(tiny_causal_lm):
    """n10's LoRA on the same checkpoints: peft wraps GPT-2's Conv1D and Llama's nn.Linear layers alike,
    the output head excluded, and the wrapped model still follows the contract."""
    from dlpractice.models.lora import lora_targets, with_lora

    base = base_lm.load_hub(tiny_causal_lm, block_size=32)
    targets = lora_targets(base.model)
    per_block = 4 if "gpt2" in tiny_causal_lm else 7  # c_attn, c_proj, c_fc, mlp c_proj | q, k, v, o, 3 MLP
    assert len(targets) == per_block and not any("lm_head" in t for t in targets)
    adapted = with_lora(base.model, rank=4, alpha=8.0)
    trainable = [n for n, p in adapted.named_parameters() if p.requires_grad]
    assert len(trainable) == 2 * per_block and all("lora_" in n for n in trainable)
    ids = torch.tensor([base.codec.encode("def f(x): return x")[:8]])
    logits, loss = adapted(ids[:, :-1], ids[:, 1:])
    assert logits.shape[:2] == (1, 7) and loss.requires_grad


@pytest.mark.slow
def test_the_encoder_part_adapts_a_bert_to_reviews_and_saves_it_for_n6(tiny_bert):
    from transformers import AutoModel

    overrides = (
        "mlm_steps=6",
        f"mlm_model={tiny_bert}",
        "mlm_head_steps=4",
        "mlm_eval_texts=16",
        "mlm_batch_size=8",
    )
    outcome = start_run(RunSpec("n9", "smoke", overrides, data="embedded"))
    m = outcome.metrics
    for variant in ("adapted", "adapted_replay"):
        drop, rise = m[f"mlm_{variant}_new_ppl_drop"], m[f"mlm_{variant}_old_ppl_rise"]
        assert drop == pytest.approx(1 - m[f"mlm_{variant}_new_ppl"] / m["mlm_base_new_ppl"])
        assert rise == pytest.approx(m[f"mlm_{variant}_old_ppl"] / m["mlm_base_old_ppl"] - 1)
    assert m["mlm_base_old_ppl"] < m["mlm_raw_old_ppl"]  # fitting the head on prose lowers prose perplexity
    assert (
        m["mlm_adapted_new_ppl"] < m["mlm_base_new_ppl"]
    )  # random tiny weights: any training on reviews helps
    encoder = AutoModel.from_pretrained(outcome.run_dir / "encoder" / "minilm-adapted")
    assert encoder.config.hidden_size == 32
    assert "Masked-LM perplexity of the encoder" in outcome.report.read_text()


def test_an_encoder_without_a_masked_lm_layout_is_a_one_line_error(tiny_llama):
    from dlpractice.recipes.mlm_domain import masked_lm

    with pytest.raises(DlpError, match="not a BERT-layout masked LM"):
        masked_lm(tiny_llama)


def test_prose_is_cut_into_pieces_of_about_the_asked_size():
    from dlpractice.recipes.mlm_domain import prose_pieces

    pieces = prose_pieces("word " * 1000, size=50)
    assert all(45 <= len(p) <= 60 for p in pieces) and len(pieces) == 1000 * 5 // 55
