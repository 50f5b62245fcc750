"""What the learners of bounded continuous actions (SAC, TD3, DDPG) share.

Their buffers keep actions normalised to [-1, 1]; the robot gets them in the task's units.
A subclass sets ``obs_dim``, ``act_dim``, ``low``, ``high``, ``config`` and ``env_steps``
and defines ``choose`` (the action in [-1, 1]); this gives it the rest of the ``Learner``
contract's action side (``core/rl/learners.py``).
"""

import numpy as np

from ilrl_ros.core.rl.buffers import ReplayBuffer
from ilrl_ros.core.rl.spaces import from_unit_box, to_unit_box


class BoxActionLearner:
    """Acting, the clock of the warm-up, and the buffer for actions kept in [-1, 1]."""

    def set_progress(self, env_steps: int) -> None:
        """Tell the learner how many environment steps have been taken (the warm-up's clock)."""
        self.env_steps = int(env_steps)

    def act(self, obs: np.ndarray, explore: bool = False,
            rng: np.random.Generator = None) -> np.ndarray:
        """The action for one observation in the task's units (``choose``, scaled)."""
        return self.to_env(self.choose(obs, explore, rng))

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Normalised actions ([-1, 1]) to the task's bounds."""
        return from_unit_box(actions, self.low, self.high)

    def to_buffer(self, actions: np.ndarray) -> np.ndarray:
        """Actions in the task's units (a demonstration's, a robot's) to [-1, 1], clipped."""
        return to_unit_box(actions, self.low, self.high)

    def make_buffer(self, capacity: int = None) -> ReplayBuffer:
        """An empty replay buffer for this learner (``capacity``: the config's buffer_size)."""
        return ReplayBuffer(self.obs_dim, (self.act_dim,), capacity or self.config.buffer_size)
