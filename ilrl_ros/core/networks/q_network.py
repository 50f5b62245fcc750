"""The Q-network of DQN: Q(s, .) for every discrete action, acting greedily.

Mnih et al., "Human-level control through deep reinforcement learning", Nature 518, 2015.
Its ``action_table`` maps the greedy choice to what the robot is sent, so a checkpoint of a
discretised continuous task drives the robot like any other policy.
"""

import numpy as np
import torch
from torch import nn

from ilrl_ros.core.networks.mlp import ACTIVATIONS, mlp


class QPolicy(nn.Module):
    """Q(s, .) for every discrete action; acts greedily, returning the action's table row.

    ``action_table`` ([n_actions, act_dim], a buffer) maps the argmax to what the robot is
    sent: the index itself for a Discrete env, a continuous action for a discretised one.
    """

    def __init__(self, obs_dim: int, n_actions: int, act_dim: int = 1, hidden=(64, 64),
                 activation: str = 'relu', normalize_obs: bool = False, action_table=None):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.obs_dim, self.n_actions, self.act_dim = int(obs_dim), int(n_actions), int(act_dim)
        self.hidden, self.activation = tuple(int(h) for h in hidden), activation
        self.normalize_obs = bool(normalize_obs)
        self.net = mlp([self.obs_dim, *self.hidden, self.n_actions], activation)
        if action_table is None:
            action_table = np.zeros((self.n_actions, self.act_dim), dtype=np.float32)
        table = torch.as_tensor(np.asarray(action_table, dtype=np.float32))
        if table.shape != (self.n_actions, self.act_dim):
            raise ValueError(f'action_table has shape {tuple(table.shape)}; expected '
                             f'({self.n_actions}, {self.act_dim})')
        self.register_buffer('action_table', table.clone())
        if self.normalize_obs:
            self.register_buffer('obs_mean', torch.zeros(self.obs_dim))
            self.register_buffer('obs_std', torch.ones(self.obs_dim))

    def set_obs_normalization(self, mean, std) -> None:
        if not self.normalize_obs:
            raise ValueError('this QPolicy was built with normalize_obs=False')
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.obs_std.copy_(torch.as_tensor(std, dtype=torch.float32))

    def q_values(self, obs: torch.Tensor) -> torch.Tensor:
        """[B, n_actions] action values."""
        if self.normalize_obs:
            obs = (obs - self.obs_mean) / self.obs_std
        return self.net(obs)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.action_table[self.q_values(obs).argmax(dim=-1)]

    def description(self) -> dict:
        return {'type': 'q_network', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'n_actions': self.n_actions, 'hidden': list(self.hidden),
                'activation': self.activation, 'normalize_obs': self.normalize_obs}

    @classmethod
    def from_description(cls, description: dict) -> 'QPolicy':
        return cls(obs_dim=description['obs_dim'], n_actions=description['n_actions'],
                   act_dim=description['act_dim'], hidden=description['hidden'],
                   activation=description['activation'],
                   normalize_obs=description.get('normalize_obs', False))
