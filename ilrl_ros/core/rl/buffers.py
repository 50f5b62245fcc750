"""Where experience is kept: the off-policy replay buffer and the on-policy rollout.

``ReplayBuffer`` is a ring of transitions in NumPy arrays that adds the transitions of all
environments of a vector step in one slice (as Stable-Baselines3's ``ReplayBuffer.add``)
and samples typed ``TransitionBatch`` minibatches. ``RolloutCollector`` steps vectorised
environments with one forward pass per vector step and returns a ``Rollout``: what GAE
needs, including the value of the true final observation of episodes cut by a time limit.
"""

from dataclasses import dataclass
import math
from typing import Optional

import numpy as np
import torch

from ilrl_ros.core.networks import ActorCritic
from ilrl_ros.core.networks.actor_critic import OBS_EPS
from ilrl_ros.core.rl.vec_env import final_observations


# ---------------------------------------------------------------- off-policy: replay

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


# ---------------------------------------------------------------- on-policy: rollouts

@dataclass(frozen=True)
class Rollout:
    """``num_steps`` vector steps of ``num_envs`` environments, as [T, N, ...] tensors."""

    obs: torch.Tensor
    """Normalised observations s_t, as the network saw them: [T, N, obs_dim]."""
    actions: torch.Tensor
    """Sampled (unclipped) actions: [T, N, act_dim] floats, or [T, N] indices."""
    log_probs: torch.Tensor
    values: torch.Tensor
    """V(s_t): [T, N]."""
    rewards: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    next_values: np.ndarray
    """V(s_{t+1}) of the same episode (for a truncated step, of its final observation)."""

    def __post_init__(self):
        steps, envs = self.obs.shape[:2]
        for name in ('actions', 'log_probs', 'values', 'rewards', 'terminated', 'truncated',
                     'next_values'):
            if tuple(getattr(self, name).shape[:2]) != (steps, envs):
                raise ValueError(f'rollout {name} has shape {tuple(getattr(self, name).shape)}'
                                 f'; expected ({steps}, {envs}, ...)')


class RewardScaler:
    """Divides rewards by the running std of the discounted return (as VecNormalize)."""

    def __init__(self, num_envs: int, gamma: float, clip: float = 10.0):
        self.gamma, self.clip = gamma, clip
        self.returns = np.zeros(num_envs)
        self.mean, self.var, self.count = 0.0, 1.0, 0.0

    def __call__(self, rewards: np.ndarray, done: np.ndarray) -> np.ndarray:
        self.returns = self.returns * self.gamma + rewards
        n, batch_mean, batch_var = len(rewards), self.returns.mean(), self.returns.var()
        total = self.count + n
        delta = batch_mean - self.mean
        self.var = (self.var * self.count + batch_var * n
                    + delta * delta * self.count * n / total) / total
        self.mean += delta * n / total
        self.count = total
        self.returns[done] = 0.0
        return np.clip(rewards / math.sqrt(self.var + OBS_EPS), -self.clip, self.clip)


class RolloutCollector:
    """Steps a vector environment with a policy; keeps episode returns as they finish.

    One forward pass per vector step, in inference mode. With same-step auto-reset an
    environment that ended returns the next episode's first observation; a truncated
    episode is bootstrapped from the value of its true final observation.
    """

    def __init__(self, envs, policy: ActorCritic, seed: int,
                 reward_scaler: Optional[RewardScaler] = None):
        self.envs, self.policy = envs, policy
        self.reward_scaler = reward_scaler
        obs, _ = envs.reset(seed=seed)
        self.next_obs = np.asarray(obs, dtype=np.float32)
        self.episode_returns = np.zeros(envs.num_envs)
        self.finished_returns: list = []

    def collect(self, num_steps: int) -> Rollout:
        policy, n = self.policy, self.envs.num_envs
        obs_list, act_list, logp_list, value_list = [], [], [], []
        rewards = np.zeros((num_steps, n))
        terminated = np.zeros((num_steps, n))
        truncated = np.zeros((num_steps, n))
        next_values = np.zeros((num_steps, n))
        truncated_values = {}
        with torch.inference_mode():
            for t in range(num_steps):
                obs = torch.from_numpy(self.next_obs)
                policy.update_obs_stats(obs)
                obs_n = policy.normalize(obs)
                actions, log_probs, values = policy.sample(obs_n)
                obs_list.append(obs_n)
                act_list.append(actions)
                logp_list.append(log_probs)
                value_list.append(values)
                next_obs, reward, term, trunc, infos = self.envs.step(
                    policy.env_actions(actions))
                self.next_obs = np.asarray(next_obs, dtype=np.float32)
                done = term | trunc
                self.episode_returns += reward
                if done.any():
                    self.finished_returns.extend(self.episode_returns[done].tolist())
                    self.episode_returns[done] = 0.0
                    cut = trunc & ~term
                    if cut.any():
                        final = final_observations(next_obs, infos, cut)[cut]
                        final_values = policy.value(policy.normalize(torch.from_numpy(final)))
                        truncated_values[t] = (cut, final_values.numpy())
                if self.reward_scaler is not None:
                    reward = self.reward_scaler(reward, done)
                rewards[t], terminated[t], truncated[t] = reward, term, trunc
            last_values = policy.value(policy.normalize(torch.from_numpy(self.next_obs)))
            # Stacked inside inference mode; clones outside it, so that training can use them.
            obs_buf, act_buf, logp_buf, value_buf = (
                torch.stack(x) for x in (obs_list, act_list, logp_list, value_list))
        obs_buf, act_buf, logp_buf, value_buf = (
            x.clone() for x in (obs_buf, act_buf, logp_buf, value_buf))
        values_np = value_buf.numpy()
        next_values[:-1] = values_np[1:]
        next_values[-1] = last_values.numpy()
        for t, (cut, final_values) in truncated_values.items():
            next_values[t, cut] = final_values
        return Rollout(obs=obs_buf, actions=act_buf, log_probs=logp_buf, values=value_buf,
                       rewards=rewards, terminated=terminated, truncated=truncated,
                       next_values=next_values)

    def pop_finished_returns(self) -> list:
        """Returns of the episodes finished since the last call."""
        out, self.finished_returns = self.finished_returns, []
        return out
