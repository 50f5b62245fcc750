"""The training pieces REINFORCE, A2C and PPO share around their network.

The network, ``ActorCritic``, is in ``core/networks/actor_critic.py``;
``actor_critic_for_spaces`` builds it for an environment's spaces. ``RolloutCollector``
steps vectorised environments with one forward pass per vector step and keeps what GAE
needs, including the value of the true final observation of episodes cut by a time limit.
"""

from dataclasses import dataclass
import math
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
from torch.optim.adam import adam
from torch.optim.rmsprop import rmsprop

from ilrl_ros.core.networks import ActorCritic
from ilrl_ros.core.networks.actor_critic import OBS_EPS
from ilrl_ros.core.rl import final_observations
from ilrl_ros.core.train_log import TrainingLog


def value_loss(values: torch.Tensor, returns: torch.Tensor,
               old_values: Optional[torch.Tensor] = None,
               clip_range: Optional[float] = None) -> torch.Tensor:
    """Mean squared error of V(s) against the return targets.

    With ``clip_range``, the pessimistic (larger) error of the new value and of the value
    kept within ``clip_range`` of the rollout's (``old_values``), as in OpenAI Baselines'
    PPO2. No factor 1/2: ``vf_coef`` carries the weight, as in Stable-Baselines3.
    """
    unclipped = (values - returns) ** 2
    if clip_range is None:
        return unclipped.mean()
    clipped_values = old_values + (values - old_values).clamp(-clip_range, clip_range)
    return torch.max(unclipped, (clipped_values - returns) ** 2).mean()


def explained_variance(predicted: np.ndarray, target: np.ndarray) -> float:
    """1 - Var[target - predicted] / Var[target]: 1 is perfect, 0 no better than a constant."""
    variance = np.var(target)
    return float('nan') if variance == 0 else float(1.0 - np.var(target - predicted) / variance)


def schedule(start: float, kind: str, progress_remaining: float) -> float:
    """A hyperparameter at 'constant' or 'linear' (decays to 0, the zoo's ``lin_``) schedule."""
    if kind == 'constant':
        return start
    if kind == 'linear':
        return start * progress_remaining
    raise ValueError(f'schedule {kind!r} is not known; expected constant or linear')


class Optimizer:
    """Adam or RMSprop over a list of parameters, through torch's functional updates.

    The same arithmetic as ``torch.optim.Adam`` / ``RMSprop`` (fused Adam where the build
    has it), without ``torch.optim.Optimizer``, whose first construction in a process
    imports TorchDynamo: seconds on a small CPU, a large part of a short training run.
    ``lr`` may be changed between steps.
    """

    def __init__(self, params, lr: float, kind: str = 'adam', eps: float = 1e-5,
                 betas=(0.9, 0.999), alpha: float = 0.99):
        if kind not in ('adam', 'rmsprop'):
            raise ValueError(f'optimizer {kind!r} is not known; expected adam or rmsprop')
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.kind, self.eps, self.betas, self.alpha = lr, kind, eps, betas, alpha
        self.first = [torch.zeros_like(p) for p in self.params]
        self.second = [torch.zeros_like(p) for p in self.params]
        self.steps = [torch.zeros((), dtype=torch.float32) for _ in self.params]
        self.fused = kind == 'adam' and hasattr(torch, '_fused_adam_')

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        params = [p for p in self.params if p.grad is not None]
        if len(params) != len(self.params):
            raise RuntimeError('every optimised parameter needs a gradient before step()')
        grads = [p.grad for p in params]
        if self.kind == 'adam':
            adam(params, grads, self.first, self.second, [], self.steps,
                 fused=self.fused or None, foreach=None if self.fused else True,
                 amsgrad=False, beta1=self.betas[0], beta2=self.betas[1], lr=self.lr,
                 weight_decay=0.0, eps=self.eps, maximize=False)
        else:
            rmsprop(params, grads, self.second, [], [], self.steps, foreach=True, lr=self.lr,
                    alpha=self.alpha, eps=self.eps, weight_decay=0.0, momentum=0.0,
                    centered=False)


def clip_grad_norm(params: list, max_norm: float) -> torch.Tensor:
    """Scale the gradients so that their global norm is at most ``max_norm``; the norm.

    What ``torch.nn.utils.clip_grad_norm_`` does, in four tensor operations instead of its
    general bookkeeping (a fifth of a small PPO step).
    """
    grads = [p.grad for p in params]
    norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
    torch._foreach_mul_(grads, (max_norm / (norm + 1e-6)).clamp_(max=1.0))
    return norm


def actor_critic_for_spaces(observation_space: gym.Space, action_space: gym.Space,
                            **options) -> ActorCritic:
    """The ``ActorCritic`` for a gymnasium environment's spaces (Box or Discrete actions)."""
    if not isinstance(observation_space, gym.spaces.Box) or \
            len(observation_space.shape) != 1:
        raise ValueError(f'ActorCritic needs a flat Box observation space, got '
                         f'{observation_space}')
    obs_dim = observation_space.shape[0]
    if isinstance(action_space, gym.spaces.Discrete):
        return ActorCritic(obs_dim, 1, action_kind='discrete', num_actions=int(action_space.n),
                           **options)
    if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
        return ActorCritic(obs_dim, action_space.shape[0], action_kind='box',
                           low=action_space.low, high=action_space.high, **options)
    raise ValueError(f'ActorCritic handles Discrete and flat Box action spaces, got '
                     f'{action_space}')


@dataclass
class RLResult:
    """What a reinforcement learning ``train`` returns."""

    policy: ActorCritic
    """The trained network, in eval mode (observation statistics frozen)."""
    log: TrainingLog
    config: dict
    seconds: float
    env_steps: int


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
