"""The Q(s, a) critics of DDPG, TD3 and SAC: n MLPs evaluated as one batched network.

Critics are used only while training (a checkpoint stores the actor), so they live here
rather than under ``core/networks/``.
"""

import math

import torch
from torch import nn

from ilrl_ros.core.networks import ACTIVATIONS


class CriticEnsemble(nn.Module):
    """n independent Q(s, a) MLPs evaluated together: [B, obs], [B, act] -> [n, B].

    Layer l of all critics is one ``baddbmm`` over weights stacked as [n, in, out]; each
    critic is initialised like ``nn.Linear`` (uniform in +-1/sqrt(fan_in)).
    """

    def __init__(self, obs_dim: int, act_dim: int, hidden=(256, 256), n: int = 2,
                 activation: str = 'relu'):
        super().__init__()
        if activation not in ACTIVATIONS:
            raise ValueError(f'activation {activation!r} is not one of {tuple(ACTIVATIONS)}')
        self.n = int(n)
        self.activation = activation
        sizes = [int(obs_dim) + int(act_dim), *(int(h) for h in hidden), 1]
        self.weights, self.biases = nn.ParameterList(), nn.ParameterList()
        for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(
                torch.empty(self.n, fan_in, fan_out).uniform_(-bound, bound)))
            self.biases.append(nn.Parameter(torch.empty(self.n, 1, fan_out).uniform_(-bound,
                                                                                      bound)))

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, frozen: bool = False,
                first_only: bool = False) -> torch.Tensor:
        """Q-values [n, B] ([1, B] with ``first_only``).

        ``frozen``: no gradient to the critics' weights, only to the inputs (the actor's
        loss); it skips those products.
        """
        n = 1 if first_only else self.n
        x = torch.cat([obs, actions], dim=-1).expand(n, -1, -1)
        last = len(self.weights) - 1
        for i, (w, b) in enumerate(zip(self.weights, self.biases)):
            if first_only:
                w, b = w[:1], b[:1]
            if frozen:
                w, b = w.detach(), b.detach()
            x = torch.baddbmm(b, x, w)
            if i < last:
                x = INPLACE_ACTIVATIONS[self.activation](x)
        return x.squeeze(-1)


# In place on the fresh output of a matrix product (whose backward does not need it): one
# less 2 x 256 x 256 tensor to allocate and stream through the cache per layer.
INPLACE_ACTIVATIONS = {'relu': torch.relu_, 'tanh': torch.tanh_,
                       'elu': lambda x: nn.functional.elu_(x)}
