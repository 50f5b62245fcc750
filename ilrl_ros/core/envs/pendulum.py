"""A torque-limited pendulum that matches gymnasium's Pendulum-v1 step for step.

Seen through a JointState (theta = 0 upright) and driven by an effort, so the same task runs
over ROS 2 as a ros2_control-style joint; observation, reward and termination come from the
task spec.
"""

import numpy as np

from ilrl_ros.core.envs.spec_env import SpecEnv
from ilrl_ros.core.readings import JointReading
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.pendulum_dynamics import pendulum_step, sample_initial_state


class PendulumEnv(SpecEnv):
    """Gymnasium environment for the ``pendulum`` task spec."""

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        self.joint = str(spec.sim_params.get('joint', 'pendulum_joint'))
        self.g = float(spec.sim_params.get('g', 10.0))
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'joint_state']
        self.state = (0.0, 0.0)
        self.effort = 0.0

    def readings(self) -> dict:
        theta, theta_dot = self.state
        reading = JointReading(stamp_ns=self.stamp_ns, names=(self.joint,),
                               position=np.array([theta]), velocity=np.array([theta_dot]),
                               effort=np.array([self.effort]))
        return {self.source: reading}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        if 'state' in options:
            self.state = tuple(float(v) for v in options['state'])
        else:
            self.state = sample_initial_state(self.np_random)
        self.effort = 0.0
        return self.start_episode(), {'outcome': None}

    def step(self, action):
        command = self.command(action)
        if self.spec.action.max_delta is not None:
            action = command  # the rate-limited command is what acts
        i = self.spec.action.fields.index(self.joint) \
            if self.joint in self.spec.action.fields else 0
        # Keep the action's dtype (clip() makes it float64): Pendulum-v1 scales a float32
        # torque in float32, and that rounding must match for the states to match.
        u = np.clip(np.asarray(action).reshape(-1)[i], float(self.spec.action.low[i]),
                    float(self.spec.action.high[i]))
        self.state = pendulum_step(*self.state, u, g=self.g)
        self.effort = float(u)
        # Pendulum-v1 never terminates: every outcome comes at its time limit and truncates.
        obs, reward, terminated, truncated, outcome, terms = self.finish_step(command)
        return obs, reward, terminated, truncated, {'outcome': outcome, 'reward_terms': terms}
