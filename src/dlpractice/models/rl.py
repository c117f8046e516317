"""Reinforcement learning from scratch on gymnasium's classic-control games: DQN, REINFORCE and PPO.

The pieces the three algorithms are built from, each small enough to read and test on its own:
  - Stepper: one environment stepped one action at a time; it keeps the true last observation of an episode
    (gymnasium returns it before the reset) and logs every finished episode's return (a Curve).
  - DQN: QNetwork, ReplayBuffer (stores `terminated`, never `terminated or truncated`), td_targets,
    epsilon-greedy acting, a target network, the Huber TD loss, optionally double DQN.
  - REINFORCE and PPO: ActorCritic (separate policy and value MLPs), collect_rollout, discounted_returns
    (reward-to-go), gae (generalised advantage estimation), ppo_clip_loss.
A time limit (truncation) is not the end of the game: the state still has a future. DQN bootstraps it from
`next_obs` (only `terminated` zeroes the future); the on-policy methods add gamma * V(final observation)
to the last reward of a truncated episode, as Stable-Baselines3 does.
Simplified: one environment at a time (no vectorised envs), discrete actions, no observation or reward
normalisation, no prioritised replay, no recurrent policies.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """Linear layers of the given sizes with `activation` between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(fan_in, fan_out))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def game_shape(env_id: str) -> tuple[int, int, float]:
    """(observation size, number of actions, the solve threshold of the game's spec)."""
    env = gym.make(env_id)
    obs_dim, n_actions = int(np.prod(env.observation_space.shape)), int(env.action_space.n)
    threshold = env.spec.reward_threshold if env.spec and env.spec.reward_threshold is not None else np.inf
    env.close()
    return obs_dim, n_actions, float(threshold)


# ---------------------------------------------------------------- acting in the environment


class Transition(NamedTuple):
    obs: np.ndarray  # (D,)
    action: int
    reward: float
    next_obs: np.ndarray  # (D,) the true next state, also when the episode ended there
    terminated: bool  # the game is over (the pole fell): no future reward
    truncated: bool  # a time limit cut the episode: the state still has a future, so targets bootstrap


@dataclass
class Curve:
    """Every finished training episode: env steps when it ended, its return, seconds since training began."""

    steps: list[int] = field(default_factory=list)
    returns: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    def moving_average(self, window: int) -> np.ndarray:
        """(E,) the mean return of the last `window` episodes (fewer at the start) after each episode."""
        sums = np.cumsum([0.0, *self.returns])
        ends = np.arange(1, len(self.returns) + 1)
        starts = np.maximum(ends - window, 0)
        return (sums[ends] - sums[starts]) / (ends - starts)

    def first_solved(self, threshold: float, window: int) -> tuple[int, float] | None:
        """(env steps, seconds) when the mean of `window` consecutive episodes first reached `threshold`."""
        average = self.moving_average(window)
        hits = [i for i in range(window - 1, len(average)) if average[i] >= threshold]
        return (self.steps[hits[0]], self.seconds[hits[0]]) if hits else None


class Stepper:
    """One seeded environment, stepped one action at a time, reset whenever an episode ends."""

    def __init__(self, env_id: str, seed: int, max_episode_steps: int | None = None):
        self.env = gym.make(env_id, max_episode_steps=max_episode_steps)
        self.env.action_space.seed(seed)
        self.obs, _ = self.env.reset(seed=seed)  # later resets continue this seeded stream
        self.steps, self.episode_return = 0, 0.0
        self.curve = Curve()
        self.started = time.perf_counter()

    def step(self, action: int) -> Transition:
        next_obs, reward, terminated, truncated, _ = self.env.step(action)
        transition = Transition(self.obs, action, float(reward), next_obs, bool(terminated), bool(truncated))
        self.steps += 1
        self.episode_return += float(reward)
        if terminated or truncated:
            self.curve.steps.append(self.steps)
            self.curve.returns.append(self.episode_return)
            self.curve.seconds.append(time.perf_counter() - self.started)
            next_obs, _ = self.env.reset()
            self.episode_return = 0.0
        self.obs = next_obs
        return transition


