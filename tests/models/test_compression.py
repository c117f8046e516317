"""models/compression.py and models/deployment.py: our pruning mask, affine int8 and distillation loss
against torch on the same inputs; channel pruning, torch.ao quantisation, TorchScript and ONNX against the
float model."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.ao.quantization.observer import MinMaxObserver

from dlpractice.errors import DlpError
from dlpractice.models import compression as comp
from dlpractice.models import deployment as dep
from dlpractice.models.convnets import PlainCNN

pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


@pytest.fixture(scope="module")
def cnn() -> PlainCNN:
    """A PlainCNN with non-trivial BatchNorm statistics, in eval mode."""
    torch.manual_seed(0)
    model = PlainCNN(1, 12, 10, width=4, hidden=16)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(32, 1, 12, 12))  # (B, C, S, S): moves the running statistics
    return model.eval()


def images(n: int = 16, seed: int = 1) -> torch.Tensor:
    return torch.rand(n, 1, 12, 12, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("sparsity", [0.5, 0.9])
def test_our_masks_equal_torch_global_l1_pruning_of_a_model(cnn, sparsity) -> None:
    ours = comp.magnitude_masks([m.weight for m, _ in comp.prunable(cnn)], sparsity)
    pruned = comp.prune_globally(copy.deepcopy(cnn), sparsity)
    theirs = [m.weight_mask for m, _ in comp.prunable(pruned)]
    assert all(torch.equal(a, b) for a, b in zip(ours, theirs, strict=True))
    assert comp.weight_sparsity(comp.make_permanent(pruned)) == pytest.approx(sparsity, abs=1e-3)


def test_pruned_fine_tuning_keeps_the_zeros(cnn) -> None:
    pruned = comp.prune_globally(copy.deepcopy(cnn), 0.8).train()
    for _ in range(3):  # plain gradient steps (torch.optim would import torch._dynamo: seconds)
        _, loss = pruned(images(), torch.arange(16) % 10)
        grads = torch.autograd.grad(loss, list(pruned.parameters()))
        with torch.no_grad():
            for p, g in zip(pruned.parameters(), grads):
                p -= 0.5 * g
    assert comp.weight_sparsity(comp.make_permanent(pruned)) == pytest.approx(0.8, abs=1e-3)


def test_affine_quantise_matches_the_observer_and_quantize_per_tensor() -> None:
    x = torch.randn(300, generator=torch.Generator().manual_seed(2)) * 0.7 + 0.2
    ours = comp.affine_quantise(x, -128, 127)
    observer = MinMaxObserver(dtype=torch.qint8)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    assert ours.scale == pytest.approx(float(scale)) and ours.zero_point == int(zero_point)
    reference = torch.quantize_per_tensor(x, ours.scale, ours.zero_point, torch.qint8)
    assert torch.equal(ours.q, reference.int_repr().long())
    assert torch.allclose(ours.dequantise(), reference.dequantize())


def test_distillation_loss_equals_the_kl_div_formula() -> None:
    torch.manual_seed(3)
    student, teacher, targets = torch.randn(8, 10), torch.randn(8, 10), torch.randint(0, 10, (8,))
    kl = F.kl_div(
        F.log_softmax(student / 3, 1), F.log_softmax(teacher / 3, 1), reduction="batchmean", log_target=True
    )
    want = 0.7 * 9 * kl + 0.3 * F.cross_entropy(student, targets)
    assert torch.allclose(comp.distillation_loss(student, teacher, targets, 3.0, 0.7), want, atol=1e-6)


def test_channel_pruning_keeping_everything_is_the_same_network(cnn) -> None:
    same = comp.channel_pruned(cnn, 1.0).eval()
    assert torch.allclose(same(images())[0], cnn(images())[0], atol=1e-5)


def test_channel_pruning_keeps_the_strongest_filters_in_smaller_layers(cnn) -> None:
    small = comp.channel_pruned(cnn, 0.5).eval()
    convs = [m for m in small.features.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [2, 2, 4, 4]
    first = next(m for m in cnn.features.modules() if isinstance(m, torch.nn.Conv2d))
    strongest = first.weight.abs().sum((1, 2, 3)).topk(2).indices.sort().values
    assert torch.equal(convs[0].weight, first.weight[strongest])
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in cnn.parameters()) / 2
    assert small(images())[0].shape == (16, 10)


def test_distilled_student_trains_alone_and_keeps_the_teacher_frozen(cnn) -> None:
    student = PlainCNN(1, 12, 10, width=2, hidden=8)
    wrapper = comp.Distilled(student, copy.deepcopy(cnn), temperature=2.0, alpha=0.5).train()
    assert not wrapper.teacher.training and wrapper.student.training
    x, y = images(), torch.arange(16) % 10
    logits, loss = wrapper(x, y)
    want = comp.distillation_loss(logits, cnn(x)[0], y, 2.0, 0.5)
    assert torch.allclose(loss, want)
    loss.backward()
    assert all(p.grad is None for p in wrapper.teacher.parameters())
    assert wrapper(x)[1] is None


def test_int8_models_stay_close_to_the_float_model(cnn) -> None:
    x, float_logits = images(), cnn(images())[0].detach()
    static = dep.quantise_static(cnn, images(64, seed=5))
    dynamic = dep.quantise_dynamic(cnn)
    spread = float(float_logits.abs().max())
    for model in (static, dynamic):
        assert float((model(x).detach() - float_logits).abs().max()) < 0.1 * spread
    assert len(dep.state_bytes(static)) < len(dep.state_bytes(cnn))
    assert [w.dtype for w in dep.int8_weights(static)] == [torch.qint8, torch.qint8]


def test_static_int8_round_trips_through_its_saved_state(cnn, tmp_path) -> None:
    static = dep.quantise_static(cnn, images(64, seed=5))
    path = tmp_path / "static.pt"
    path.write_bytes(dep.state_bytes(static))
    fresh = PlainCNN(1, 12, 10, width=4, hidden=16)
    loaded = dep.load_static(fresh, torch.zeros(1, 1, 12, 12), path)
    assert torch.equal(loaded(images()), static(images()))
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(DlpError, match="unreadable"):
        dep.load_static(fresh, torch.zeros(1, 1, 12, 12), path)


def test_qat_trains_through_fit_contract_and_converts(cnn) -> None:
    qat = dep.prepare_qat(copy.deepcopy(cnn), images(2))
    logits, loss = qat(images(), torch.arange(16) % 10)
    loss.backward()  # straight-through: the float weights behind the fake quantisation get gradients
    assert all(p.grad is not None for p in qat.parameters() if p.requires_grad)
    converted = dep.convert_qat(qat)
    with torch.no_grad():
        spread = float(cnn(images())[0].abs().max())
        assert float((converted(images()) - cnn(images())[0]).abs().max()) < 0.1 * spread


def test_torchscript_and_onnx_give_the_float_model_outputs(cnn, tmp_path) -> None:
    logits_only, x = dep.LogitsOnly(cnn).eval(), images(5)
    scripted = dep.torchscript(logits_only, x[:1])
    assert torch.allclose(scripted(x), logits_only(x), atol=1e-6)
    path = dep.export_onnx(logits_only, x[:1], tmp_path / "model.onnx")
    run = dep.onnx_runner(dep.onnx_session(path))
    assert torch.allclose(run(x), logits_only(x), atol=1e-5)  # batch 5 through a graph exported at 1
    assert not (tmp_path / "model.onnx.data").exists()  # one file: its size is the model's


def test_pruning_zeros_shrink_only_the_compressed_file(cnn) -> None:
    dense = dep.state_bytes(cnn)
    sparse = dep.state_bytes(comp.make_permanent(comp.prune_globally(copy.deepcopy(cnn), 0.9)))
    assert len(sparse) == len(dense)  # a dense file stores every zero
    assert dep.gzipped_size(sparse) < 0.6 * dep.gzipped_size(dense)


def test_interleaved_latency_times_every_call_in_milliseconds() -> None:
    counts = {"a": 0, "b": 0}

    def counted(name: str):
        def call(x: torch.Tensor) -> torch.Tensor:
            counts[name] += 1
            return x + 1

        return call

    times = dep.interleaved_median_ms(
        {n: counted(n) for n in counts}, torch.zeros(3), repeats=6, warmup=1, rounds=3
    )
    assert set(times) == {"a", "b"} and all(0 < ms < 100 for ms in times.values())
    assert counts == {"a": 9, "b": 9}  # 3 rounds of 1 warm-up and 6 // 3 timed calls
