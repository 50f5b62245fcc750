"""Pieces every reinforcement learning algorithm here shares, as small functions.

Returns and advantages (reward-to-go, GAE), a replay buffer with typed batches, target
network updates, vectorised environments, seeding and evaluation. The algorithms
(``ilrl_ros.core.algorithms.*``) are one file each on top of these.
"""

import contextlib
from dataclasses import dataclass
import math
import time

import gymnasium as gym
import numpy as np
import torch


@contextlib.contextmanager
def torch_threads(threads: int = 1):
    """Run the block with ``threads`` torch threads, then restore the previous count.

    Small networks train fastest on one thread, and on a busy machine extra threads spin.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def seed_everything(seed: int) -> np.random.Generator:
    """Seed torch and return a NumPy generator for the algorithm's own sampling."""
    torch.manual_seed(seed)
    return np.random.default_rng(seed)


def reward_to_go(rewards: np.ndarray, gamma: float) -> np.ndarray:
    """G_t = sum_k gamma^k r_{t+k} over one episode (the REINFORCE return from step t)."""
    out = np.zeros(len(rewards), dtype=np.float64)
    running = 0.0
    for t in range(len(rewards) - 1, -1, -1):
        running = rewards[t] + gamma * running
        out[t] = running
    return out


def gae(rewards: np.ndarray, values: np.ndarray, terminated: np.ndarray,
        truncated: np.ndarray, next_values: np.ndarray, gamma: float, lam: float) -> tuple:
    """Generalised advantage estimation (Schulman et al. 2016) over a [T, N] rollout.

    ``values[t]`` is V(s_t); ``next_values[t]`` is V(s_{t+1}) of the same episode (for a
    truncated step, the value of the final observation before the reset). A terminated
    step bootstraps nothing; a truncated one bootstraps from ``next_values`` but stops the
    advantage recursion. Returns (advantages, returns = advantages + values).
    """
    rewards = np.asarray(rewards, dtype=np.float64)
    T = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:], dtype=np.float64)
    for t in range(T - 1, -1, -1):
        not_terminal = 1.0 - terminated[t]
        delta = rewards[t] + gamma * next_values[t] * not_terminal - values[t]
        episode_goes_on = not_terminal * (1.0 - truncated[t])
        running = delta + gamma * lam * episode_goes_on * running
        advantages[t] = running
    return advantages, advantages + values


def polyak_update(target: torch.nn.Module, source: torch.nn.Module, tau: float) -> None:
    """Move target towards source: target <- (1 - tau) target + tau source."""
    with torch.no_grad():
        for t, s in zip(target.parameters(), source.parameters()):
            t.mul_(1.0 - tau).add_(s, alpha=tau)


@dataclass(frozen=True)
class TransitionBatch:
    """A minibatch of transitions (s, a, r, s', terminated) as tensors."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    terminated: torch.Tensor

    def __post_init__(self):
        n = self.obs.shape[0]
        for name in ('actions', 'rewards', 'next_obs', 'terminated'):
            if getattr(self, name).shape[0] != n:
                raise ValueError(f'{name} has {getattr(self, name).shape[0]} rows, obs has {n}')


class ReplayBuffer:
    """A fixed-size ring buffer of transitions in NumPy arrays."""

    def __init__(self, obs_dim: int, act_shape: tuple, capacity: int,
                 act_dtype=np.float32):
        self.capacity = int(capacity)
        self.obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.next_obs = np.zeros((self.capacity, obs_dim), dtype=np.float32)
        self.actions = np.zeros((self.capacity, *act_shape), dtype=act_dtype)
        self.rewards = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.size = 0
        self._next = 0

    def __len__(self) -> int:
        return self.size

    def add(self, obs, actions, rewards, next_obs, terminated) -> None:
        """Add a batch of transitions (leading dimension: number of environments).

        Rows go in environment order after the newest; all of them in one slice, or in one
        index array where the batch wraps around the end of the ring. Of a batch larger
        than the buffer, the last ``capacity`` rows are kept.
        """
        obs, next_obs = np.atleast_2d(obs), np.atleast_2d(next_obs)
        actions, rewards = np.asarray(actions), np.asarray(rewards)
        terminated = np.asarray(terminated)
        n = len(obs)
        if n > self.capacity:
            keep = slice(n - self.capacity, n)
            obs, actions, rewards = obs[keep], actions[keep], rewards[keep]
            next_obs, terminated = next_obs[keep], terminated[keep]
            self._next = (self._next + n - self.capacity) % self.capacity
            n = self.capacity
        start = self._next
        rows = slice(start, start + n) if start + n <= self.capacity \
            else np.arange(start, start + n) % self.capacity
        self.obs[rows] = obs
        self.actions[rows] = actions
        self.rewards[rows] = rewards
        self.next_obs[rows] = next_obs
        self.terminated[rows] = terminated
        self._next = (start + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, rng: np.random.Generator) -> TransitionBatch:
        if self.size == 0:
            raise ValueError('cannot sample from an empty replay buffer')
        index = rng.integers(0, self.size, size=batch_size)
        return TransitionBatch(
            obs=torch.from_numpy(self.obs[index]),
            actions=torch.from_numpy(self.actions[index]),
            rewards=torch.from_numpy(self.rewards[index]),
            next_obs=torch.from_numpy(self.next_obs[index]),
            terminated=torch.from_numpy(self.terminated[index]))


def make_vec_env(env_fn, num_envs: int, seed: int):
    """N copies of ``env_fn()`` stepped together (auto-reset on the next step after done)."""
    envs = gym.vector.SyncVectorEnv([env_fn for _ in range(num_envs)],
                                    autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
    envs.reset(seed=seed)
    return envs


def final_observations(next_obs: np.ndarray, infos: dict, done: np.ndarray) -> np.ndarray:
    """The true s_{t+1} of each environment: the pre-reset observation where one ended.

    With same-step auto-reset, a vector env returns the next episode's first observation for
    environments that just ended, and the last one in ``infos['final_obs']``.
    """
    out = np.array(next_obs, dtype=np.float32, copy=True)
    if 'final_obs' in infos:
        for i in np.flatnonzero(done):
            out[i] = infos['final_obs'][i]
    return out


def evaluate(act, env_fn, episodes: int = 10, seed: int = 10_000) -> dict:
    """Run ``act(obs) -> action`` for whole episodes; return mean, std and all returns."""
    env = env_fn()
    returns, lengths = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=seed + episode)
        total, steps, done = 0.0, 0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(act(obs))
            total += float(reward)
            steps += 1
            done = terminated or truncated
        returns.append(total)
        lengths.append(steps)
    env.close()
    return {'mean': float(np.mean(returns)), 'std': float(np.std(returns)),
            'returns': returns, 'mean_length': float(np.mean(lengths))}


class Progress:
    """Reports ``step/total`` with elapsed time to a callback at most every ``period_s``."""

    def __init__(self, total: int, report=None, period_s: float = 2.0):
        self.total, self.report, self.period_s = total, report, period_s
        self.started = time.monotonic()
        self._last = -math.inf

    def __call__(self, step: int, metrics: dict, force: bool = False) -> None:
        now = time.monotonic()
        if self.report and (force or now - self._last >= self.period_s or step >= self.total):
            self._last = now
            self.report(step, self.total, metrics)

    @property
    def seconds(self) -> float:
        return time.monotonic() - self.started
