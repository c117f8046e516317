"""Checks of lab p3: the global magnitude-pruning mask against torch.nn.utils.prune, affine int8 quantisation
against torch.ao's MinMaxObserver and torch.quantize_per_tensor, and the distillation loss against the same
formula written with F.kl_div, each on the same inputs."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.ao.quantization.observer import MinMaxObserver
from torch.nn.utils import prune

from dlpractice.practice.checks.support import assert_close

# torch 2.14 announces that its quantised tensor types will go; they are still the reference here
pytestmark = pytest.mark.filterwarnings("ignore:torch.quantize_per_tensor:UserWarning")


def torch_global_masks(weights: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """torch's global L1 pruning of the same tensors, held in throwaway Linear layers."""
    layers = [torch.nn.Linear(1, 1, bias=False) for _ in weights]
    for layer, w in zip(layers, weights):
        layer.weight = torch.nn.Parameter(w.clone())
    prune.global_unstructured(
        [(layer, "weight") for layer in layers], pruning_method=prune.L1Unstructured, amount=sparsity
    )
    return [layer.weight_mask for layer in layers]


@pytest.mark.exercise("p3.1")
@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.9, 0.99])
def test_magnitude_masks_match_torch_global_pruning(impl, sparsity):
    """Global, not per layer: a layer of small weights loses more of them than a layer of large ones."""
    torch.manual_seed(0)
    weights = [torch.randn(6, 4, 3, 3), 5 * torch.randn(20, 12), 0.1 * torch.randn(7)]
    ours = impl.magnitude_masks(weights, sparsity)
    theirs = torch_global_masks(weights, sparsity)
    assert len(ours) == len(weights), f"one mask per tensor: {len(weights)} tensors, got {len(ours)} masks"
    for i, (mine, want) in enumerate(zip(ours, theirs)):
        assert mine.shape == want.shape, f"mask {i} should have its tensor's shape {tuple(want.shape)}"
        wrong = int((mine.float() != want).sum())
        assert wrong == 0, (
            f"sparsity {sparsity}: mask {i} differs from torch.nn.utils.prune's global L1 mask in {wrong} "
            f"entries (zero the round(sparsity * N) smallest |w| among ALL tensors together)"
        )


@pytest.mark.exercise("p3.1")
def test_magnitude_masks_keep_the_largest_weights(impl):
    weights = [torch.tensor([0.1, -3.0, 0.2]), torch.tensor([[-0.05, 2.0], [1.0, -0.3]])]
    masks = impl.magnitude_masks(weights, 3 / 7)
    assert masks[0].tolist() == [0, 1, 0], "0.1 and 0.2 are among the 3 smallest |w| of the 7: masked"
    assert masks[1].tolist() == [[0, 1], [1, 1]], "-0.05 is the smallest |w|: masked; -0.3, 1 and 2 stay"


CASES = {  # name -> a tensor to quantise
    "weights": torch.randn(64, 32, generator=torch.Generator().manual_seed(1)),
    "positive": torch.rand(100, generator=torch.Generator().manual_seed(2)) + 0.5,  # min above 0
    "negative": -torch.rand(100, generator=torch.Generator().manual_seed(3)) - 0.1,  # max below 0
    "skewed": torch.cat([torch.linspace(-0.2, 3.0, 97), torch.tensor([0.0, 1.5, -0.1])]),
}


