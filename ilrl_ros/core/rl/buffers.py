"""Where experience is kept: the off-policy replay buffer and the on-policy rollout.

``ReplayBuffer`` is a ring of transitions in NumPy arrays that adds the transitions of all
environments of a vector step in one slice (as Stable-Baselines3's ``ReplayBuffer.add``)
and samples typed ``TransitionBatch`` minibatches; ``buffer_from_dataset`` fills one from a
demonstration dataset and ``sample_mixed`` draws minibatches half from demonstrations, half
from online experience (RLPD). ``RolloutCollector`` steps vectorised
environments with one forward pass per vector step and returns a ``Rollout``: what GAE
needs, including the value of the true final observation of episodes cut by a time limit.
"""

from dataclasses import dataclass
import math
from pathlib import Path
from typing import Callable, Mapping, Optional, Union
import zipfile

import numpy as np
import torch

from ilrl_ros.core.data import DATASET_FORMAT, DatasetError
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

    def to(self, device) -> 'TransitionBatch':
        """The batch on ``device`` (itself when it is there already: no copy on the CPU)."""
        device = torch.device(device)
        if self.obs.device == device:
            return self
        return TransitionBatch(*(getattr(self, name).to(device, non_blocking=True) for name in
                                 ('obs', 'actions', 'rewards', 'next_obs', 'terminated')))


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

    @classmethod
    def from_arrays(cls, obs, actions, rewards, next_obs, terminated,
                    capacity: int = None) -> 'ReplayBuffer':
        """A buffer holding these transitions, in row order.

        ``capacity`` None: their number. Integer actions are kept as int64 indices, others
        as float32.
        """
        obs, actions = np.atleast_2d(np.asarray(obs)), np.asarray(actions)
        if len(obs) == 0:
            raise ValueError('ReplayBuffer.from_arrays needs at least one transition')
        act_dtype = np.int64 if np.issubdtype(actions.dtype, np.integer) else np.float32
        buffer = cls(obs.shape[1], actions.shape[1:], capacity or len(obs), act_dtype)
        buffer.add(obs, actions, rewards, next_obs, terminated)
        return buffer

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


def sample_mixed(online: ReplayBuffer, demos: ReplayBuffer, batch_size: int,
                 demo_fraction: float, rng: np.random.Generator) -> TransitionBatch:
    """A minibatch, ``demo_fraction`` of it from demonstrations and the rest online.

    ``round(demo_fraction * batch_size)`` rows come from ``demos``, the others (first) from
    ``online``.
    Symmetric sampling of RLPD (Ball, Smith, Kostrikov & Levine, "Efficient Online
    Reinforcement Learning with Offline Data", ICML 2023): demo_fraction 0.5. While one of
    the buffers is empty, the whole minibatch comes from the other.
    """
    if not 0.0 <= demo_fraction <= 1.0:
        raise ValueError(f'demo_fraction must lie in [0, 1], got {demo_fraction!r}')
    if len(online) == 0 and len(demos) == 0:
        raise ValueError('cannot sample: the online and the demonstration buffers are both '
                         'empty')
    if len(demos) == 0:
        return online.sample(batch_size, rng)
    if len(online) == 0:
        return demos.sample(batch_size, rng)
    for name in ('obs', 'actions'):
        ours, theirs = getattr(online, name), getattr(demos, name)
        if ours.shape[1:] != theirs.shape[1:] or ours.dtype != theirs.dtype:
            raise ValueError(f'the demonstration buffer holds {name} of shape '
                             f'{theirs.shape[1:]} ({theirs.dtype}), the online buffer '
                             f'{ours.shape[1:]} ({ours.dtype}); convert the demonstrations '
                             f'with the learner (buffer_from_dataset(..., '
                             f'convert_actions=learner.to_buffer))')
    n_demo = int(round(demo_fraction * batch_size))
    if n_demo == 0:
        return online.sample(batch_size, rng)
    if n_demo == batch_size:
        return demos.sample(batch_size, rng)
    first, second = online.sample(batch_size - n_demo, rng), demos.sample(n_demo, rng)
    return TransitionBatch(**{name: torch.cat([getattr(first, name), getattr(second, name)])
                              for name in ('obs', 'actions', 'rewards', 'next_obs',
                                           'terminated')})


