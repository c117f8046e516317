"""models/rl.py: returns and GAE against Stable-Baselines3's RolloutBuffer and a direct O(T^2) sum, the PPO
clipped loss on a hand-computed case, DQN targets that bootstrap a time limit but not a game over, and
seeded training that gives the same numbers twice."""

from __future__ import annotations

from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pytest
import torch

from dlpractice.models import rl
from dlpractice.practice.checks.test_r2_rl_games import direct_advantages

GAMMA, LAM = 0.9, 0.8


def random_rollout(seed: int, steps: int = 40) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Rewards, values, episode ends (several episodes, the last one cut by the rollout) and V(s_T)."""
    g = torch.Generator().manual_seed(seed)
    rewards = torch.randn(steps, generator=g)
    values = torch.randn(steps, generator=g)
    ends = (torch.rand(steps, generator=g) < 0.15).float()
    ends[-1] = 0.0
    return rewards, values, ends, float(torch.randn(1, generator=g))


def sb3_buffer(rewards, values, ends, last_value: float, gamma: float, lam: float):
    """Stable-Baselines3's RolloutBuffer filled with the same rollout: it marks episode *starts* instead."""
    from stable_baselines3.common.buffers import RolloutBuffer

    steps = len(rewards)
    buffer = RolloutBuffer(
        steps, gym.spaces.Box(-1, 1, (1,)), gym.spaces.Discrete(2), "cpu", gae_lambda=lam, gamma=gamma
    )
    buffer.rewards[:, 0], buffer.values[:, 0] = rewards.numpy(), values.numpy()
    buffer.episode_starts[1:, 0] = ends[:-1].numpy()  # an end after step t is a start at step t + 1
    buffer.compute_returns_and_advantage(torch.tensor([[last_value]]), np.array([bool(ends[-1])]))
    return buffer


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gae_matches_stable_baselines3_and_the_direct_sum(seed: int) -> None:
    rewards, values, ends, last_value = random_rollout(seed)
    ours = rl.gae(rewards, values, ends, last_value, GAMMA, LAM).numpy()
    assert np.allclose(ours, direct_advantages(rewards, values, ends, last_value, GAMMA, LAM), atol=1e-5)
    assert np.allclose(
        ours, sb3_buffer(rewards, values, ends, last_value, GAMMA, LAM).advantages[:, 0], atol=1e-5
    )