def play(env_id: str, seed: int, choose: Callable[[np.ndarray], int]) -> tuple[float, np.ndarray]:
    """One episode on a fresh environment reset with `seed`: its return and (T + 1, D) observations."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    seen, total, ended = [obs], 0.0, False
    while not ended:
        obs, reward, terminated, truncated, _ = env.step(choose(obs))
        seen.append(obs)
        total += float(reward)
        ended = terminated or truncated
    env.close()
    return total, np.stack(seen)


def greedy(model: nn.Module) -> Callable[[np.ndarray], int]:
    """The action with the highest output (Q-value or policy logit): how a trained agent is evaluated."""

    @torch.no_grad()
    def choose(obs: np.ndarray) -> int:
        return int(model(torch.as_tensor(obs, dtype=torch.float32)).argmax())

    return choose


def random_policy(env_id: str, seed: int) -> Callable[[np.ndarray], int]:
    """Uniformly random actions from a seeded action space: the baseline every agent must beat."""
    space = gym.make(env_id).action_space
    space.seed(seed)
    return lambda obs: int(space.sample())


def evaluate(env_id: str, seeds: list[int], make_choose: Callable[[int], Callable]) -> np.ndarray:
    """(N,) the return of one episode per seed, each with its own policy from `make_choose(seed)`."""
    return np.array([play(env_id, seed, make_choose(seed))[0] for seed in seeds])


# ---------------------------------------------------------------- DQN


class QNetwork(nn.Module):
    """Q(s, .): one value per action."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.net = mlp([obs_dim, hidden, hidden, n_actions], nn.ReLU)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(obs)  # (B, A)


