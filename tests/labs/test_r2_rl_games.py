"""Lab r2 end to end on its smoke preset: every algorithm trained on two seeds and scored greedily, the random
baseline, the figures, each algorithm's saved agent; and the learning-curve and drawing helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pytest
from safetensors.torch import load_file

from dlpractice.labs.beyond import r2_rl_games as r2
from dlpractice.models import rl
from dlpractice.runner import RunSpec, start_run


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory):
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("DLP_HOME", str(tmp_path_factory.mktemp("r2")))
    monkeypatch.setenv("DLP_THREADS", "1")
    monkeypatch.setenv("DLP_OFFLINE", "1")
    yield start_run(RunSpec("r2", "smoke", data="embedded"))
    monkeypatch.undo()


@pytest.mark.slow
def test_smoke_run_scores_every_algorithm_and_the_random_baseline(smoke) -> None:
    m = smoke.metrics
    assert m["solve_threshold"] == 475.0  # CartPole-v1's spec
    for algorithm in ("dqn", "reinforce", "ppo"):
        assert 1 <= m[f"{algorithm}_eval_return_min"] <= m[f"{algorithm}_eval_return"] <= 500
        assert m[f"{algorithm}_eval_return_std"] >= 0 and m[f"{algorithm}_train_seconds"] > 0
        assert m[f"{algorithm}_solved_seeds"] in (0.0, 1.0, 2.0)
        weights = load_file(str(smoke.run_dir / algorithm / "model.safetensors"))
        model = rl.QNetwork(4, 2, 16) if algorithm == "dqn" else rl.ActorCritic(4, 2, 16)
        model.load_state_dict(weights)  # the first seed's agent, loadable into the network the config builds
    assert smoke.value == m["ppo_eval_return"]
    assert 8 <= m["random_eval_return"] <= 100  # a random CartPole policy lasts about 20 steps
    figures = {p.stem for p in (smoke.run_dir / "figures").glob("*.png")}
    assert figures == {"curves", "eval", "frames"}
    report = smoke.report.read_text()
    rows = [line.split(" | ")[0] for line in report.splitlines()]
    assert [rows.count(f"| {name}") for name in ("dqn", "reinforce", "ppo", "random")] == [2, 2, 2, 1]


def test_on_grid_holds_the_moving_average_of_the_last_finished_episode() -> None:
    curve = rl.Curve(steps=[10, 30, 60], returns=[2.0, 4.0, 9.0], seconds=[0.1, 0.2, 0.3])
    got = r2.on_grid(curve, 2, np.array([0, 10, 29, 30, 100]))
    assert np.isnan(got[0]) and got[1:].tolist() == [2.0, 2.0, 3.0, 6.5]


def test_frames_are_drawn_from_observations_for_both_games() -> None:
    fig, (left, right) = plt.subplots(1, 2)
    r2.draw_cartpole(left, np.array([1.0, 0.0, 0.2, 0.0]))
    pole = left.lines[-1].get_data()
    assert pole[0][1] - pole[0][0] == pytest.approx(np.sin(0.2))  # tilted right by 0.2 rad from the cart
    r2.draw_acrobot(right, np.array([1.0, 0.0, 1.0, 0.0, 0.0, 0.0]))  # hanging straight down
    xs, ys = right.lines[0].get_data()
    assert np.allclose(xs, 0) and np.allclose(ys, [0, -1, -2])
    plt.close(fig)


def test_every_preset_builds_a_valid_config() -> None:
    for name, overrides in r2.PRESETS.items():
        cfg = r2.Config(**overrides)
        assert set(cfg.algorithms) <= set(r2.TRAIN), name
