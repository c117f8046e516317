"""n10 instruction tuning: ROUGE-L against rouge_score, the prompt-masked loss, our LoRA layer against peft's,
batched greedy decoding, packing, and the smoke run from an n9 base (served afterwards)."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from dlpractice.config import build_config
from dlpractice.data.batching import LengthBatches
from dlpractice.errors import DlpError
from dlpractice.labs.nlp import n10_instruction_tuning as n10
from dlpractice.metrics.rouge import exact_match, rouge_l
from dlpractice.models import lora
from dlpractice.models.gpt import GPT, GPTConfig
from dlpractice.recipes.base_lm import load_base
from dlpractice.runner import RunSpec, start_run


def test_rouge_l_equals_rouge_score():
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rougeL"])
    rng = random.Random(0)
    vocabulary = ["the", "a", "cat", "dog", "sat", "on", "mat", "The", "42", "run-time", "it's", "x"]
    pairs = [
        ("The cat sat on the mat.", "the cat is on a mat"),
        ("", "anything"),
        ("same words", "Same words!"),
    ]
    pairs += [
        (
            " ".join(rng.choices(vocabulary, k=rng.randint(1, 12))),
            " ".join(rng.choices(vocabulary, k=rng.randint(0, 12))),
        )
        for _ in range(200)
    ]
    for reference, candidate in pairs:
        expected = scorer.score(reference, candidate)["rougeL"].fmeasure
        assert rouge_l(reference, candidate) == pytest.approx(expected, abs=1e-12), (reference, candidate)
    assert exact_match("The cat sat.", " the  cat sat. ") and not exact_match("The cat sat.", "The cat sat")


def test_masked_targets_train_only_the_response():
    prompt, response = [5, 6, 7, 8], [9, 10, 2]
    inputs, targets = n10.sft_example(prompt, response)
    assert inputs == [5, 6, 7, 8, 9, 10] and targets == [-100, -100, -100, 9, 10, 2]
    assert n10.sft_example(prompt, response, mask_prompt=False)[1] == [6, 7, 8, 9, 10, 2]
    logits = torch.randn(1, 6, 12)
    _, loss = GPTLossProbe(logits)(torch.tensor([inputs]), torch.tensor([targets]))
    by_hand = F.cross_entropy(logits[0, 3:], torch.tensor(response))  # the last three positions only
    torch.testing.assert_close(loss, by_hand)


class GPTLossProbe(nn.Module):
    """Fixed logits through the GPT's own loss (models/gpt.lm_loss): what the masked targets meet."""

    def __init__(self, logits: torch.Tensor):
        super().__init__()
        self.logits = logits

    def forward(self, idx, targets):
        from dlpractice.models.gpt import lm_loss

        return self.logits, lm_loss(self.logits, targets)


def test_our_lora_linear_equals_peft_on_the_same_weights():
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    layer = nn.Linear(12, 20, bias=False)
    ours = lora.LoRALinear(nn.Linear(12, 20, bias=False), rank=4, alpha=8.0)
    ours.base.load_state_dict(layer.state_dict())
    theirs = get_peft_model(nn.Sequential(layer), LoraConfig(r=4, lora_alpha=8, target_modules=["0"]))
    wrapped = theirs.base_model.model[0]
    nn.init.normal_(wrapped.lora_B["default"].weight)  # B starts at zero: make the update visible
    with torch.no_grad():
        ours.lora_A.copy_(wrapped.lora_A["default"].weight)
        ours.lora_B.copy_(wrapped.lora_B["default"].weight)
    x = torch.randn(3, 5, 12)
    torch.testing.assert_close(ours(x), theirs(x))
    assert not torch.allclose(ours(x), layer(x))
    assert [n for n, p in ours.named_parameters() if p.requires_grad] == ["lora_A", "lora_B"]


def tiny_gpt(vocab: int = 20, block_size: int = 24) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab, block_size=block_size, n_layer=2, n_head=2, n_embd=16))


def test_ours_and_peft_adapt_the_same_layers():
    counts = {}
    for impl in ("peft", "ours"):
        model = lora.with_lora(tiny_gpt(), rank=8, alpha=16.0, impl=impl)
        counts[impl] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert counts["ours"] == counts["peft"] == 2 * (8 * (16 + 48) + 8 * (16 + 16) + 8 * (16 + 64) * 2)
    assert lora.lora_targets(tiny_gpt())[:2] == ["blocks.0.attn.c_attn", "blocks.0.attn.c_proj"]


def test_batched_greedy_decoding_equals_one_prompt_at_a_time():
    model = tiny_gpt()
    prompts = [[1, 2, 3], [4, 5, 6, 7, 8, 9], [10], [3, 3, 3, 3]]
    batched = n10.greedy_responses(model, prompts, eot=0, max_new=6)
    alone = [n10.greedy_responses(model, [p], eot=0, max_new=6)[0] for p in prompts]
    assert batched == alone and all(len(ids) == 6 for ids in batched)


def test_packing_lays_examples_end_to_end_without_padding():
    pairs = [([1, 2, 3], [4, 0]), ([5, 6], [7, 8, 0]), ([9, 1, 1], [2, 0])] * 4
    (x, y), lengths = n10.padded(pairs, mask=True)
    evaluation = LengthBatches({"train": (x, y), "val": (x, y)}, {"train": lengths, "val": lengths})
    packed = n10.PackedBatches(pairs, block_size=8, evaluation=evaluation)
    rows_x, rows_y = packed.rows.splits["train"]
    assert rows_x.shape == rows_y.shape == (6, 8)  # 12 examples of 4 tokens, no padding
    assert rows_x.flatten().tolist() == [1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 1, 2] * 4
    assert rows_y.flatten().tolist() == [-100, -100, 4, 0, -100, 7, 8, 0, -100, -100, 2, 0] * 4


@pytest.mark.slow
def test_smoke_run_from_an_n9_base_and_serving():
    overrides = ("sample_tokens=0", "block_size=192")  # a context that holds the generated instructions
    base = start_run(RunSpec("n9", "smoke", data="embedded", overrides=overrides))
    outcome = start_run(RunSpec("n10", "smoke", data="embedded", overrides=(f"base={base.run_id}",)))
    m = outcome.metrics
    for variant in ("base", "full", "unmasked", "packed", "lora"):
        assert 0 <= m[f"{variant}_rouge_l"] <= 1 and 0 <= m[f"{variant}_exact_match"] <= 1
    assert m["lora_trainable_params"] < m["full_trainable_params"] == m["packed_trainable_params"]
    assert m["packed_steps"] < m["full_steps"]  # the same epochs in fuller rows
    assert not (outcome.run_dir / "pretrain").exists()  # the base came from the n9 run
    report = outcome.report.read_text()
    assert "Held-out generations" in report and "exact match" in report
    cfg = build_config(n10.Config, n10.PRESETS, "smoke", [f"base={base.run_id}"])
    predictor = n10.SERVING.load(outcome.run_dir, cfg)
    request = {"prompt": "Name a colour.", "max_tokens": 5, "temperature": 1.0, "top_k": 0}
    (answer,) = predictor.predict([request])
    assert answer["text"].startswith("Name a colour.\n\n")
    with pytest.raises(DlpError, match="a run of lab n10, not n9"):
        load_base(outcome.run_id)
