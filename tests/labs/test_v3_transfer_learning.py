"""Lab v3: the smoke preset end to end, the parameter groups of each way of transferring, and the
torchvision backbone path (random weights, weights from the hub cache, the one-line error offline)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from dlpractice.errors import DlpError
from dlpractice.labs.vision import v3_transfer_learning as v3
from dlpractice.models import transfer
from dlpractice.models.attribution import SmallCNN
from dlpractice.runner import RunSpec, start_run

TINY_RESNET = [
    "backbone=resnet18",
    "image_size=32",
    "letters_per_class=5",
    "shots=2",
    "methods=scratch,probe",
]
TINY_RESNET += ["transfer_steps=2", "transfer_batch_size=8", "transfer_eval_every=2"]


@pytest.mark.slow
def test_smoke_run_writes_the_table_curves_and_metric(tmp_path: Path) -> None:
    outcome = start_run(RunSpec("v3", "smoke", data="embedded"))
    m = outcome.metrics
    for method in ("scratch", "probe", "finetune", "lower_lr"):
        assert 0 <= m[f"{method}_10shot_test_accuracy"] <= 1
    assert (
        outcome.value
        == m["few_shot_gain"]
        == max(m[f"{k}_3shot_test_accuracy"] for k in ("probe", "finetune", "lower_lr"))
        - m["scratch_3shot_test_accuracy"]
    )
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= {"curves", "letters", "loss"}
    assert "linear probe" in outcome.report.read_text()
    record = json.loads((outcome.run_dir / "run.json").read_text())
    assert record["data_info"]["pretraining"] == "MNIST digits" and record["data_info"]["letters_origin"]
    # served (`dlp serve`): the fine-tuned letters model, which answers its recorded failure cases as it did
    from dlpractice.serve.app import served_from
    from dlpractice.serve.media import picture

    served = served_from(outcome.run_dir)
    failures = json.loads((outcome.run_dir / "failures.json").read_text())
    assert failures and served.info["input"] == "image"
    for case in failures[:5]:
        pixels = (picture(case["input"])).astype("uint8")  # (28, 28) as the lab recorded it
        answer = served.predictor.predict([{"image": pixels}])[0]
        assert answer["label"] == case["prediction"] != case["label"]
        assert answer["probabilities"][case["prediction"]] == pytest.approx(case["confidence"], abs=0.02)


def test_parameter_groups_freeze_or_slow_the_backbone() -> None:
    model = SmallCNN(26, widths=(4, 6, 8))
    n_backbone, n_head = len(list(model.features.parameters())), len(list(model.head.parameters()))
    (group,) = v3.parameter_groups(model, "finetune", 1e-3, 0.1)
    assert len(group["params"]) == n_backbone + n_head and group["lr"] == 1e-3
    slow, fast = v3.parameter_groups(model, "lower_lr", 1e-3, 0.1)
    assert slow["lr"] == pytest.approx(1e-4) and fast["lr"] == 1e-3 and len(slow["params"]) == n_backbone
    (head,) = v3.parameter_groups(model, "probe", 1e-3, 0.1)
    assert len(head["params"]) == n_head
    assert not any(p.requires_grad for p in model.features.parameters())


def test_probe_leaves_the_backbone_unchanged_and_lower_rate_moves_it_less() -> None:
    """Trained for a few steps: a probe's backbone is bit-for-bit the pretrained one, and a backbone at a
    tenth of the rate moves less than the fully fine-tuned one."""
    torch.manual_seed(0)
    pretrained = SmallCNN(10, widths=(4, 6, 8))
    x, y = torch.rand(52, 1, 28, 28), torch.arange(26).repeat(2)
    cfg = v3.Config(widths=(4, 6, 8), transfer_steps=5, transfer_batch_size=16, transfer_eval_every=5)
    moved = {}
    for method in ("probe", "finetune", "lower_lr"):
        model = v3.transfer(pretrained, method, (x, y), (x, y), cfg, seed=0)
        before, after = pretrained.features[0].weight, model.features[0].weight
        moved[method] = float((after - before).detach().abs().max())
        assert [step for step, _ in model.curve] == [0, 5]
    assert moved["probe"] == 0.0 and 0 < moved["lower_lr"] < moved["finetune"]


@pytest.mark.slow
def test_resnet_backbone_without_weights_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`--set backbone=resnet18` on a tiny config, weights=None: the torchvision path end to end."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    sets = [*TINY_RESNET, "backbone_weights=none"]
    outcome = start_run(RunSpec("v3", "smoke", data="embedded", overrides=sets))
    assert (
        0 <= outcome.metrics["probe_2shot_test_accuracy"] <= 1 and "pretrain_seconds" not in outcome.metrics
    )
    assert not (tmp_path / "torch").exists()  # nothing was downloaded or looked up


def test_resnet_weights_come_from_the_hub_cache_or_fail_in_one_line(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(DlpError, match=r"resnet18's ImageNet weights are not in the torch hub cache") as err:
        transfer.torchvision_classifier("resnet18", 26, "imagenet", 32)
    assert "\n" not in str(err.value) and "resnet18-f37072fd.pth" in str(err.value)
    from torchvision.models import resnet18

    cached = resnet18(weights=None).state_dict()  # stands in for the ImageNet file, in its format
    path, _ = transfer.hub_checkpoint("resnet18")
    path.parent.mkdir(parents=True)
    torch.save(cached, path)
    model = transfer.torchvision_classifier("resnet18", 26, "imagenet", 32)
    assert torch.equal(model.features[1].conv1.weight, cached["conv1.weight"])
    logits, loss = model(torch.rand(2, 1, 28, 28), torch.tensor([0, 25]))
    assert logits.shape == (2, 26) and loss.item() > 0
    with pytest.raises(DlpError, match="not a torchvision ResNet"):
        transfer.torchvision_classifier("vit_b_16", 26, "none", 32)