def buffer_from_dataset(source: Union[str, Path, Mapping], convert_actions: Callable = None,
                        obs_dim: int = None, terminal_episodes=(),
                        capacity: int = None) -> ReplayBuffer:
    """A replay buffer of a demonstration dataset's transitions.

    ``source``: an .npz written by ``ilrl convert``, or a mapping of its arrays. Reads
    ``observations`` [N, obs_dim], ``actions`` [N, act_dim], ``reward`` [N] (the reward of
    the step from row i to row i+1) and ``episode`` [N] (each episode's rows contiguous, in
    time order). A row's next observation is the next row of its episode. The last row of
    an episode has none: it is kept as a terminated transition if its episode ended in a
    terminal state (its id in ``terminal_episodes``, or a true ``terminated`` entry in the
    dataset, allowed on last rows only) and dropped otherwise, as a cut episode cannot be
    bootstrapped without its final observation.

    ``convert_actions`` maps the dataset's actions (the task's units) to what the learner's
    buffer stores, e.g. ``learner.to_buffer``. Missing arrays, missing (NaN) rewards,
    non-finite values and shapes that disagree are refused with a ``DatasetError`` naming
    the dataset and the array.
    """
    name, arrays = _dataset_arrays(source)
    obs = _numeric(name, arrays, 'observations', ndim=2)
    actions = _numeric(name, arrays, 'actions', ndim=(1, 2))
    rewards = _numeric(name, arrays, 'reward', ndim=1)
    episode = _numeric(name, arrays, 'episode', ndim=1, integer=True)
    n = len(obs)
    if n == 0 or obs.shape[1] == 0:
        raise DatasetError(f'{name}: observations has shape {obs.shape}; expected at least '
                           f'one row of at least one value')
    for key, values in (('actions', actions), ('reward', rewards), ('episode', episode)):
        if len(values) != n:
            raise DatasetError(f'{name}: {key} has {len(values)} rows, observations has {n}')
    if obs_dim is not None and obs.shape[1] != obs_dim:
        raise DatasetError(f'{name}: observations have {obs.shape[1]} values per row, the '
                           f'learner takes {obs_dim}')
    missing = np.flatnonzero(np.isnan(rewards))
    if len(missing):
        raise DatasetError(f'{name}: reward is missing (NaN) in {len(missing)} of {n} rows, '
                           f'the first at row {missing[0]}; record the reward topic with the '
                           f'demonstrations to learn from them off-policy')
    for key, values in (('observations', obs), ('actions', actions), ('reward', rewards)):
        if not np.all(np.isfinite(values)):
            raise DatasetError(f'{name}: {key} holds non-finite values (inf or NaN)')

    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    ids = episode[starts]
    if len(np.unique(ids)) != len(ids):
        raise DatasetError(f'{name}: the rows of an episode must be contiguous; episode '
                           f'ids come back after others: {ids[:10].tolist()}')
    last = np.zeros(n, dtype=bool)
    last[np.r_[starts[1:] - 1, n - 1]] = True
    terminated = np.isin(episode, np.asarray(list(terminal_episodes), dtype=np.int64)) & last
    if 'terminated' in arrays:
        flags = _numeric(name, arrays, 'terminated', ndim=1)
        if len(flags) != n:
            raise DatasetError(f'{name}: terminated has {len(flags)} rows, observations '
                               f'has {n}')
        if not np.all(np.isfinite(flags)):
            raise DatasetError(f'{name}: terminated holds non-finite values (inf or NaN)')
        flags = flags != 0
        if np.any(flags & ~last):
            row = int(np.flatnonzero(flags & ~last)[0])
            raise DatasetError(f'{name}: terminated is set on row {row}, which is not the '
                               f'last of its episode {int(episode[row])}')
        terminated |= flags
    keep = ~last | terminated
    if not keep.any():
        raise DatasetError(f'{name}: no transitions: every episode is one row long and '
                           f'none ended in a terminal state')
    # A terminated row's next observation is never bootstrapped from; its own stands in.
    next_obs = np.where(last[:, None], obs, np.roll(obs, -1, axis=0))
    actions = actions.reshape(n, -1)
    if convert_actions is not None:
        try:
            actions = np.asarray(convert_actions(actions))
        except ValueError as error:
            raise DatasetError(f'{name}: actions: {error}') from None
    return ReplayBuffer.from_arrays(obs[keep], actions[keep], rewards[keep], next_obs[keep],
                                    terminated[keep].astype(np.float32), capacity)


