"""The policy-gradient network (actor and critic) and the rollout pieces A2C and PPO share.

``ActorCritic`` normalises observations with running statistics kept in buffers, so a
checkpoint carries them; an MLP actor ends in a diagonal Gaussian (Box actions) or a
categorical (Discrete actions) head, and a separate MLP estimates the state value. Its
``forward`` is the deterministic action in the environment's units, which is what the
policy node commands. ``RolloutCollector`` steps vectorised environments with one forward
pass per vector step and keeps what GAE needs, including the value of the true final
observation of episodes cut by a time limit.
"""

from dataclasses import dataclass
import math
from typing import Optional

import gymnasium as gym
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F
from torch.optim.adam import adam
from torch.optim.rmsprop import rmsprop

from ilrl_ros.core.policies import ACTIVATIONS, mlp
from ilrl_ros.core.rl import final_observations
from ilrl_ros.core.train_log import TrainingLog

ACTION_KINDS = ('box', 'discrete')
ACTIVATION_FUNCTIONS = {'tanh': torch.tanh, 'relu': torch.relu, 'elu': F.elu}
OBS_CLIP = 10.0
"""Normalised observations are clipped to +/- this (as VecNormalize does)."""
OBS_EPS = 1e-8
LOG_2PI = math.log(2.0 * math.pi)


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor,
                      log_std: torch.Tensor) -> torch.Tensor:
    """The log-density of N(mean, diag(exp(log_std))^2) at ``actions``, summed over dims."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z * z - log_std - 0.5 * LOG_2PI).sum(dim=-1)


def gaussian_entropy(log_std: torch.Tensor) -> torch.Tensor:
    """Entropy of a diagonal Gaussian: sum over dimensions of log_std + 0.5 log(2 pi e)."""
    return (log_std + 0.5 * (LOG_2PI + 1.0)).sum(dim=-1)


def categorical_entropy(log_probs: torch.Tensor) -> torch.Tensor:
    """Entropy -sum_a p(a) log p(a) of categorical distributions given as log-probabilities."""
    return -(log_probs.exp() * log_probs).sum(dim=-1)


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


class ActorCritic(nn.Module):
    """Normalised observation -> MLP actor (Gaussian or categorical) and MLP critic V(s).

    Box actions: ``act_dim`` outputs, a state-independent log standard deviation per
    dimension, samples unbounded and clipped to ``[low, high]`` only when sent to the
    environment and in ``forward``. Discrete actions: ``num_actions`` logits; ``act_dim`` is
    1 and ``forward`` returns the most likely action index as a float in a [B, 1] tensor.
    """

    def __init__(self, obs_dim: int, act_dim: int = 1, hidden=(64, 64), activation='tanh',
                 action_kind='box', num_actions: Optional[int] = None, low=None, high=None,
                 log_std_init: float = 0.0, ortho_init: bool = True,
                 normalize_observations: bool = True):
        super().__init__()
        if action_kind not in ACTION_KINDS:
            raise ValueError(f'action_kind {action_kind!r} is not one of {ACTION_KINDS}')
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        if action_kind == 'discrete':
            if not num_actions or int(num_actions) < 2:
                raise ValueError(f'a discrete action needs num_actions >= 2, got {num_actions!r}')
            if int(act_dim) != 1:
                raise ValueError(f'a discrete action is one index: act_dim must be 1, got '
                                 f'{act_dim}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.action_kind = action_kind
        self.normalize_observations = bool(normalize_observations)
        self.num_actions = int(num_actions) if action_kind == 'discrete' else None
        outputs = self.num_actions if action_kind == 'discrete' else self.act_dim
        self._act_fn = ACTIVATION_FUNCTIONS[activation]
        self.actor = mlp([self.obs_dim, *self.hidden, outputs], activation)
        self.critic = mlp([self.obs_dim, *self.hidden, 1], activation)
        if action_kind == 'box':
            self.log_std = nn.Parameter(torch.full((self.act_dim,), float(log_std_init)))
            low = np.full(self.act_dim, -np.inf) if low is None else low
            high = np.full(self.act_dim, np.inf) if high is None else high
            self.register_buffer('action_low', _vector(low, self.act_dim, 'low'))
            self.register_buffer('action_high', _vector(high, self.act_dim, 'high'))
        self.register_buffer('obs_mean', torch.zeros(self.obs_dim))
        self.register_buffer('obs_var', torch.ones(self.obs_dim))
        self.register_buffer('obs_count', torch.zeros(1, dtype=torch.float64))
        if ortho_init:
            self._orthogonal_init()

    def _orthogonal_init(self) -> None:
        # Orthogonal weights and zero biases, as OpenAI Baselines; gain 0.01 on the actor's
        # output starts the policy near uniform / zero-mean, which Andrychowicz et al.,
        # "What Matters in On-Policy Reinforcement Learning?" (ICLR 2021) found to matter.
        for network, last_gain in ((self.actor, 0.01), (self.critic, 1.0)):
            linears = [m for m in network if isinstance(m, nn.Linear)]
            for i, layer in enumerate(linears):
                nn.init.orthogonal_(layer.weight,
                                    last_gain if i == len(linears) - 1 else math.sqrt(2.0))
                nn.init.zeros_(layer.bias)

    @classmethod
    def for_spaces(cls, observation_space: gym.Space, action_space: gym.Space,
                   **options) -> 'ActorCritic':
        """The network for a gymnasium environment's spaces (Box or Discrete actions)."""
        if not isinstance(observation_space, gym.spaces.Box) or \
                len(observation_space.shape) != 1:
            raise ValueError(f'ActorCritic needs a flat Box observation space, got '
                             f'{observation_space}')
        obs_dim = observation_space.shape[0]
        if isinstance(action_space, gym.spaces.Discrete):
            return cls(obs_dim, 1, action_kind='discrete', num_actions=int(action_space.n),
                       **options)
        if isinstance(action_space, gym.spaces.Box) and len(action_space.shape) == 1:
            return cls(obs_dim, action_space.shape[0], action_kind='box',
                       low=action_space.low, high=action_space.high, **options)
        raise ValueError(f'ActorCritic handles Discrete and flat Box action spaces, got '
                         f'{action_space}')

    # Observation normalisation.

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """(obs - running mean) / running std, clipped to +/- OBS_CLIP (if normalising)."""
        if not self.normalize_observations:
            return obs
        scaled = (obs - self.obs_mean) * torch.rsqrt(self.obs_var + OBS_EPS)
        return scaled.clamp(-OBS_CLIP, OBS_CLIP)

    @torch.no_grad()
    def update_obs_stats(self, obs: torch.Tensor) -> None:
        """Fold a batch [B, obs_dim] into the running mean and variance (training mode only).

        Chan, Golub & LeVeque's parallel update; in eval mode the statistics stay frozen.
        """
        if not self.training or not self.normalize_observations:
            return
        obs = obs.reshape(-1, self.obs_dim).to(torch.float64)
        n = obs.shape[0]
        count = self.obs_count.item()
        total = count + n
        batch_mean = obs.mean(dim=0)
        delta = batch_mean - self.obs_mean.double()
        m2 = self.obs_var.double() * count + obs.var(dim=0, unbiased=False) * n \
            + delta * delta * (count * n / total)
        self.obs_mean.add_((delta * (n / total)).float())
        self.obs_var.copy_((m2 / total).float())
        self.obs_count.fill_(total)

    # The policy and the value, on normalised observations.

    def value(self, obs_n: torch.Tensor) -> torch.Tensor:
        """V(s) as a [B] tensor."""
        return _run_mlp(self.critic, obs_n, self._act_fn).squeeze(-1)

    def sample(self, obs_n: torch.Tensor) -> tuple:
        """Draw actions; return (actions, log-probabilities [B], values [B]).

        Box actions are [B, act_dim] floats (unclipped), discrete ones [B] integer indices.
        """
        out = _run_mlp(self.actor, obs_n, self._act_fn)
        if self.action_kind == 'box':
            # log N(a; mu, std) from the standard normal noise that drew a.
            noise = torch.randn_like(out)
            actions = out + torch.exp(self.log_std) * noise
            log_probs = -0.5 * (noise * noise).sum(dim=-1) \
                - (self.log_std.sum() + 0.5 * LOG_2PI * self.act_dim)
        else:
            all_log_probs = torch.log_softmax(out, dim=-1)
            actions = torch.multinomial(all_log_probs.exp(), 1).squeeze(-1)
            log_probs = all_log_probs.gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        return actions, log_probs, self.value(obs_n)

    def log_prob_entropy(self, obs_n: torch.Tensor, actions: torch.Tensor,
                         entropy: bool = True) -> tuple:
        """(log pi(actions | s) [B], entropy of pi(. | s) [B] or None) for stored actions."""
        out = _run_mlp(self.actor, obs_n, self._act_fn)
        if self.action_kind == 'box':
            log_probs = gaussian_log_prob(actions, out, self.log_std)
            return log_probs, (gaussian_entropy(self.log_std).expand(log_probs.shape)
                               if entropy else None)
        all_log_probs = torch.log_softmax(out, dim=-1)
        log_probs = all_log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        return log_probs, categorical_entropy(all_log_probs) if entropy else None

    def env_actions(self, actions: torch.Tensor) -> np.ndarray:
        """Sampled actions as the environment takes them: clipped floats, or int indices."""
        if self.action_kind == 'box':
            return torch.max(torch.min(actions, self.action_high), self.action_low).numpy()
        return actions.numpy()

    # The deployed policy.

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Deterministic action in the environment's units: [B, act_dim]."""
        out = _run_mlp(self.actor, self.normalize(obs), self._act_fn)
        if self.action_kind == 'box':
            return torch.max(torch.min(out, self.action_high), self.action_low)
        return out.argmax(dim=-1, keepdim=True).to(out.dtype)

    def act(self, observation: np.ndarray):
        """One observation -> the deterministic action as the environment takes it."""
        with torch.inference_mode():
            obs = torch.as_tensor(np.asarray(observation, dtype=np.float32)).unsqueeze(0)
            action = self(obs)[0]
        if self.action_kind == 'discrete':
            return int(action.item())
        return action.numpy()

    def description(self) -> dict:
        out = {'type': 'actor_critic', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
               'hidden': list(self.hidden), 'activation': self.activation,
               'action_kind': self.action_kind,
               'normalize_observations': self.normalize_observations}
        if self.action_kind == 'discrete':
            out['num_actions'] = self.num_actions
        return out

    @classmethod
    def from_description(cls, description: dict) -> 'ActorCritic':
        # Weights, bounds and statistics come from the state dict; no initialisation needed.
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   hidden=description['hidden'], activation=description['activation'],
                   action_kind=description['action_kind'],
                   num_actions=description.get('num_actions'), ortho_init=False,
                   normalize_observations=description.get('normalize_observations', True))


def _run_mlp(layers: nn.Sequential, x: torch.Tensor, activation) -> torch.Tensor:
    # The same as layers(x), without nn.Module's call machinery (hooks), which costs more
    # than the arithmetic of layers this small.
    for layer in layers:
        x = F.linear(x, layer.weight, layer.bias) if isinstance(layer, nn.Linear) \
            else activation(x)
    return x


def _vector(values, size: int, what: str) -> torch.Tensor:
    out = torch.as_tensor(np.asarray(values, dtype=np.float32).reshape(-1))
    if out.numel() != size:
        raise ValueError(f'action {what} bound has {out.numel()} values; expected {size}')
    return out


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