class ReplayBuffer:
    """The last `capacity` transitions in a ring; uniform random minibatches break their correlation."""

    def __init__(self, capacity: int, obs_dim: int):
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros(capacity, np.int64)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.capacity, self.size, self.position = capacity, 0, 0

    def add(self, t: Transition) -> None:
        i = self.position
        self.obs[i], self.next_obs[i] = t.obs, t.next_obs
        self.actions[i], self.rewards[i] = t.action, t.reward
        self.terminated[i] = t.terminated  # not `or truncated`: a time limit does not end the game's future
        self.position = (i + 1) % self.capacity
        self.size = min(self.size + 1, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> dict[str, torch.Tensor]:
        index = rng.integers(0, self.size, batch_size)
        names = ("obs", "next_obs", "actions", "rewards", "terminated")
        return {name: torch.from_numpy(getattr(self, name)[index]) for name in names}


def td_targets(
    rewards: torch.Tensor, next_values: torch.Tensor, terminated: torch.Tensor, gamma: float
) -> torch.Tensor:
    """(B,) r + gamma * max_a' Q(s', a'); the future is zeroed where the game ended, not at a time limit."""
    return rewards + gamma * (1.0 - terminated) * next_values


class DQNSettings(Protocol):
    hidden: int
    gamma: float
    dqn_steps: int
    dqn_lr: float
    dqn_batch_size: int
    dqn_buffer: int
    dqn_learning_starts: int
    dqn_train_every: int
    dqn_target_every: int
    dqn_explore_fraction: float
    dqn_final_epsilon: float
    dqn_double: bool


def epsilon_at(step: int, s: DQNSettings) -> float:
    """Linear decay from 1 to the final epsilon over the first explore_fraction of training, then flat."""
    progress = min(step / max(s.dqn_explore_fraction * s.dqn_steps, 1), 1.0)
    return 1.0 + progress * (s.dqn_final_epsilon - 1.0)


def train_dqn(env_id: str, seed: int, s: DQNSettings) -> tuple[QNetwork, Curve]:
    """DQN: act epsilon-greedily into a replay buffer; every dqn_train_every env steps one Huber TD step on a
    sampled minibatch; every dqn_target_every steps the target network becomes a copy of the online one."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    obs_dim, n_actions, _ = game_shape(env_id)
    stepper, buffer = Stepper(env_id, seed), ReplayBuffer(s.dqn_buffer, obs_dim)
    online = QNetwork(obs_dim, n_actions, s.hidden)
    target = QNetwork(obs_dim, n_actions, s.hidden)
    target.load_state_dict(online.state_dict())
    optimizer = torch.optim.Adam(online.parameters(), lr=s.dqn_lr)
    act = greedy(online)
    for step in range(s.dqn_steps):
        explore = rng.random() < epsilon_at(step, s)
        buffer.add(stepper.step(stepper.env.action_space.sample() if explore else act(stepper.obs)))
        if step >= s.dqn_learning_starts and step % s.dqn_train_every == 0:
            dqn_update(online, target, optimizer, buffer.sample(s.dqn_batch_size, rng), s)
        if step % s.dqn_target_every == 0:
            target.load_state_dict(online.state_dict())
    return online, stepper.curve


def dqn_update(
    online: QNetwork, target: QNetwork, optimizer: torch.optim.Optimizer, batch: dict, s: DQNSettings
) -> None:
    """One gradient step on the Huber TD loss; the target network (frozen between syncs) gives the targets."""
    with torch.no_grad():
        next_q = target(batch["next_obs"])  # (B, A)
        if s.dqn_double:  # the online net picks the action, the target net scores it: less overestimation
            next_value = next_q.gather(1, online(batch["next_obs"]).argmax(1, keepdim=True)).squeeze(1)
        else:
            next_value = next_q.max(1).values
        targets = td_targets(batch["rewards"], next_value, batch["terminated"], s.gamma)  # (B,)
    q = online(batch["obs"]).gather(1, batch["actions"][:, None]).squeeze(1)  # (B,)
    loss = F.smooth_l1_loss(q, targets)
    optimizer.zero_grad()
    loss.backward()
    nn.utils.clip_grad_norm_(online.parameters(), 10.0)
    optimizer.step()


# ---------------------------------------------------------------- policy gradients: REINFORCE and PPO


class ActorCritic(nn.Module):
    """A policy MLP (action logits) and a value MLP, kept separate so neither's gradient disturbs the other.
    Calling the model gives the logits, so greedy() acts with it like with a QNetwork."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: int):
        super().__init__()
        self.policy = mlp([obs_dim, hidden, hidden, n_actions])
        self.value = mlp([obs_dim, hidden, hidden, 1])

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.policy(obs)  # (B, A) logits

    def distribution(self, obs: torch.Tensor) -> torch.distributions.Categorical:
        # validate_args=False: the checks cost more than a forward pass of this small net
        return torch.distributions.Categorical(logits=self.policy(obs), validate_args=False)

    def state_value(self, obs: torch.Tensor) -> torch.Tensor:
        return self.value(obs).squeeze(-1)  # (B,)


@dataclass
class Rollout:
    """T steps collected with the current policy, as tensors."""

    obs: torch.Tensor  # (T, D)
    actions: torch.Tensor  # (T,)
    log_probs: torch.Tensor  # (T,) log pi_old(a | s), for PPO's ratio
    values: torch.Tensor  # (T,) V(s) when collected
    rewards: torch.Tensor  # (T,) with gamma * V(final obs) added at a truncation
    episode_ends: torch.Tensor  # (T,) 1.0 where an episode ended (terminated or truncated) after that step
    last_value: float  # V of the state after the last step (0 if an episode ended there)


@torch.no_grad()
def collect_rollout(
    stepper: Stepper, model: ActorCritic, n_steps: int, gamma: float, whole_episodes: bool = False
) -> Rollout:
    """Act with the sampled policy for n_steps (then on to the end of the episode if whole_episodes).
    Only sampling needs a forward pass per step; log-probabilities and values are one batched pass after."""
    seen, actions, rewards, ends = [], [], [], []
    while len(seen) < n_steps or (whole_episodes and not ends[-1]):
        logits = model(torch.as_tensor(stepper.obs, dtype=torch.float32))  # (A,)
        action = int(torch.multinomial(logits.softmax(-1), 1))  # by hand: a Categorical costs more here
        t = stepper.step(action)
        reward = t.reward
        if t.truncated and not t.terminated:  # the time limit is not the game's end: bootstrap its future
            reward += gamma * float(model.state_value(torch.as_tensor(t.next_obs, dtype=torch.float32)))
        seen.append(t.obs)
        actions.append(action)
        rewards.append(reward)
        ends.append(t.terminated or t.truncated)
    obs = torch.as_tensor(np.stack(seen), dtype=torch.float32)  # (T, D)
    action_ids = torch.tensor(actions)  # (T,)
    last_obs = torch.as_tensor(stepper.obs, dtype=torch.float32)
    return Rollout(
        obs,
        action_ids,
        model(obs).log_softmax(-1).gather(1, action_ids[:, None]).squeeze(1),
        model.state_value(obs),
        torch.tensor(rewards, dtype=torch.float32),
        torch.tensor(ends, dtype=torch.float32),
        0.0 if ends[-1] else float(model.state_value(last_obs)),
    )


def discounted_returns(
    rewards: torch.Tensor, episode_ends: torch.Tensor, gamma: float, last_value: float = 0.0
) -> torch.Tensor:
    """(T,) reward-to-go G_t = r_t + gamma * G_{t+1}, restarting after each episode end; the rollout's last
    step bootstraps from last_value (the value of the state it stopped in, 0 after an episode end)."""
    # BEGIN EXERCISE r2.1: reward-to-go, backwards through time, cut at each episode end
    returns = torch.zeros_like(rewards)
    future = last_value
    for t in reversed(range(len(rewards))):
        future = rewards[t] + gamma * (1.0 - episode_ends[t]) * future
        returns[t] = future
    return returns
    # END EXERCISE


def gae(
    rewards: torch.Tensor,
    values: torch.Tensor,
    episode_ends: torch.Tensor,
    last_value: float,
    gamma: float,
    lam: float,
) -> torch.Tensor:
    """(T,) generalised advantage estimates: A_t = sum_k (gamma lam)^k delta_{t+k} within the episode, with
    delta_t = r_t + gamma V(s_{t+1}) - V(s_t); V(s_T) is last_value; no V(s_{t+1}) across an episode end.
    lam = 0 gives the one-step TD error, lam = 1 the Monte Carlo return minus V(s_t)."""
    # BEGIN EXERCISE r2.2: the TD errors, then their (gamma * lam)-discounted sum backwards
    advantages = torch.zeros_like(rewards)
    next_value, running = last_value, 0.0
    for t in reversed(range(len(rewards))):
        alive = 1.0 - episode_ends[t]
        delta = rewards[t] + gamma * alive * next_value - values[t]
        running = delta + gamma * lam * alive * running
        advantages[t] = running
        next_value = values[t]
    return advantages
    # END EXERCISE


def ppo_clip_loss(
    log_probs: torch.Tensor, old_log_probs: torch.Tensor, advantages: torch.Tensor, clip: float
) -> torch.Tensor:
    """PPO's clipped surrogate, negated to be minimised: -mean(min(rho A, clip(rho, 1 - eps, 1 + eps) A))
    with rho = pi(a|s) / pi_old(a|s). The min makes it a pessimistic bound: moving rho beyond 1 +- eps in
    the direction the advantage rewards earns nothing, so one batch cannot push the policy far."""
    # BEGIN EXERCISE r2.3: the probability ratio, its clipped twin, the pessimistic minimum
    ratio = torch.exp(log_probs - old_log_probs)
    clipped = torch.clamp(ratio, 1.0 - clip, 1.0 + clip)
    return -torch.min(ratio * advantages, clipped * advantages).mean()
    # END EXERCISE


def normalised(x: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit spread: the policy-gradient step's size stops depending on the reward scale."""
    return (x - x.mean()) / (x.std(correction=0) + 1e-8)


class ReinforceSettings(Protocol):
    hidden: int
    gamma: float
    pg_steps: int
    pg_batch_steps: int
    pg_lr: float


def train_reinforce(env_id: str, seed: int, s: ReinforceSettings) -> tuple[ActorCritic, Curve]:
    """REINFORCE with reward-to-go and a learned baseline: one gradient step per batch of whole episodes."""
    torch.manual_seed(seed)
    obs_dim, n_actions, _ = game_shape(env_id)
    stepper, model = Stepper(env_id, seed), ActorCritic(obs_dim, n_actions, s.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.pg_lr)
    while stepper.steps < s.pg_steps:
        batch = collect_rollout(stepper, model, s.pg_batch_steps, s.gamma, whole_episodes=True)
        returns = discounted_returns(batch.rewards, batch.episode_ends, s.gamma)  # (T,)
        advantages = normalised(returns - batch.values)  # the baseline lowers the variance, not the mean
        log_probs = model.distribution(batch.obs).log_prob(batch.actions)  # (T,)
        value_loss = F.mse_loss(model.state_value(batch.obs), returns)
        loss = -(log_probs * advantages).mean() + 0.5 * value_loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return model, stepper.curve


class PPOSettings(Protocol):
    hidden: int
    gamma: float
    ppo_steps: int
    ppo_rollout: int
    ppo_epochs: int
    ppo_batch_size: int
    ppo_lr: float
    ppo_lambda: float
    ppo_clip: float
    ppo_value_coef: float
    ppo_entropy_coef: float


def train_ppo(env_id: str, seed: int, s: PPOSettings) -> tuple[ActorCritic, Curve]:
    """PPO: rollouts of ppo_rollout steps, GAE(lambda), several epochs of minibatches on the clipped loss;
    the learning rate decays linearly to 0 (late updates that undo a solved policy are the usual failure)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    obs_dim, n_actions, _ = game_shape(env_id)
    stepper, model = Stepper(env_id, seed), ActorCritic(obs_dim, n_actions, s.hidden)
    optimizer = torch.optim.Adam(model.parameters(), lr=s.ppo_lr, eps=1e-5)
    n_updates = max(s.ppo_steps // s.ppo_rollout, 1)
    for update in range(n_updates):
        optimizer.param_groups[0]["lr"] = s.ppo_lr * (1 - update / n_updates)
        batch = collect_rollout(stepper, model, s.ppo_rollout, s.gamma)
        advantages = gae(
            batch.rewards, batch.values, batch.episode_ends, batch.last_value, s.gamma, s.ppo_lambda
        )
        ppo_epochs(model, optimizer, batch, advantages, advantages + batch.values, s, rng)
    return model, stepper.curve


def ppo_epochs(
    model: ActorCritic,
    optimizer: torch.optim.Optimizer,
    batch: Rollout,
    advantages: torch.Tensor,
    returns: torch.Tensor,
    s: PPOSettings,
    rng: np.random.Generator,
) -> None:
    for _ in range(s.ppo_epochs):
        order = torch.from_numpy(rng.permutation(len(advantages)))
        for index in order.split(s.ppo_batch_size):
            dist = model.distribution(batch.obs[index])
            log_probs = dist.log_prob(batch.actions[index])  # (B,)
            policy_loss = ppo_clip_loss(
                log_probs, batch.log_probs[index], normalised(advantages[index]), s.ppo_clip
            )
            value_loss = F.mse_loss(model.state_value(batch.obs[index]), returns[index])
            loss = policy_loss + s.ppo_value_coef * value_loss - s.ppo_entropy_coef * dist.entropy().mean()
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 0.5)
            optimizer.step()
