"""Checks of lab r2: reward-to-go with episode ends, GAE(lambda), and PPO's clipped surrogate, against the
definitions written out as direct O(T^2) sums and a hand-computed case."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlpractice.practice.checks.support import assert_close

GAMMA, LAM = 0.9, 0.8


def rollout(seed: int, steps: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Random rewards and values, episode ends after steps 5 and 12 and 13, V(s_T) = 2 (a cut episode)."""
    g = torch.Generator().manual_seed(seed)
    ends = torch.zeros(steps)
    ends[[5, 12, 13]] = 1.0
    return torch.randn(steps, generator=g), torch.randn(steps, generator=g), ends, 2.0


def direct_advantages(rewards, values, ends, last_value: float, gamma: float, lam: float) -> np.ndarray:
    """A_t = sum_k (gamma lam)^k delta_{t+k}, to the episode's end; V after step T-1 is last_value."""
    r, v, e = rewards.double().numpy(), values.double().numpy(), ends.numpy()
    delta = r + gamma * np.append(v[1:], last_value) * (1 - e) - v
    out = np.zeros(len(r))
    for t in range(len(r)):
        for k in range(t, len(r)):
            out[t] += (gamma * lam) ** (k - t) * delta[k]
            if e[k]:
                break
    return out


@pytest.mark.exercise("r2.1")
def test_reward_to_go_sums_the_discounted_rewards_of_the_rest_of_the_episode(impl):
    rewards, values, ends, last_value = rollout(0)
    got = torch.as_tensor(impl.discounted_returns(rewards, ends, GAMMA, last_value)).double()
    assert got.shape == (30,), f"one return per step: expected (30,), got {tuple(got.shape)}"
    expected = direct_advantages(rewards, torch.zeros(30), ends, last_value, GAMMA, 1.0)
    assert_close(
        got.numpy(),
        expected,
        "G_t = r_t + gamma r_{t+1} + ... to the end of t's episode; the last episode adds gamma^k last_value",
        atol=1e-5,
    )


@pytest.mark.exercise("r2.1")
def test_reward_to_go_stops_at_each_episode_end(impl):
    rewards = torch.ones(6)
    ends = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.0, 1.0])
    got = torch.as_tensor(impl.discounted_returns(rewards, ends, 0.5)).double().numpy()
    assert_close(
        got,
        [1.75, 1.5, 1.0, 1.75, 1.5, 1.0],
        "two 3-step episodes of reward 1 with gamma 0.5: 1 + 0.5 + 0.25, 1 + 0.5, 1 in each, nothing "
        "flowing back across the end after step 2",
        atol=1e-6,
    )


@pytest.mark.exercise("r2.2")
def test_gae_is_the_lambda_discounted_sum_of_td_errors_within_the_episode(impl):
    for seed in (0, 1):
        rewards, values, ends, last_value = rollout(seed)
        got = torch.as_tensor(impl.gae(rewards, values, ends, last_value, GAMMA, LAM)).double()
        assert got.shape == (30,), f"one advantage per step: expected (30,), got {tuple(got.shape)}"
        assert_close(
            got.numpy(),
            direct_advantages(rewards, values, ends, last_value, GAMMA, LAM),
            "A_t = sum_k (gamma lam)^k delta_{t+k}, "
            "delta_t = r_t + gamma V(s_{t+1}) (0 past an episode end) - V(s_t)",
            atol=1e-5,
        )


@pytest.mark.exercise("r2.2")
def test_gae_with_lambda_zero_is_the_one_step_td_error(impl):
    rewards, values, ends, last_value = rollout(2)
    got = torch.as_tensor(impl.gae(rewards, values, ends, last_value, GAMMA, 0.0)).double().numpy()
    assert_close(
        got,
        direct_advantages(rewards, values, ends, last_value, GAMMA, 0.0),
        "lambda 0: A_t = r_t + gamma V(s_{t+1}) - V(s_t); V(s_{t+1}) is 0 after an end, last_value at T",
        atol=1e-5,
    )


@pytest.mark.exercise("r2.3")
def test_ppo_clipped_surrogate_on_a_hand_computed_case(impl):
    # ratios 1.5, 0.5, 1.3, 0.7, clip 0.2, advantages +1, +1, -2, -2: min(rho A, clip(rho) A) is
    # 1.2 (clipped), 0.5, -2.6, -1.6 (clipped)
    old = torch.log(torch.tensor([0.2, 0.4, 0.5, 0.3]))
    new = (old + torch.log(torch.tensor([1.5, 0.5, 1.3, 0.7]))).requires_grad_()
    loss = impl.ppo_clip_loss(new, old, torch.tensor([1.0, 1.0, -2.0, -2.0]), 0.2)
    assert loss.shape == (), f"the loss is one number (a mean over samples), got shape {tuple(loss.shape)}"
    expected = -(1.2 + 0.5 - 2.6 - 1.6) / 4
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-5), (
        f"expected {expected:.4f}, got {float(loss.detach()):.4f}: -mean(min(rho A, clip(rho, 0.8, 1.2) A)) "
        "with rho = exp(log_probs - old_log_probs)"
    )
    loss.backward()
    assert torch.allclose(new.grad, torch.tensor([0.0, -0.125, 0.65, 0.0]), atol=1e-5), (
        f"gradients {new.grad.tolist()}: samples whose clipped term wins (0 and 3) should pass no gradient, "
        "the others -A rho / n; the ratio must come from the log-probabilities, not be detached"
    )
