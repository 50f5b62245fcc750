"""The actors of DDPG, TD3 and SAC: deterministic, and a tanh-squashed Gaussian.

Both work in normalised actions in [-1, 1] (what the critics see) and scale them to the
task's bounds, kept as buffers, in ``forward``: the action the robot is sent.
DeterministicActor: Lillicrap et al., "Continuous control with deep reinforcement learning",
ICLR 2016; Fujimoto et al., ICML 2018 (TD3). SquashedGaussianActor: Haarnoja et al., "Soft
Actor-Critic", ICML 2018, appendix C for the squashing's correction of the log-density.
"""

import math

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ilrl_ros.core.networks.mlp import ACTIVATIONS, mlp

# The original implementation's and Stable-Baselines3's bounds on log std.
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def register_action_bounds(module: nn.Module, low, high) -> None:
    """Store the action bounds as buffers ``act_low`` and ``act_high``, checked."""
    low = torch.as_tensor(np.asarray(low, dtype=np.float32).reshape(-1))
    high = torch.as_tensor(np.asarray(high, dtype=np.float32).reshape(-1))
    if low.shape != (module.act_dim,) or high.shape != (module.act_dim,):
        raise ValueError(f'action bounds have shapes {tuple(low.shape)} and '
                         f'{tuple(high.shape)}; expected ({module.act_dim},)')
    if not (torch.isfinite(low).all() and torch.isfinite(high).all() and (low < high).all()):
        raise ValueError(f'action bounds must be finite with low < high; got low='
                         f'{low.tolist()} high={high.tolist()}')
    module.register_buffer('act_low', low.clone())
    module.register_buffer('act_high', high.clone())


def to_env_units(module: nn.Module, normalized: torch.Tensor) -> torch.Tensor:
    """Map [-1, 1] to [act_low, act_high]."""
    return module.act_low + 0.5 * (normalized + 1.0) * (module.act_high - module.act_low)


class _BoundedActor(nn.Module):
    """What both actors share: an MLP ``net``, the action bounds as buffers, ``forward``.

    ``forward`` is the subclass's ``normalized(obs)``, in [-1, 1], scaled to the bounds.
    """

    network_type = ''
    """The ``type`` of the description."""

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden, activation: str,
                 outputs_per_action: int):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.net = mlp([self.obs_dim, *self.hidden, outputs_per_action * self.act_dim],
                       activation)
        register_action_bounds(self, low, high)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return to_env_units(self, self.normalized(obs))

    def description(self) -> dict:
        return {'type': self.network_type, 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'hidden': list(self.hidden), 'activation': self.activation}

    @classmethod
    def from_description(cls, description: dict) -> '_BoundedActor':
        act_dim = description['act_dim']
        # The bounds are buffers: the checkpoint's weights file fills them in.
        return cls(description['obs_dim'], act_dim, -np.ones(act_dim), np.ones(act_dim),
                   hidden=description['hidden'], activation=description['activation'])


class DeterministicActor(_BoundedActor):
    """mu(s): an MLP with a tanh output, scaled to the action bounds (kept as buffers)."""

    network_type = 'deterministic_actor'

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(400, 300),
                 activation: str = 'relu'):
        super().__init__(obs_dim, act_dim, low, high, hidden, activation, outputs_per_action=1)

    def normalized(self, obs: torch.Tensor) -> torch.Tensor:
        """The action in [-1, 1] (what the critics see)."""
        return torch.tanh(self.net(obs))


class SquashedGaussianActor(_BoundedActor):
    """pi(a | s) = tanh(N(mean(s), std(s))), scaled to the action bounds (buffers).

    One MLP outputs mean and log std; ``forward`` is the deterministic action tanh(mean).
    """

    network_type = 'squashed_gaussian_actor'

    def __init__(self, obs_dim: int, act_dim: int, low, high, hidden=(256, 256),
                 activation: str = 'relu'):
        super().__init__(obs_dim, act_dim, low, high, hidden, activation, outputs_per_action=2)

    def distribution(self, obs: torch.Tensor) -> tuple:
        """(mean, log_std) of the Gaussian before the tanh, log_std clamped."""
        mean, log_std = self.net(obs).chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def sample(self, obs: torch.Tensor) -> tuple:
        """(action in [-1, 1], its log-density), reparameterised so gradients flow."""
        mean, log_std = self.distribution(obs)
        noise = torch.randn_like(mean)
        pre_tanh = mean + log_std.exp() * noise
        return torch.tanh(pre_tanh), squashed_gaussian_log_prob(pre_tanh, mean, log_std,
                                                                noise)

    def explore(self, obs: torch.Tensor) -> torch.Tensor:
        """A sampled action in [-1, 1], without its log-density (for acting)."""
        mean, log_std = self.distribution(obs)
        return torch.tanh(mean + log_std.exp() * torch.randn_like(mean))

    def normalized(self, obs: torch.Tensor) -> torch.Tensor:
        """The deterministic action tanh(mean) in [-1, 1]."""
        return torch.tanh(self.distribution(obs)[0])


def squashed_gaussian_log_prob(pre_tanh: torch.Tensor, mean: torch.Tensor,
                               log_std: torch.Tensor, noise: torch.Tensor = None
                               ) -> torch.Tensor:
    """Log-density [B] of a = tanh(u), u ~ N(mean, std), per sample.

    log pi(a) = sum_i [log N(u_i; mean_i, std_i) - log(1 - tanh(u_i)^2)], and
    log(1 - tanh(u)^2) = 2 (log 2 - u - softplus(-2u)), which stays finite where tanh(u)
    rounds to +-1. ``noise`` = (u - mean) / std when the caller has it.
    """
    if noise is None:
        noise = (pre_tanh - mean) * torch.exp(-log_std)
    gaussian = -0.5 * noise ** 2 - log_std - HALF_LOG_2PI
    log_det = 2.0 * (math.log(2.0) - pre_tanh - F.softplus(-2.0 * pre_tanh))
    return (gaussian - log_det).sum(dim=-1)
