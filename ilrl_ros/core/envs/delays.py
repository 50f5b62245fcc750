"""Delays between a policy and its robot, for in-process runs: the same as the mock robot's.

``DelayedActions(env, k)`` applies each action k steps after it was given (zeros for the
first k steps of an episode), as a lock-step mock robot with an action delay of k control
periods does. ``ActionHistoryObservations(env, spec)`` appends the last commands to each
observation, as the task spec's ``observation.action_history`` asks, so that a policy can
learn what is still on its way to the robot. ``make_env`` puts them together.

Both read the task simulator's own attributes (``current_readings()``, ``stamp_ns``, the
task ``spec``) through, so experts and rollouts work on the wrapped env as on the bare one.
"""

from collections import deque

import gymnasium as gym
import numpy as np

from ilrl_ros.core.observation import ActionHistory
from ilrl_ros.core.spec import TaskSpec


class _TaskWrapper(gym.Wrapper):
    """A wrapper that shows the task simulator's attributes as its own."""

    @property
    def spec(self):
        # gymnasium's Wrapper.spec expects an EnvSpec; ours hold the task spec there.
        return self.env.spec

    def __getattr__(self, name: str):
        if name.startswith('_') or name == 'env':
            raise AttributeError(name)
        return getattr(self.env, name)


def check_delay_steps(steps, what: str = 'action_delay_steps') -> int:
    """``steps`` as a whole number of control periods >= 0, or a ValueError naming ``what``."""
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 0:
        raise ValueError(f'{what} must be a whole number of control periods >= 0, '
                         f'got {steps!r}')
    return int(steps)


class DelayedActions(_TaskWrapper):
    """Apply each action ``steps`` steps after it is given; zeros until then in an episode.

    Step n of an episode (counted from 0 after ``reset``) applies the action given at step
    n - steps, or a zero action while n < steps. With ``steps`` 0 it changes nothing.
    """

    def __init__(self, env: gym.Env, steps: int):
        super().__init__(env)
        self.steps = check_delay_steps(steps)
        self._zero = np.zeros(env.action_space.shape, dtype=env.action_space.dtype)
        self._queue = deque()

    def reset(self, **kwargs):
        self._queue = deque(self._zero.copy() for _ in range(self.steps))
        return self.env.reset(**kwargs)

    def step(self, action):
        # A copy: callers may reuse the array they pass in before it is applied.
        self._queue.append(np.array(action, copy=True))
        return self.env.step(self._queue.popleft())

    def pending(self) -> list:
        """The actions given but not applied yet, oldest first."""
        return [a.copy() for a in self._queue]


class ActionHistoryObservations(_TaskWrapper):
    """Observations followed by the last ``observation.action_history`` actions given.

    The actions are those given to this wrapper (the commands sent), clipped to the action
    bounds, oldest first, zeros at an episode's start; see ``ActionHistory``.
    """

    def __init__(self, env: gym.Env, spec: TaskSpec):
        super().__init__(env)
        self.history = ActionHistory(spec)
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.observation.size,),
                                                np.float32)

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        self.history.reset()
        return self.history.augment(obs), info

    def step(self, action):
        self.history.push(action)
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self.history.augment(obs), reward, terminated, truncated, info
