"""What every simulated robot of a task spec shares: spaces, time, reward and episode end.

A simulator (track_follow, pendulum, mujoco) keeps its own physics and says what its sensors
read (``readings``); this base turns those readings into the spec's observation, reward and
termination the same way for all of them, so the ROS graph and the in-process env agree.
"""

import gymnasium as gym
import numpy as np

from ilrl_ros.core.episode import end_flags
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.episode.termination import Termination
from ilrl_ros.core.observation import extract_observation
from ilrl_ros.core.spec import TaskSpec

# Stamps start at 1 s: a ROS time of zero means 'unset' to several tools.
START_NS = 1_000_000_000


class SpecEnv(gym.Env):
    """A gymnasium environment whose observation, reward and end come from a task spec.

    Subclasses build their physics, implement ``readings()`` (the sensor readings of the
    present state, keyed by source name), and call ``start_episode()`` at the end of
    ``reset`` and ``command()`` / ``finish_step()`` around their physics step.
    """

    metadata = {'render_modes': []}

    def __init__(self, spec: TaskSpec, world=None):
        self.spec = spec
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.observation.size,),
                                                np.float32)
        self.action_space = gym.spaces.Box(spec.action.low.astype(np.float32),
                                           spec.action.high.astype(np.float32))
        self.reward_fn = RewardFunction(spec, world)
        self.termination = Termination(spec, world)
        self.stamp_ns = START_NS
        self.dt_ns = int(round(1e9 / spec.control_rate_hz))
        self._readings = {}
        # The last command, for the spec's rate limit (action.max_delta); None after a reset.
        self._previous_command = None

    def readings(self) -> dict:
        """The sensor readings of the present state, keyed by source name."""
        raise NotImplementedError

    def current_readings(self) -> dict:
        """The readings the last observation was built from (what an expert labels)."""
        return dict(self._readings)

    def command(self, action) -> np.ndarray:
        """The command that acts: clipped to the bounds and rate limited (``max_delta``).

        The same limit as the policy node's, so the limited command is what acts.
        """
        command = self.spec.action.clip(action)
        if self.spec.action.max_delta is not None:
            command = self.spec.action.limit_change(self._previous_command, command)
            self._previous_command = command
        return command

    def start_episode(self) -> np.ndarray:
        """After the physics reset: the episode's first readings; returns its observation.

        Time never goes backwards across resets, as on a robot.
        """
        self._previous_command = None
        self.stamp_ns += self.dt_ns
        self._readings = self.readings()
        self.reward_fn.reset(self._readings)
        self.termination.reset(self._readings, self.stamp_ns)
        return extract_observation(self.spec, self._readings)

    def finish_step(self, command: np.ndarray) -> tuple:
        """After the physics step: (observation, reward, terminated, truncated, outcome, terms)."""
        self.stamp_ns += self.dt_ns
        before, self._readings = self._readings, self.readings()
        reward, terms = self.reward_fn.step(before, command, self._readings)
        outcome = self.termination.check(self._readings, self.stamp_ns)
        terminated, truncated = end_flags(outcome, self.termination.timed_out)
        return (extract_observation(self.spec, self._readings), reward, terminated, truncated,
                outcome, terms)
