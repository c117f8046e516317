"""metrics/model_maths: each formula equals what is measured on the real model (numel, FlopCounterMode,
the bytes autograd saves, the optimiser's state), and the reference libraries agree (transformers' GPT-2
block for 12 d^2 + 13 d, its KV cache for 2 L B T d)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from dlpractice.metrics import model_maths as mm
from dlpractice.metrics.flops import count_flops
from dlpractice.models.convnets import PlainCNN
from dlpractice.models.gpt import GPT, GPTConfig
from dlpractice.models.mlp import MLP

CONFIG = GPTConfig(vocab_size=37, block_size=24, n_layer=2, n_head=4, n_embd=32)
B, T = 3, 20


@pytest.fixture
def batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    return torch.randint(0, 37, (B, T)), torch.randint(0, 37, (B, T))


def numel(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())  # each tensor once: the tied head is not counted twice


def test_parameters_by_formula_equal_numel() -> None:
    assert mm.gpt_params(CONFIG) == numel(GPT(CONFIG))
    mlp = MLP(50, 7, width=24, depth=3, norm="layer")
    cnn = PlainCNN(3, 20, 5, width=6, hidden=16)
    assert mm.predicted_params(mlp) == numel(mlp) and mm.predicted_params(cnn) == numel(cnn)
    assert mm.conv2d_params(8, 8, 3, groups=8, bias=False) == numel(nn.Conv2d(8, 8, 3, groups=8, bias=False))


def test_gpt2_block_with_biases_is_12_d2_plus_13_d() -> None:
    transformers = pytest.importorskip("transformers")
    from transformers.models.gpt2.modeling_gpt2 import GPT2Block

    config = transformers.GPT2Config(n_embd=48, n_head=4, n_layer=1)
    assert mm.gpt_block_params(48, bias=True) == numel(GPT2Block(config)) == 12 * 48**2 + 13 * 48


def test_forward_and_training_flops_equal_flop_counter_mode(batch) -> None:
    idx, targets = batch
    gpt = GPT(CONFIG)
    forward = mm.gpt_forward_flops(CONFIG, B, T)
    assert mm.counted_flops(lambda: gpt(idx)) == forward
    assert mm.counted_flops(lambda: gpt(idx, targets)[1].backward()) == 3 * forward
    # CPU's fused attention kernel has no FLOP formula in torch: its 2 x 2 B T^2 d per layer go uncounted
    attention = CONFIG.n_layer * 4 * B * T * T * CONFIG.n_embd
    assert mm.counted_flops(lambda: gpt(idx), math_attention=False) == forward - attention

    checkpointed = mm.checkpoint_blocks(
        GPT(CONFIG)
    )  # backward runs each block's forward again, but the last Linear
    recomputed = mm.counted_flops(lambda: checkpointed(idx, targets)[1].backward())
    assert recomputed == mm.gpt_checkpointed_train_flops(CONFIG, B, T)

    cnn = PlainCNN(1, 28, 10, width=4, hidden=16)
    x, y = torch.rand(B, 1, 28, 28), torch.randint(0, 10, (B,))
    total, first = mm.stack_forward_flops(cnn, tuple(x.shape))
    assert total == mm.counted_flops(lambda: cnn(x)) == count_flops(cnn, x).products  # metrics/flops agrees
    assert mm.counted_flops(lambda: cnn(x, y)[1].backward()) == 3 * total - first  # no gradient for the image


def test_saved_activation_bytes_equal_the_formulas(batch) -> None:
    idx, targets = batch
    gpt = GPT(CONFIG)
    assert mm.saved_bytes(gpt, lambda: gpt(idx, targets)[1])[0] == mm.gpt_saved_bytes(CONFIG, B, T)
    bf16 = GPT(CONFIG).to(torch.bfloat16)
    assert mm.saved_bytes(bf16, lambda: bf16(idx, targets)[1])[0] == mm.gpt_saved_bytes(CONFIG, B, T, 2)
    checkpointed = mm.checkpoint_blocks(GPT(CONFIG))
    saved, loss = mm.saved_bytes(checkpointed, lambda: checkpointed(idx, targets)[1])
    assert saved == mm.gpt_saved_bytes(CONFIG, B, T, checkpointed=True) < mm.gpt_saved_bytes(CONFIG, B, T)
    loss.backward()  # the recomputation in backward gives the gradients of the plain model
    plain = GPT(CONFIG)
    plain.load_state_dict({k.replace("inner.", ""): v for k, v in checkpointed.state_dict().items()})
    plain(idx, targets)[1].backward()
    torch.testing.assert_close(checkpointed.wte.weight.grad, plain.wte.weight.grad)

    mlp = MLP(30, 4, width=16, depth=2)
    x, y = torch.rand(B, 30), torch.randint(0, 4, (B,))
    assert mm.saved_bytes(mlp, lambda: mlp(x, y)[1])[0] == mm.mlp_saved_bytes(B, 30, 16, 2, 4)
    cnn = PlainCNN(1, 28, 10, width=4, hidden=16).train()
    images, labels = torch.rand(B, 1, 28, 28), torch.randint(0, 10, (B,))
    assert mm.saved_bytes(cnn, lambda: cnn(images, labels)[1])[0] == mm.plain_cnn_saved_bytes(
        B, 1, 28, 4, 16, 10
    )


@pytest.mark.parametrize("name", ["sgd", "momentum", "adam"])
def test_state_bytes_after_a_step(name: str) -> None:
    model = MLP(30, 4, width=16, depth=2)
    optimiser = {
        "sgd": torch.optim.SGD(model.parameters(), lr=0.1),
        "momentum": torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9),
        "adam": torch.optim.Adam(model.parameters()),
    }[name]
    model(torch.rand(4, 30), torch.randint(0, 4, (4,)))[1].backward()
    optimiser.step()
    measured = mm.measured_state_bytes(model, optimiser)
    predicted = mm.training_state_bytes(numel(model), name)
    steps = 4 * len(list(model.parameters())) if name == "adam" else 0  # Adam's 0-d float32 step counters
    assert measured == predicted | {"optimiser": predicted["optimiser"] + steps}


def test_kv_cache_equals_transformers_gpt2_cache(batch) -> None:
    transformers = pytest.importorskip("transformers")
    idx, _ = batch
    ours = mm.measured_kv_cache_bytes(GPT(CONFIG), idx)
    assert ours == mm.kv_cache_bytes(CONFIG, B, T)
    config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=4, n_positions=24, vocab_size=37)
    with torch.no_grad():
        cache = transformers.GPT2LMHeadModel(config).eval()(idx, use_cache=True).past_key_values
    assert sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers) == ours


def test_compute_optimal_budget() -> None:
    tokens, flops, seconds = mm.compute_optimal(1e9, gflops_per_s=100.0)
    assert tokens == 2e10 and flops == pytest.approx(1.2e20) and seconds == pytest.approx(1.2e9)
    assert mm.rel_error(99.0, 100.0) == pytest.approx(0.01)
