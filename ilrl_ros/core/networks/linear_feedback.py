"""A linear state feedback a = clip(u0 - K (x - x0)): the policy an LQR design produces.

The gain and operating point are buffers, so a checkpoint holds them as tensors; how the
state x is read from the observation is named from ``STATE_MAPS`` (a checkpoint names one, it
never supplies code).
"""

import math

import numpy as np
import torch
from torch import nn

# How a policy reads its state x from the observation, by name (a checkpoint names one, it
# never supplies code): (state size, indices of x that are angles, expected obs size or None).
STATE_MAPS = {
    'identity': None,
    'pendulum': (2, (0,), 3),
}


def wrap_angle(x: torch.Tensor) -> torch.Tensor:
    """Wrap angles into [-pi, pi)."""
    return torch.remainder(x + math.pi, 2.0 * math.pi) - math.pi


class LinearFeedbackPolicy(nn.Module):
    """a = clip(u0 - K (x(obs) - x0), low, high): a linear state feedback around (x0, u0).

    ``state_map`` names how x is read from the observation: 'identity' (x = obs) or
    'pendulum' (obs [cos theta, sin theta, theta_dot] -> x [theta, theta_dot]; the angle error
    is wrapped into [-pi, pi) so a full turn is no error). K, x0, u0 and the bounds are
    buffers, so a checkpoint holds them as tensors.
    """

    def __init__(self, obs_dim: int, act_dim: int, state_map: str = 'identity', gain=None,
                 x0=None, u0=None, low=None, high=None):
        super().__init__()
        if state_map not in STATE_MAPS:
            raise ValueError(f'state_map {state_map!r} is not one of {tuple(STATE_MAPS)}')
        self.obs_dim, self.act_dim, self.state_map = int(obs_dim), int(act_dim), state_map
        if STATE_MAPS[state_map] is None:
            self.state_dim, self.angles = self.obs_dim, ()
        else:
            self.state_dim, self.angles, needed_obs = STATE_MAPS[state_map]
            if needed_obs != self.obs_dim:
                raise ValueError(f'state_map {state_map!r} reads a {needed_obs}-dimensional '
                                 f'observation; obs_dim is {self.obs_dim}')

        def buffer(name, value, shape, default):
            tensor = torch.full(shape, default, dtype=torch.float32) if value is None else \
                torch.as_tensor(np.asarray(value, dtype=np.float32))
            if tuple(tensor.shape) != shape:
                raise ValueError(f'{name} has shape {tuple(tensor.shape)}; expected {shape}')
            self.register_buffer(name, tensor.clone())

        buffer('gain', gain, (self.act_dim, self.state_dim), 0.0)
        buffer('x0', x0, (self.state_dim,), 0.0)
        buffer('u0', u0, (self.act_dim,), 0.0)
        buffer('low', low, (self.act_dim,), -math.inf)
        buffer('high', high, (self.act_dim,), math.inf)

    def state(self, obs: torch.Tensor) -> torch.Tensor:
        """The state x of a batch of observations: [B, obs_dim] -> [B, state_dim]."""
        if self.state_map == 'pendulum':
            return torch.stack([torch.atan2(obs[:, 1], obs[:, 0]), obs[:, 2]], dim=-1)
        return obs

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        error = self.state(obs.to(torch.float32)) - self.x0
        if self.angles:
            angles = list(self.angles)
            error = error.clone()
            error[:, angles] = wrap_angle(error[:, angles])
        action = self.u0 - error @ self.gain.T
        return torch.maximum(torch.minimum(action, self.high), self.low)

    def description(self) -> dict:
        return {'type': 'linear_feedback', 'obs_dim': self.obs_dim, 'act_dim': self.act_dim,
                'state_map': self.state_map}

    @classmethod
    def from_description(cls, description: dict) -> 'LinearFeedbackPolicy':
        return cls(obs_dim=description['obs_dim'], act_dim=description['act_dim'],
                   state_map=description['state_map'])
