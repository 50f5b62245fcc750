"""A torque-limited pendulum that matches gymnasium's Pendulum-v1 step for step.

Seen through a JointState (theta = 0 upright) and driven by an effort, so the same task runs
over ROS 2 as a ros2_control-style joint; observation, reward and termination come from the
task spec.
"""

import gymnasium as gym
import numpy as np

from ilrl_ros.core.episode import end_flags
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.episode.termination import Termination
from ilrl_ros.core.observation import extract_observation
from ilrl_ros.core.readings import JointReading
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.pendulum_dynamics import pendulum_step, sample_initial_state

START_NS = 1_000_000_000


class PendulumEnv(gym.Env):
    """Gymnasium environment for the ``pendulum`` task spec."""

    metadata = {'render_modes': []}

    def __init__(self, spec: TaskSpec):
        self.spec = spec
        self.joint = str(spec.sim_params.get('joint', 'pendulum_joint'))
        self.g = float(spec.sim_params.get('g', 10.0))
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'joint_state']
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (spec.observation.size,),
                                                np.float32)
        self.action_space = gym.spaces.Box(spec.action.low.astype(np.float32),
                                           spec.action.high.astype(np.float32))
        self.reward_fn = RewardFunction(spec)
        self.termination = Termination(spec)
        self.stamp_ns = START_NS
        self.dt_ns = int(round(1e9 / spec.control_rate_hz))
        self.state = (0.0, 0.0)
        self.effort = 0.0
        self._readings = {}
        # The last command, for the spec's rate limit (action.max_delta); None after a reset.
        self._previous_command = None

    def readings(self) -> dict:
        theta, theta_dot = self.state
        reading = JointReading(stamp_ns=self.stamp_ns, names=(self.joint,),
                               position=np.array([theta]), velocity=np.array([theta_dot]),
                               effort=np.array([self.effort]))
        return {self.source: reading}

    def current_readings(self) -> dict:
        """The readings the last observation was built from (what an expert labels)."""
        return dict(self._readings)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        if 'state' in options:
            self.state = tuple(float(v) for v in options['state'])
        else:
            self.state = sample_initial_state(self.np_random)
        self.effort = 0.0
        self._previous_command = None
        self.stamp_ns += self.dt_ns
        self._readings = self.readings()
        self.reward_fn.reset(self._readings)
        self.termination.reset(self._readings, self.stamp_ns)
        return extract_observation(self.spec, self._readings), {'outcome': None}

    def step(self, action):
        command = self.spec.action.clip(action)
        if self.spec.action.max_delta is not None:
            # The same rate limit as the policy node's: the limited command is what acts.
            command = self.spec.action.limit_change(self._previous_command, command)
            self._previous_command = action = command
        i = self.spec.action.fields.index(self.joint) \
            if self.joint in self.spec.action.fields else 0
        # Keep the action's dtype (clip() makes it float64): Pendulum-v1 scales a float32
        # torque in float32, and that rounding must match for the states to match.
        u = np.clip(np.asarray(action).reshape(-1)[i], float(self.spec.action.low[i]),
                    float(self.spec.action.high[i]))
        self.state = pendulum_step(*self.state, u, g=self.g)
        self.effort = float(u)
        self.stamp_ns += self.dt_ns
        before, self._readings = self._readings, self.readings()
        reward, terms = self.reward_fn.step(before, command, self._readings)
        outcome = self.termination.check(self._readings, self.stamp_ns)
        obs = extract_observation(self.spec, self._readings)
        # Pendulum-v1 never terminates: every outcome comes at its time limit and truncates.
        terminated, truncated = end_flags(outcome, self.termination.timed_out)
        return obs, reward, terminated, truncated, {'outcome': outcome, 'reward_terms': terms}