@pytest.mark.exercise("p3.2")
@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize(("dtype", "qmin", "qmax"), [(torch.qint8, -128, 127), (torch.quint8, 0, 255)])
def test_affine_quantise_matches_minmax_observer_and_quantize_per_tensor(impl, name, dtype, qmin, qmax):
    x = CASES[name]
    got = impl.affine_quantise(x, qmin, qmax)
    observer = MinMaxObserver(dtype=dtype, qscheme=torch.per_tensor_affine)
    observer(x)
    scale, zero_point = observer.calculate_qparams()
    assert got.scale == pytest.approx(float(scale), rel=1e-6), (
        f"{name}, [{qmin}, {qmax}]: MinMaxObserver's scale is {float(scale):.6g}, got {got.scale:.6g} "
        "((max(x, 0) - min(x, 0)) / (qmax - qmin))"
    )
    assert got.zero_point == int(zero_point), (
        f"{name}, [{qmin}, {qmax}]: MinMaxObserver's zero-point is {int(zero_point)}, got {got.zero_point} "
        "(qmin - round(min(x, 0) / scale), clamped to [qmin, qmax])"
    )
    reference = torch.quantize_per_tensor(x, float(scale), int(zero_point), dtype)
    codes = reference.int_repr().long()
    differ = got.q.long() != codes
    # x * (1/scale) and x / scale can round apart where x / scale is (within float error) an exact half
    steps = x / float(scale)
    halfway = ((steps - steps.floor()) - 0.5).abs() < 1e-3
    assert not (differ & ~halfway).any() and (got.q.long() - codes).abs().max() <= 1, (
        f"{name}: the integer codes differ from torch.quantize_per_tensor's in {int(differ.sum())} places "
        "(round(x / scale) + zero-point, clamped to [qmin, qmax])"
    )
    storage = torch.int8 if dtype == torch.qint8 else torch.uint8
    ours_in_torch = torch._make_per_tensor_quantized_tensor(got.q.to(storage), float(scale), int(zero_point))
    assert_close(
        got.dequantise(),
        ours_in_torch.dequantize(),
        f"{name}: dequantise should equal torch's dequantize() of the same codes",
        atol=1e-6,
        rtol=1e-6,
    )


@pytest.mark.exercise("p3.2")
def test_affine_quantise_represents_zero_exactly_and_rounds_to_within_half_a_step(impl):
    x = torch.cat([torch.linspace(-1.3, 2.1, 501), torch.zeros(3)])
    got = impl.affine_quantise(x, -128, 127)
    assert float(got.dequantise()[-1]) == 0.0, "0.0 must come back exactly (its code is the zero-point)"
    error = float((got.dequantise() - x).abs().max())
    assert error <= got.scale / 2 + 1e-6, (
        f"round-trip error {error:.4g} is above half a step {got.scale / 2:.4g}"
    )


@pytest.mark.exercise("p3.3")
@pytest.mark.parametrize(("temperature", "alpha"), [(1.0, 0.5), (4.0, 0.9), (2.5, 0.0), (8.0, 1.0)])
def test_distillation_loss_matches_kl_div_formula(impl, temperature, alpha):
    torch.manual_seed(0)
    student = torch.randn(16, 10, requires_grad=True)  # (B, C)
    teacher, targets = 3 * torch.randn(16, 10), torch.randint(0, 10, (16,))
    got = impl.distillation_loss(student, teacher, targets, temperature, alpha)
    soft = F.kl_div(
        F.log_softmax(student / temperature, 1),
        F.log_softmax(teacher / temperature, 1),
        reduction="batchmean",
        log_target=True,
    )
    want = alpha * temperature**2 * soft + (1 - alpha) * F.cross_entropy(student, targets)
    assert_close(
        got,
        want,
        f"T={temperature}, alpha={alpha}: alpha * T² * KL(teacher || student) + (1 - alpha) * CE",
        atol=1e-5,
        rtol=1e-5,
    )
    (grad,) = torch.autograd.grad(got, student)
    (want_grad,) = torch.autograd.grad(want, student)
    assert_close(grad, want_grad, "its gradient with respect to the student's logits", atol=1e-5, rtol=1e-5)


@pytest.mark.exercise("p3.3")
def test_distillation_loss_is_zero_soft_term_when_student_equals_teacher(impl):
    logits, targets = torch.randn(8, 5), torch.randint(0, 5, (8,))
    got = impl.distillation_loss(logits, logits.clone(), targets, 3.0, 1.0)
    assert abs(float(got)) < 1e-5, (
        f"the same logits: KL is 0, so with alpha 1 the loss is 0, got {float(got)}"
    )