def test_gae_with_lambda_zero_is_the_td_error_and_with_one_the_return_minus_the_value() -> None:
    rewards, values, ends, last_value = random_rollout(3)
    next_values = torch.cat([values[1:], torch.tensor([last_value])]) * (1 - ends)
    td_error = rewards + GAMMA * next_values - values
    assert torch.allclose(rl.gae(rewards, values, ends, last_value, GAMMA, 0.0), td_error, atol=1e-6)
    returns = rl.discounted_returns(rewards, ends, GAMMA, last_value)
    assert torch.allclose(rl.gae(rewards, values, ends, last_value, GAMMA, 1.0), returns - values, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_reward_to_go_matches_stable_baselines3_and_the_direct_sum(seed: int) -> None:
    rewards, values, ends, last_value = random_rollout(seed)
    ours = rl.discounted_returns(rewards, ends, GAMMA, last_value).numpy()
    zero = torch.zeros_like(values)  # with V = 0 and lambda = 1, the advantage is the discounted return
    assert np.allclose(ours, direct_advantages(rewards, zero, ends, last_value, GAMMA, 1.0), atol=1e-5)
    assert np.allclose(
        ours, sb3_buffer(rewards, values, ends, last_value, GAMMA, 1.0).returns[:, 0], atol=1e-5
    )
    assert ours[-1] == pytest.approx(float(rewards[-1]) + GAMMA * last_value, abs=1e-6)


def test_ppo_clip_loss_on_a_hand_computed_case() -> None:
    # ratios 1.5, 0.5, 1.3, 0.7 with clip 0.2 and advantages +1, +1, -2, -2; the pessimistic minimum of
    # ratio * A and clip(ratio, 0.8, 1.2) * A: 1.2 (clipped), 0.5, -2.6, -1.6 (clipped)
    ratios = torch.tensor([1.5, 0.5, 1.3, 0.7])
    old = torch.log(torch.tensor([0.2, 0.4, 0.5, 0.3]))
    advantages = torch.tensor([1.0, 1.0, -2.0, -2.0])
    new = (old + torch.log(ratios)).requires_grad_()
    loss = rl.ppo_clip_loss(new, old, advantages, 0.2)
    assert float(loss.detach()) == pytest.approx(-(1.2 + 0.5 - 2.6 - 1.6) / 4, abs=1e-6)
    loss.backward()
    # a clipped term passes no gradient; the others -A * ratio / n (d ratio / d log-prob = ratio)
    assert torch.allclose(new.grad, torch.tensor([0.0, -0.5 / 4, 2 * 1.3 / 4, 0.0]), atol=1e-6)


def test_dqn_target_bootstraps_a_time_limit_but_not_a_game_over() -> None:
    stepper = rl.Stepper("CartPole-v1", seed=0, max_episode_steps=5)  # truncated after 5 steps, pole still up
    buffer = rl.ReplayBuffer(10, 4)
    transitions = [stepper.step(i % 2) for i in range(5)]
    for t in transitions:
        buffer.add(t)
    last = transitions[-1]
    assert last.truncated and not last.terminated
    assert buffer.terminated[4] == 0.0  # stored as "the game goes on", not as `terminated or truncated`
    assert np.array_equal(buffer.next_obs[4], last.next_obs) and not np.array_equal(
        last.next_obs, stepper.obs
    )
    rewards, next_q = torch.tensor([1.0, 1.0]), torch.tensor([10.0, 10.0])
    targets = rl.td_targets(rewards, next_q, torch.tensor([buffer.terminated[4], 1.0]), 0.9)
    assert targets.tolist() == pytest.approx([10.0, 1.0])  # truncated: 1 + 0.9 * 10; terminated: 1


def test_a_rollout_adds_the_value_of_the_final_state_at_a_time_limit() -> None:
    torch.manual_seed(0)
    model = rl.ActorCritic(4, 2, 8)
    stepper = rl.Stepper("CartPole-v1", seed=1, max_episode_steps=3)  # the pole cannot fall in 3 steps
    batch = rl.collect_rollout(stepper, model, 4, gamma=0.5)
    assert batch.episode_ends.tolist() == [0.0, 0.0, 1.0, 0.0]
    replay = gym.make("CartPole-v1")  # the same episode again, to get the observation the time limit cut
    replay.reset(seed=1)
    for action in batch.actions[:3].tolist():
        final_obs = replay.step(action)[0]
    with torch.no_grad():
        bootstrap = float(model.state_value(torch.as_tensor(final_obs)))
        assert batch.values.tolist() == pytest.approx(model.state_value(batch.obs).tolist())
        assert batch.last_value == pytest.approx(float(model.state_value(torch.as_tensor(stepper.obs))))
    assert batch.rewards.tolist() == pytest.approx([1.0, 1.0, 1.0 + 0.5 * bootstrap, 1.0])
    assert stepper.curve.returns == [3.0] and stepper.curve.steps == [3]


def test_curve_moving_average_and_first_solved() -> None:
    curve = rl.Curve(steps=[10, 30, 60, 100], returns=[1.0, 3.0, 5.0, 7.0], seconds=[0.1, 0.2, 0.3, 0.4])
    assert curve.moving_average(2).tolist() == [1.0, 2.0, 4.0, 6.0]
    assert curve.first_solved(4.0, 2) == (60, 0.3)
    assert curve.first_solved(6.5, 2) is None


def test_epsilon_falls_linearly_then_stays() -> None:
    s = SimpleNamespace(dqn_steps=100, dqn_explore_fraction=0.5, dqn_final_epsilon=0.1)
    assert [rl.epsilon_at(step, s) for step in (0, 25, 50, 99)] == pytest.approx([1.0, 0.55, 0.1, 0.1])


SETTINGS = SimpleNamespace(
    hidden=8,
    gamma=0.99,
    dqn_steps=200,
    dqn_lr=1e-3,
    dqn_batch_size=16,
    dqn_buffer=100,
    dqn_learning_starts=50,
    dqn_train_every=2,
    dqn_target_every=20,
    dqn_explore_fraction=0.5,
    dqn_final_epsilon=0.05,
    dqn_double=True,
    pg_steps=200,
    pg_batch_steps=60,
    pg_lr=1e-2,
    ppo_steps=128,
    ppo_rollout=64,
    ppo_epochs=2,
    ppo_batch_size=16,
    ppo_lr=1e-3,
    ppo_lambda=0.95,
    ppo_clip=0.2,
    ppo_value_coef=0.5,
    ppo_entropy_coef=0.01,
)


@pytest.mark.parametrize("train", [rl.train_dqn, rl.train_reinforce, rl.train_ppo])
def test_training_is_seeded_same_numbers_twice_other_numbers_for_another_seed(train) -> None:
    first, curve = train("CartPole-v1", 3, SETTINGS)
    second, again = train("CartPole-v1", 3, SETTINGS)
    assert curve.returns == again.returns and curve.steps == again.steps and len(curve.returns) > 3
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    other, _ = train("CartPole-v1", 4, SETTINGS)
    assert not torch.equal(next(iter(first.state_dict().values())), next(iter(other.state_dict().values())))


def test_greedy_evaluation_and_the_random_baseline_are_seeded() -> None:
    torch.manual_seed(0)
    model = rl.QNetwork(4, 2, 8)
    seeds = [100, 101, 102]
    greedy = rl.evaluate("CartPole-v1", seeds, lambda _: rl.greedy(model))
    assert np.array_equal(greedy, rl.evaluate("CartPole-v1", seeds, lambda _: rl.greedy(model)))
    random = rl.evaluate("CartPole-v1", seeds, lambda seed: rl.random_policy("CartPole-v1", seed))
    assert np.array_equal(
        random, rl.evaluate("CartPole-v1", seeds, lambda s: rl.random_policy("CartPole-v1", s))
    )
    assert random.shape == (3,) and (random >= 1).all()
