"""Layer-wise learning-rate decay: every parameter in one group, the rates falling layer by layer; the top
layers re-initialised; R-Drop's loss; the masked-positions-only MLM loss; a Trainer's arguments and history
from a run."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from transformers import BertConfig, BertForMaskedLM, BertForSequenceClassification

from dlpractice.errors import DlpError
from dlpractice.models.finetune import (
    MaskedPositionsOnly,
    check_reinit_layers,
    layer_depth,
    layerwise_groups,
    layerwise_optimizer,
    rdrop_trainer,
    reinit_top_layers,
    trainer_history,
    training_arguments,
)


def tiny_classifier(n_layers: int = 3) -> BertForSequenceClassification:
    sizes = {"hidden_size": 8, "num_attention_heads": 2, "intermediate_size": 16}
    config = BertConfig(vocab_size=50, num_hidden_layers=n_layers, num_labels=2, **sizes)
    return BertForSequenceClassification(config)


def test_depths_of_bert_parameter_names():
    assert layer_depth("bert.embeddings.word_embeddings.weight", 3) == 0
    assert layer_depth("bert.encoder.layer.0.attention.self.query.weight", 3) == 1
    assert layer_depth("bert.encoder.layer.2.output.dense.bias", 3) == 3
    assert layer_depth("bert.pooler.dense.weight", 3) == layer_depth("classifier.weight", 3) == 4


def test_each_layer_down_learns_at_decay_times_the_rate_above():
    model = tiny_classifier(3)
    groups = layerwise_groups(model, lr=1e-3, decay=0.5, weight_decay=0.1)
    lr_of = {id(p): g["lr"] for g in groups for p in g["params"]}
    wd_of = {id(p): g["weight_decay"] for g in groups for p in g["params"]}
    params = dict(model.named_parameters())
    assert sorted(lr_of) == sorted(id(p) for p in params.values())  # each parameter in exactly one group
    assert sum(len(g["params"]) for g in groups) == len(params)
    want = {
        "classifier.weight": 1e-3,
        "bert.pooler.dense.weight": 1e-3,
        "bert.encoder.layer.2.attention.self.query.weight": 5e-4,
        "bert.encoder.layer.1.output.dense.weight": 2.5e-4,
        "bert.encoder.layer.0.intermediate.dense.bias": 1.25e-4,
        "bert.embeddings.word_embeddings.weight": 6.25e-5,
    }
    for name, lr in want.items():
        assert lr_of[id(params[name])] == pytest.approx(lr), name
    assert [g["lr"] for g in groups] == sorted(g["lr"] for g in groups)  # embeddings first, head last
    assert wd_of[id(params["bert.encoder.layer.1.output.LayerNorm.weight"])] == 0.0  # no decay on norms
    assert wd_of[id(params["classifier.bias"])] == 0.0 and wd_of[id(params["classifier.weight"])] == 0.1


def test_decay_one_is_one_learning_rate_and_the_scheduler_keeps_the_ratios():
    model = tiny_classifier(2)
    assert {g["lr"] for g in layerwise_groups(model, 3e-4, 1.0, 0.0)} == {3e-4}
    optimizer = layerwise_optimizer(model, 1e-3, 0.5, 0.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)  # as the Trainer's warmup does
    optimizer.step()
    scheduler.step()
    rates = [g["lr"] for g in optimizer.param_groups]
    assert rates[-1] == pytest.approx(5e-4) and rates[0] == pytest.approx(5e-4 * 0.5**3)


def test_masked_positions_only_is_the_masked_lm_loss():
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16
    )
    mlm = BertForMaskedLM(config).eval()
    ids = torch.randint(5, 50, (3, 7))  # (B, T)
    mask = torch.ones_like(ids)
    mask[2, 4:] = 0
    labels = torch.full_like(ids, -100)
    labels[0, 1], labels[1, 5], labels[2, 2] = 7, 9, 11
    want = mlm(input_ids=ids, attention_mask=mask, labels=labels).loss
    got = MaskedPositionsOnly(mlm)(ids, mask, labels)["loss"]
    torch.testing.assert_close(got, want)


def test_reinit_redraws_the_top_layers_and_the_pooler_only():
    torch.manual_seed(0)
    model = tiny_classifier(n_layers=3)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(1.0)  # away from any value an initialisation gives
    before = {name: p.clone() for name, p in model.named_parameters()}
    reinit_top_layers(model, 0)
    assert all(torch.equal(p, before[name]) for name, p in model.named_parameters())
    reinit_top_layers(model, 1)
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed == {name for name in before if name.startswith(("bert.encoder.layer.2.", "bert.pooler."))}
    top = model.bert.encoder.layer[2]
    assert (top.output.dense.bias == 0).all() and (top.output.LayerNorm.weight == 1).all()
    assert top.intermediate.dense.weight.std().item() == pytest.approx(
        model.config.initializer_range, rel=0.3
    )
    with pytest.raises(DlpError, match="1 to its layer count"):
        reinit_top_layers(model, 4)
    check_reinit_layers(model.config, 3)
    with pytest.raises(DlpError, match="ft_reinit_layers=4: the backbone has 3 encoder layers"):
        check_reinit_layers(model.config, 4)


def test_rdrop_loss_is_two_cross_entropies_plus_alpha_times_the_symmetric_kl(tmp_path):
    from transformers import TrainingArguments

    torch.manual_seed(0)
    model = tiny_classifier().train()  # dropout 0.1: the two passes differ
    inputs = {"input_ids": torch.randint(0, 50, (4, 6)), "labels": torch.tensor([0, 1, 1, 0])}
    args = TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True)
    trainer = rdrop_trainer(alpha=2.0)(model=model, args=args)
    torch.manual_seed(1)
    loss = trainer.compute_loss(model, dict(inputs))
    torch.manual_seed(1)  # the same dropout masks, by hand
    a, b = model(input_ids=torch.cat([inputs["input_ids"]] * 2)).logits.chunk(2)
    ce = (F.cross_entropy(a, inputs["labels"]) + F.cross_entropy(b, inputs["labels"])) / 2
    pa, pb = a.softmax(-1), b.softmax(-1)
    kl = ((pa * (pa / pb).log()).sum(-1).mean() + (pb * (pb / pa).log()).sum(-1).mean()) / 2
    assert kl > 0
    torch.testing.assert_close(loss, ce + 2.0 * kl)
    model.eval()  # evaluation: the plain loss of one pass
    torch.testing.assert_close(
        trainer.compute_loss(model, dict(inputs)),
        F.cross_entropy(model(inputs["input_ids"]).logits, inputs["labels"]),
    )


def test_training_arguments_come_from_the_run_and_the_lab_may_override_them(tmp_path):
    ctx = SimpleNamespace(run_dir=tmp_path, seed=7, device="cpu", progress=SimpleNamespace(show=False))
    args = training_arguments(ctx, max_steps=3, learning_rate=1e-4)
    assert Path(args.output_dir) == tmp_path / "trainer" and args.seed == 7 and args.use_cpu
    assert args.disable_tqdm and not args.bf16 and args.report_to == []  # "none": our tracker has the logs
    assert args.max_steps == 3 and args.learning_rate == 1e-4
    shown = SimpleNamespace(**{**vars(ctx), "progress": SimpleNamespace(show=True)})
    assert not training_arguments(shown).disable_tqdm
    assert training_arguments(shown, disable_tqdm=True).disable_tqdm  # the lab's own settings win


def test_trainer_history_is_the_logged_training_loss_then_the_validation_loss():
    logged = [
        {"loss": 0.9, "step": 5, "learning_rate": 1e-4},
        {"eval_loss": 0.8, "step": 5},  # evaluation entries are not training losses
        {"loss": 0.6, "step": 10},
        {"train_runtime": 3.0, "step": 12},
    ]
    trainer = SimpleNamespace(state=SimpleNamespace(log_history=logged, global_step=12))
    assert trainer_history(trainer, 0.7) == [
        {"step": 5, "train_loss": 0.9},
        {"step": 10, "train_loss": 0.6},
        {"step": 12, "val_loss": 0.7},
    ]
