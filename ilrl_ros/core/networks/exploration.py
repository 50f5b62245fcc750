"""How a deployed policy explores: the action it takes when it is learning, not performing.

The policy node acts as the actor of online learning with one of these modes, set at
runtime:

- ``none``: the network's deterministic action (what the robot runs when performing);
- ``sample``: a draw from the policy's own distribution where it has one (SAC's squashed
  Gaussian, a Gaussian behavior-cloning head, an actor-critic's Gaussian), otherwise the
  deterministic action with noise as below;
- ``noise``: the deterministic action plus Gaussian noise of ``noise`` times half the action
  range (TD3 / DDPG style); for a Q-network, a uniformly random action of its table with
  probability ``noise`` (epsilon-greedy).

The caller clamps the result to the spec's bounds: exploration never goes past them.
"""

import numpy as np
import torch

from ilrl_ros.core.networks.actor_critic import ActorCritic
from ilrl_ros.core.networks.actors import SquashedGaussianActor, to_env_units
from ilrl_ros.core.networks.mlp import _PolicyHead
from ilrl_ros.core.networks.q_network import QPolicy

EXPLORATION_MODES = ('none', 'sample', 'noise')


def _noisy(action: np.ndarray, low: np.ndarray, high: np.ndarray, noise: float,
           rng: np.random.Generator) -> np.ndarray:
    return action + rng.normal(0.0, 1.0, action.shape) * noise * 0.5 * (high - low)


def explore_action(network: torch.nn.Module, obs: np.ndarray, mode: str, noise: float,
                   low: np.ndarray, high: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The exploring action of ``network`` for one observation, in robot units (unclamped)."""
    if mode not in EXPLORATION_MODES:
        raise ValueError(f'exploration mode {mode!r} is not one of '
                         f'{", ".join(EXPLORATION_MODES)}')
    x = torch.as_tensor(np.asarray(obs, dtype=np.float32)).unsqueeze(0)
    with torch.inference_mode():
        if isinstance(network, QPolicy):
            # A Q-network has no distribution to sample: both modes are epsilon-greedy.
            if mode != 'none' and rng.random() < noise:
                row = int(rng.integers(network.n_actions))
                return network.action_table[row].numpy().astype(np.float64)
            return network(x)[0].numpy().astype(np.float64)
        if mode == 'sample':
            generator = torch.Generator().manual_seed(int(rng.integers(2 ** 62)))
            if isinstance(network, SquashedGaussianActor):
                mean, log_std = network.distribution(x)
                draw = torch.randn(mean.shape, generator=generator)
                return to_env_units(network, torch.tanh(mean + log_std.exp() * draw))[0] \
                    .numpy().astype(np.float64)
            if isinstance(network, _PolicyHead) and network.head == 'gaussian':
                mean, log_std = network.normalized_distribution(x)
                draw = torch.randn(mean.shape, generator=generator)
                return ((mean + log_std.exp() * draw) * network.act_std + network.act_mean)[0] \
                    .numpy().astype(np.float64)
            if isinstance(network, ActorCritic) and network.action_kind == 'box':
                mean = network(x)[0].numpy().astype(np.float64)
                std = network.log_std.exp().numpy().astype(np.float64)
                return mean + std * rng.normal(0.0, 1.0, mean.shape)
        action = network(x)[0].numpy().astype(np.float64)
    if mode == 'none':
        return action
    return _noisy(action, low, high, noise, rng)
