"""A mixture-density policy: pi(a | s) as K diagonal Gaussians with state-dependent weights.

Bishop, "Mixture Density Networks", Aston University NCRG/94/004, 1994. One Gaussian fitted
by maximum likelihood to demonstrations that go left or right of an obstacle puts its mean
in between; a mixture puts one component on each mode, and acting on the most probable
component's mean commits to one of them.
"""

import math

import torch
from torch import nn

from ilrl_ros.core.networks.mlp import ACTIVATIONS, LOG_STD_MAX, LOG_STD_MIN, mlp

MAX_COMPONENTS = 64
"""Mixture components a network may have (a checkpoint's description is bounded by it)."""
HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)


def mixture_log_prob(logits: torch.Tensor, means: torch.Tensor, log_stds: torch.Tensor,
                     target: torch.Tensor) -> torch.Tensor:
    """The log-density log sum_k pi_k N(target; mean_k, diag(std_k^2)) per sample, [B].

    ``logits`` [B, K] are the unnormalised mixing weights (pi = softmax(logits)); ``means``
    and ``log_stds`` [B, K, D]; ``target`` [B, D]. Computed as a log-sum-exp over the
    components of log pi_k + log N_k, so that a target far from every component (each
    density rounding to 0 in float32) still gives a finite log-likelihood and gradient.
    """
    z = (target.unsqueeze(-2) - means) * torch.exp(-log_stds)
    log_normal = -(0.5 * z ** 2 + log_stds + HALF_LOG_2PI).sum(dim=-1)
    return torch.logsumexp(torch.log_softmax(logits, dim=-1) + log_normal, dim=-1)


def check_components(value) -> int:
    """Return ``value`` if it is a whole number of mixture components in [1, MAX_COMPONENTS]."""
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 1 <= value <= MAX_COMPONENTS:
        raise ValueError(f'components (the number of Gaussians in the mixture) must be a whole '
                         f'number from 1 to {MAX_COMPONENTS}, got {value!r}')
    return value


class MixtureDensityPolicy(nn.Module):
    """pi(a | s) = sum_k pi_k(s) N(a; mean_k(s), diag std_k(s)^2), normalised in and out.

    An MLP on the normalised observation feeds three linear heads: K logits, K x D means and
    K x D log stds (clamped), in normalised action units. ``forward`` (what the policy node
    commands) is the mean of the component with the largest weight pi_k(s), de-normalised:
    deterministic, and always one of the modes, never a blend of them. ``sample`` draws from
    the whole mixture instead.
    """

    network_type = 'mdn'
    head = 'mdn'

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), activation='relu',
                 components: int = 2):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.components = check_components(components)
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        if not self.hidden:
            raise ValueError('a mixture-density policy needs at least one hidden layer')
        self.register_buffer('obs_mean', torch.zeros(self.obs_dim))
        self.register_buffer('obs_std', torch.ones(self.obs_dim))
        self.register_buffer('act_mean', torch.zeros(self.act_dim))
        self.register_buffer('act_std', torch.ones(self.act_dim))
        self.body = mlp([self.obs_dim, *self.hidden], activation)
        self.body.append(ACTIVATIONS[activation]())
        width, k, d = self.hidden[-1], self.components, self.act_dim
        self.logits_head = nn.Linear(width, k)
        self.means_head = nn.Linear(width, k * d)
        self.log_std_head = nn.Linear(width, k * d)

    def set_normalization(self, obs_norm, act_norm) -> None:
        for name, value in (('obs_mean', obs_norm.mean), ('obs_std', obs_norm.std),
                            ('act_mean', act_norm.mean), ('act_std', act_norm.std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.act_mean) / self.act_std

    def normalized_mixture(self, obs: torch.Tensor) -> tuple:
        """(logits [B, K], means [B, K, D], log_stds [B, K, D]) in normalised action units."""
        h = self.body((obs - self.obs_mean) / self.obs_std)
        shape = (*h.shape[:-1], self.components, self.act_dim)
        log_stds = self.log_std_head(h).reshape(shape).clamp(LOG_STD_MIN, LOG_STD_MAX)
        return self.logits_head(h), self.means_head(h).reshape(shape), log_stds

    def normalized_distribution(self, obs: torch.Tensor) -> tuple:
        """(mean, log_std) of the most probable component, in normalised action units."""
        logits, means, log_stds = self.normalized_mixture(obs)
        index = logits.argmax(dim=-1)[..., None, None].expand(*logits.shape[:-1], 1,
                                                               self.act_dim)
        return means.gather(-2, index).squeeze(-2), log_stds.gather(-2, index).squeeze(-2)

    def sample(self, obs: torch.Tensor, generator: torch.Generator = None) -> torch.Tensor:
        """An action drawn from the mixture, in the robot's units."""
        logits, means, log_stds = self.normalized_mixture(obs)
        k = torch.multinomial(torch.softmax(logits, dim=-1).reshape(-1, self.components), 1,
                              generator=generator).reshape(*logits.shape[:-1], 1, 1)
        index = k.expand(*logits.shape[:-1], 1, self.act_dim)
        mean = means.gather(-2, index).squeeze(-2)
        std = log_stds.gather(-2, index).squeeze(-2).exp()
        noise = torch.randn(mean.shape, generator=generator)
        return (mean + std * noise) * self.act_std + self.act_mean

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.normalized_distribution(obs)
        return mean * self.act_std + self.act_mean

    def description(self) -> dict:
        return {'type': self.network_type, 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'hidden': list(self.hidden), 'activation': self.activation,
                'components': self.components}

    @classmethod
    def from_description(cls, description: dict) -> 'MixtureDensityPolicy':
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   hidden=description['hidden'], activation=description['activation'],
                   components=description['components'])
