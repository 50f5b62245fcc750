"""Policy networks: an MLP with a deterministic or Gaussian head, normalisation built in.

A network is fully described by a small JSON-able dict (``description()``), which a
checkpoint stores so the network can be rebuilt without executing anything from the file.
"""

import importlib

import torch
from torch import nn

ACTIVATIONS = {'relu': nn.ReLU, 'tanh': nn.Tanh, 'elu': nn.ELU}
HEADS = ('deterministic', 'gaussian')
LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0


def mlp(sizes: list, activation: str) -> nn.Sequential:
    """Linear layers of the given sizes with ``activation`` between them (none at the end)."""
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class MLPPolicy(nn.Module):
    """pi(a | s): normalise s, an MLP, then a deterministic or diagonal-Gaussian head.

    The network works in normalised action units; ``forward`` returns the mean action in
    the robot's units (de-normalised), which is what the policy node commands.
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), activation='relu',
                 head='deterministic'):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f'head {head!r} is not one of {HEADS}')
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.obs_dim, self.act_dim = int(obs_dim), int(act_dim)
        self.hidden, self.activation, self.head = tuple(int(h) for h in hidden), activation, head
        self.body = mlp([self.obs_dim, *self.hidden], activation)
        self.body.append(ACTIVATIONS[activation]())
        self.mean_head = nn.Linear(self.hidden[-1], self.act_dim)
        if head == 'gaussian':
            self.log_std_head = nn.Linear(self.hidden[-1], self.act_dim)
        self.register_buffer('obs_mean', torch.zeros(self.obs_dim))
        self.register_buffer('obs_std', torch.ones(self.obs_dim))
        self.register_buffer('act_mean', torch.zeros(self.act_dim))
        self.register_buffer('act_std', torch.ones(self.act_dim))

    def set_normalization(self, obs_norm, act_norm) -> None:
        for name, value in (('obs_mean', obs_norm.mean), ('obs_std', obs_norm.std),
                            ('act_mean', act_norm.mean), ('act_std', act_norm.std)):
            getattr(self, name).copy_(torch.as_tensor(value, dtype=torch.float32))

    def features(self, obs: torch.Tensor) -> torch.Tensor:
        return self.body((obs - self.obs_mean) / self.obs_std)

    def normalized_distribution(self, obs: torch.Tensor):
        """Return (mean, log_std or None) in normalised action units."""
        h = self.features(obs)
        mean = self.mean_head(h)
        if self.head == 'gaussian':
            log_std = self.log_std_head(h).clamp(LOG_STD_MIN, LOG_STD_MAX)
            return mean, log_std
        return mean, None

    def normalize_action(self, action: torch.Tensor) -> torch.Tensor:
        return (action - self.act_mean) / self.act_std

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        mean, _ = self.normalized_distribution(obs)
        return mean * self.act_std + self.act_mean

    def description(self) -> dict:
        return {'type': 'mlp', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'hidden': list(self.hidden), 'activation': self.activation, 'head': self.head}

    @classmethod
    def from_description(cls, description: dict) -> 'MLPPolicy':
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   hidden=description['hidden'], activation=description['activation'],
                   head=description['head'])


# Every network a checkpoint may hold, by the ``type`` in its description. The table is fixed
# in code: a checkpoint names a type, it never supplies code. Each class has
# ``from_description(description)``, ``description()``, ``obs_dim``, ``act_dim`` and a
# ``forward(obs)`` that returns the action in the robot's units.
NETWORK_TYPES = {
    'mlp': 'ilrl_ros.core.policies:MLPPolicy',
    'actor_critic': 'ilrl_ros.core.algorithms.actor_critic:ActorCritic',
    'q_network': 'ilrl_ros.core.algorithms.dqn:QPolicy',
    'deterministic_actor': 'ilrl_ros.core.algorithms.td3:DeterministicActor',
    'squashed_gaussian_actor': 'ilrl_ros.core.algorithms.sac:SquashedGaussianActor',
    'linear_feedback': 'ilrl_ros.core.algorithms.lqr:LinearFeedbackPolicy',
    'mpc': 'ilrl_ros.core.algorithms.mbrl:MPCPolicy',
}


def build_policy(description: dict):
    """Rebuild a network from its ``description()`` (as stored in a checkpoint)."""
    kind = description.get('type') if isinstance(description, dict) else description
    if kind not in NETWORK_TYPES:
        raise ValueError(f'network type {kind!r} is not known; expected one of '
                         f'{", ".join(sorted(NETWORK_TYPES))}')
    module_name, class_name = NETWORK_TYPES[kind].split(':')
    network_class = getattr(importlib.import_module(module_name), class_name)
    try:
        return network_class.from_description(description)
    except KeyError as error:
        raise ValueError(f'network description lacks {error.args[0]!r}') from None
