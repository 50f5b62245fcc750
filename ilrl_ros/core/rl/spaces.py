"""What the algorithms read from an environment's spaces, with errors that name the space."""

import gymnasium as gym
import numpy as np

from ilrl_ros.core.networks import ActorCritic


def box_dims(env) -> tuple:
    """(obs_dim, act_dim, low, high) of an env with a 1-D Box action space."""
    space = env.action_space
    if not hasattr(space, 'low') or len(space.shape) != 1:
        raise ValueError(f'this algorithm needs a 1-D Box action space, got {space}')
    low, high = space.low.astype(np.float32), space.high.astype(np.float32)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f'this algorithm needs finite action bounds, got low={low.tolist()} '
                         f'high={high.tolist()}')
    return int(np.prod(env.observation_space.shape)), space.shape[0], low, high


def from_unit_box(actions, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Normalised actions ([-1, 1], as SAC's and TD3's buffers keep them) to the bounds."""
    return low + 0.5 * (np.asarray(actions, dtype=np.float32) + 1.0) * (high - low)


def to_unit_box(actions, low: np.ndarray, high: np.ndarray) -> np.ndarray:
    """Actions in the task's units (a demonstration's, a robot's) to [-1, 1], clipped."""
    actions = np.asarray(actions, dtype=np.float32)
    if actions.shape[-1:] != low.shape:
        raise ValueError(f'actions have shape {actions.shape}; expected [..., {low.size}]')
    normalized = 2.0 * (actions - low) / (high - low) - 1.0
    return np.clip(normalized, -1.0, 1.0).astype(np.float32)


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
