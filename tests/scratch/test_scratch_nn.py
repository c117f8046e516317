"""Modules: parameters are found, modes switch, layers match torch, and a small MLP learns moons."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import make_moons

from dlpractice.scratch import Tensor, nn, no_grad, optim
from dlpractice.scratch import functional as F


def test_parameters_are_found_in_attributes_and_lists_once_each():
    shared = nn.Linear(3, 3)
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), shared, shared, nn.BatchNorm1d(3))
    assert len(model.parameters()) == 2 + 2 + 2  # two linears (weight, bias) and the norm's weight, bias
    assert all(p.requires_grad for p in model.parameters())


def test_train_and_eval_reach_every_submodule():
    model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(nn.Dropout(0.5), nn.BatchNorm1d(4)))
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_zero_grad_clears_gradients():
    model = nn.MLP(2, [4], 1)
    model(Tensor(np.ones((3, 2)))).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_linear_and_conv_init_use_torch_default_bounds():
    linear = nn.Linear(50, 40, rng=np.random.default_rng(0))
    conv = nn.Conv2d(3, 8, 5, rng=np.random.default_rng(0))
    assert linear.weight.shape == (40, 50) and np.abs(linear.weight.data).max() <= 1 / np.sqrt(50)
    assert np.abs(conv.bias.data).max() <= 1 / np.sqrt(3 * 25)
    assert np.abs(linear.weight.data).max() > 0.9 / np.sqrt(50)  # uniform over the whole range


def test_linear_matches_torch(check_against_torch):
    layer = nn.Linear(4, 3, rng=np.random.default_rng(0))
    reference = torch.nn.Linear(4, 3).double()
    with torch.no_grad():
        reference.weight.copy_(torch.tensor(layer.weight.data))
        reference.bias.copy_(torch.tensor(layer.bias.data))
    x = np.random.default_rng(1).standard_normal((5, 4))
    check_against_torch(layer, reference, [x])


def test_batchnorm_module_tracks_running_statistics_like_torch():
    ours, theirs = nn.BatchNorm1d(3), torch.nn.BatchNorm1d(3).double()
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal((6, 3)) * 2 + 5
        ours(Tensor(x))
        theirs(torch.tensor(x))
    np.testing.assert_allclose(ours.running_mean, theirs.running_mean.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.running_var, theirs.running_var.numpy(), atol=1e-12)
    ours.eval()
    theirs.eval()
    x = rng.standard_normal((2, 3))
    np.testing.assert_allclose(ours(Tensor(x)).data, theirs(torch.tensor(x)).detach().numpy(), atol=1e-12)


def test_small_cnn_runs_in_float32():
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1, dtype=np.float32),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.LayerNorm((4, 4, 4), dtype=np.float32),
        nn.Flatten(),
        nn.Linear(64, 10, dtype=np.float32),
    )
    x = Tensor(np.random.default_rng(0).standard_normal((2, 1, 8, 8)).astype(np.float32))
    loss = F.cross_entropy(model(x), [3, 7])
    loss.backward()
    assert loss.dtype == np.float32
    assert all(p.grad.dtype == np.float32 for p in model.parameters())


@pytest.mark.parametrize("activation", [nn.ReLU, nn.Tanh])
def test_mlp_learns_moons_with_adam(activation):
    x, y = make_moons(n_samples=200, noise=0.1, random_state=0)
    model = nn.MLP(2, [16, 16], 2, activation=activation, rng=np.random.default_rng(0))
    opt = optim.Adam(model.parameters(), lr=0.02)
    inputs = Tensor(x)
    for _ in range(300):
        loss = F.cross_entropy(model(inputs), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with no_grad():
        accuracy = (model(inputs).data.argmax(axis=1) == y).mean()
    assert accuracy > 0.95
