"""The off-policy algorithms' gradient steps apart from their environment loops, by name.

A learner that trains while the robot acts elsewhere (transitions arriving over ROS 2, a
checkpoint swapped into the running policy node) builds one with ``make_learner`` and
drives it itself::

    learner = make_learner('sac', obs_dim, env.action_space, {'batch_size': 128})
    buffer = learner.make_buffer()
    ...
    learner.set_progress(env_steps)
    action = learner.act(obs, explore=True, rng=rng)          # what the robot is sent
    buffer.add(obs[None], learner.to_buffer(action[None]), [reward], next_obs[None],
               [terminated])
    metrics = learner.update(buffer.sample(batch_size, rng))  # one gradient step
    save_checkpoint(path, learner.policy, ...)

Each algorithm's ``train`` runs the same learner in its own loop. This module sits above
the algorithms (it names them); they do not import it.
"""

import importlib
from typing import Protocol

import gymnasium as gym
import numpy as np
import torch

from ilrl_ros.core.rl.buffers import ReplayBuffer, TransitionBatch
from ilrl_ros.core.training import ALGORITHMS, make_config

OFF_POLICY = ('sac', 'td3', 'ddpg', 'dqn')
"""The algorithms that learn from a replay buffer, so from transitions gathered anywhere."""

# name -> the learner class in its algorithm's module (core/training.py's ALGORITHMS).
LEARNERS = {'sac': 'SACLearner', 'td3': 'TD3Learner', 'ddpg': 'DDPGLearner',
            'dqn': 'DQNLearner'}


class Learner(Protocol):
    """What ``SACLearner``, ``TD3Learner``, ``DDPGLearner`` and ``DQNLearner`` offer.

    Two kinds of action: the task's units (what the robot is sent and a dataset holds) and
    the buffer's (SAC, TD3, DDPG: normalised to [-1, 1]; DQN: the index into its
    ``action_table``). ``to_buffer`` and ``to_env`` convert batches of them.
    """

    config: object
    """The algorithm's config (``core/training.make_config``)."""
    policy: torch.nn.Module
    """The deployable network (the actor, the ``QPolicy``): what ``save_checkpoint`` stores."""
    updates: int
    """Gradient steps taken (TD3 and DDPG: critic steps)."""
    env_steps: int
    """Environment steps taken, as ``set_progress`` was last told."""

    def set_progress(self, env_steps: int) -> None:
        """Set the clock of exploration and of DQN's target network.

        It times the ``learning_starts`` warm-up (exploring actions are uniform until then),
        DQN's epsilon schedule and DQN's target updates (every ``target_update_interval``
        environment steps).
        """

    def act(self, obs: np.ndarray, explore: bool = False,
            rng: np.random.Generator = None) -> np.ndarray:
        """The action for one observation in the task's units.

        Exploring: SAC samples its squashed Gaussian (from torch's generator), TD3 and DDPG
        add Gaussian noise of std ``action_noise`` and clip, DQN is epsilon-greedy, all
        uniform during the warm-up; ``rng`` draws the uniform actions, the noise and
        epsilon's coin. Not exploring (the default): the deterministic (greedy) action, so
        that ``evaluate_policy`` takes a learner as it is.
        """

    def choose(self, obs: np.ndarray, explore: bool = False,
               rng: np.random.Generator = None) -> np.ndarray:
        """What ``act`` does, as the buffer stores the action (``act`` is ``to_env`` of it)."""

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Buffer actions to the task's units."""

    def to_buffer(self, actions: np.ndarray) -> np.ndarray:
        """Actions in the task's units ([n, act_dim]) to what the buffer stores."""

    def make_buffer(self, capacity: int = None) -> ReplayBuffer:
        """An empty replay buffer for this learner (``capacity``: the config's buffer_size)."""

    def update(self, batch: TransitionBatch) -> dict:
        """One gradient step on ``batch`` (buffer actions); its metrics as floats.

        TD3's delayed actor and target steps and DQN's target updates are counted inside.
        """


def make_learner(algorithm: str, obs_dim: int, action_space: gym.Space, config=None,
                 bins: int = 5) -> Learner:
    """The learner of an off-policy ``algorithm`` for these dimensions and action space.

    ``config``: the algorithm's config, a dict of settings over its defaults
    (``make_config``), or None for the defaults. SAC, TD3 and DDPG need a 1-D Box with
    finite bounds; DQN takes a Discrete space as it is and a Box through ``bins`` torques
    per dimension, as ``ilrl train dqn`` does (``dqn.DiscretizedActions``). The networks
    are initialised from torch's global generator: seed it first for a repeatable run.
    """
    if algorithm not in OFF_POLICY:
        raise ValueError(f'{algorithm!r} has no learner apart from its training loop; the '
                         f'off-policy algorithms have one: {", ".join(OFF_POLICY)}')
    module = importlib.import_module(f'ilrl_ros.core.algorithms.{ALGORITHMS[algorithm][0]}')
    config_class = getattr(module, ALGORITHMS[algorithm][1])
    if config is None or isinstance(config, dict):
        config = make_config(algorithm, overrides=config)
    elif not isinstance(config, config_class):
        raise ValueError(f'{algorithm} takes a {config_class.__name__}, got a '
                         f'{type(config).__name__}')
    learner_class = getattr(module, LEARNERS[algorithm])
    if algorithm == 'dqn':
        if isinstance(action_space, gym.spaces.Discrete):
            table = module.discrete_action_table(action_space)
        elif isinstance(action_space, gym.spaces.Box):
            table = module.box_action_table(action_space, bins)
        else:
            raise ValueError(f'dqn needs a Discrete or a 1-D Box action space, got '
                             f'{action_space}')
        return learner_class(obs_dim, len(table), table, config)
    if not isinstance(action_space, gym.spaces.Box) or len(action_space.shape) != 1:
        raise ValueError(f'{algorithm} needs a 1-D Box action space, got {action_space}')
    low, high = action_space.low, action_space.high
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError(f'{algorithm} needs finite action bounds, got low={low.tolist()} '
                         f'high={high.tolist()}')
    return learner_class(obs_dim, action_space.shape[0], low, high, config)
