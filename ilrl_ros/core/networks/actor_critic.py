"""The policy-gradient network of REINFORCE, A2C and PPO: an actor and a critic.

``ActorCritic`` normalises observations with running statistics kept in buffers, so a
checkpoint carries them; an MLP actor ends in a diagonal Gaussian (Box actions) or a
categorical (Discrete actions) head, and a separate MLP estimates the state value. Its
``forward`` is the deterministic action in the environment's units, which is what the
policy node commands.
"""

import math
from typing import Optional

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ilrl_ros.core.networks.mlp import ACTIVATIONS, mlp

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
            return torch.max(torch.min(actions, self.action_high), self.action_low).cpu().numpy()
        return actions.cpu().numpy()

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
            obs = torch.as_tensor(np.asarray(observation, dtype=np.float32),
                                  device=self.obs_mean.device).unsqueeze(0)
            action = self(obs)[0]
        if self.action_kind == 'discrete':
            return int(action.item())
        return action.cpu().numpy()

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