def _dataset_arrays(source) -> tuple:
    """(a name for errors, the arrays) of a dataset path or a mapping of arrays."""
    if isinstance(source, Mapping):
        return 'dataset (arrays in memory)', dict(source)
    path = Path(source)
    name = f'dataset {path}'
    if not path.is_file():
        raise DatasetError(f'{name}: no such file (expected an .npz written by `ilrl '
                           f'convert`)')
    try:
        with np.load(path, allow_pickle=False) as content:
            arrays = {k: content[k] for k in content.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise DatasetError(f'{name}: not a readable .npz file: {error}') from None
    if 'format' in arrays and arrays['format'].tolist() != DATASET_FORMAT:
        raise DatasetError(f'{name}: format {arrays["format"].tolist()!r}, this version '
                           f'reads format {DATASET_FORMAT}')
    return name, arrays


def _numeric(name: str, arrays: dict, key: str, ndim, integer: bool = False) -> np.ndarray:
    """``arrays[key]`` as float32 (int64 with ``integer``), its rank checked."""
    if key not in arrays:
        raise DatasetError(f'{name}: no {key!r} array (it has {sorted(arrays)})')
    try:
        values = np.asarray(arrays[key])
        if values.dtype.kind not in 'biuf':
            raise TypeError(values.dtype)
        if integer and values.dtype.kind in 'fu':
            # Whole numbers that int64 holds, not values that would wrap around.
            if not (np.all(np.isfinite(values)) and np.all(values == np.round(values))
                    and np.all(np.abs(values) < 2.0 ** 62)):
                raise TypeError(values.dtype)
        # Beyond float32's range a value becomes inf, which the finiteness checks refuse.
        with np.errstate(over='ignore'):
            values = values.astype(np.int64 if integer else np.float32)
    except (TypeError, ValueError, OverflowError):
        raise DatasetError(f'{name}: {key} must hold {"integers" if integer else "numbers"}'
                           f', got {np.asarray(arrays[key]).dtype}') from None
    ndims = ndim if isinstance(ndim, tuple) else (ndim,)
    if values.ndim not in ndims:
        raise DatasetError(f'{name}: {key} has shape {values.shape}; expected '
                           f'{" or ".join(f"{d}-D" for d in ndims)}, one row per step')
    return values


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
        # The policy acts where it trains; what reaches the environments comes back to NumPy.
        device = next(policy.parameters()).device
        with torch.inference_mode():
            for t in range(num_steps):
                obs = torch.from_numpy(self.next_obs).to(device)
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
                        final_values = policy.value(policy.normalize(
                            torch.from_numpy(final).to(device)))
                        truncated_values[t] = (cut, final_values.cpu().numpy())
                if self.reward_scaler is not None:
                    reward = self.reward_scaler(reward, done)
                rewards[t], terminated[t], truncated[t] = reward, term, trunc
            last_values = policy.value(policy.normalize(
                torch.from_numpy(self.next_obs).to(device)))
            # Stacked inside inference mode; clones outside it, so that training can use them.
            obs_buf, act_buf, logp_buf, value_buf = (
                torch.stack(x) for x in (obs_list, act_list, logp_list, value_list))
        obs_buf, act_buf, logp_buf, value_buf = (
            x.clone() for x in (obs_buf, act_buf, logp_buf, value_buf))
        values_np = value_buf.cpu().numpy()
        next_values[:-1] = values_np[1:]
        next_values[-1] = last_values.cpu().numpy()
        for t, (cut, final_values) in truncated_values.items():
            next_values[t, cut] = final_values
        return Rollout(obs=obs_buf, actions=act_buf, log_probs=logp_buf, values=value_buf,
                       rewards=rewards, terminated=terminated, truncated=truncated,
                       next_values=next_values)

    def pop_finished_returns(self) -> list:
        """Returns of the episodes finished since the last call."""
        out, self.finished_returns = self.finished_returns, []
        return out
