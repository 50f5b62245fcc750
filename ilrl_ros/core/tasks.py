"""Build a task's simulator and expert from its spec.

An expert maps the current readings (keyed by source name) to an action vector in the
spec's action order, so the same expert code labels simulated states and drives the robot
through the ``expert`` node.
"""

import gymnasium as gym
import numpy as np

from ilrl_ros.core.envs.delays import (ActionHistoryObservations, check_delay_steps,
                                       DelayedActions)
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world import make_world

SIMULATORS = ('track_follow', 'pendulum')


def make_simulator(spec: TaskSpec):
    """Return the bare simulator named by the spec's ``robot.sim`` (physics and readings).

    Its observations are the spec's fields alone, without the action history; the mock robot
    runs it, and ``make_env`` wraps it for learning.
    """
    if spec.sim == 'track_follow':
        from ilrl_ros.core.envs.track_follow import TrackFollowEnv
        env = TrackFollowEnv(spec)
    elif spec.sim == 'pendulum':
        from ilrl_ros.core.envs.pendulum import PendulumEnv
        env = PendulumEnv(spec)
    else:
        raise ValueError(f'robot.sim {spec.sim!r} is not a known simulator; known: '
                         f'{", ".join(SIMULATORS)}')
    if spec.observation.action_history:
        # The simulator's observations are the fields; the history is appended around it.
        env.observation_space = gym.spaces.Box(-np.inf, np.inf,
                                               (spec.observation.fields_size,), np.float32)
    return env


def make_env(spec: TaskSpec, action_delay_steps: int = 0):
    """Return the task's gymnasium environment: the simulator, as a policy sees the robot.

    With ``observation.action_history`` k > 0 each observation is followed by the last k
    actions given (``ActionHistoryObservations``). ``action_delay_steps`` applies each action
    that many steps after it is given (``DelayedActions``): the same run as a lock-step mock
    robot with ``action_delay_s`` of that many control periods.
    """
    delay = check_delay_steps(action_delay_steps)
    env = make_simulator(spec)
    if delay:
        env = DelayedActions(env, delay)
    if spec.observation.action_history:
        env = ActionHistoryObservations(env, spec)
    return env


class TrackExpert:
    """Pure pursuit on the known centerline, from the odometry pose (privileged).

    On a track with posts (``robot.params.obstacles``) it passes each on a random side
    (``ObstaclePassing``; option ``seed`` seeds the coin).
    """

    def __init__(self, spec: TaskSpec, **options):
        from ilrl_ros.core.experts.pure_pursuit import PurePursuit
        self.spec = spec
        self.track = make_world(spec)
        if getattr(self.track, 'obstacles', ()):
            # Posts in the corridor: swerve around each, on a side drawn at random.
            from ilrl_ros.core.experts.obstacle_pass import ObstaclePassing
            self.controller = ObstaclePassing(
                self.track, robot_radius=float(spec.sim_params.get('robot_radius', 0.105)),
                **options)
        else:
            self.controller = PurePursuit(self.track, **options)
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'odometry']

    @property
    def sources(self) -> tuple:
        return (self.source,)

    def act(self, readings: dict) -> np.ndarray:
        odom = readings[self.source]
        v, w = self.controller.act(odom.x, odom.y, odom.yaw)
        named = {'linear.x': v, 'angular.z': w}
        return np.array([named.get(f, 0.0) for f in self.spec.action.fields])


class PendulumExpert:
    """Energy-pumping swing-up with an LQR catch near upright, from the joint state."""

    def __init__(self, spec: TaskSpec, **options):
        from ilrl_ros.core.experts.pendulum_swingup import SwingUpLQR
        self.spec = spec
        self.joint = str(spec.sim_params.get('joint', 'pendulum_joint'))
        self.controller = SwingUpLQR(max_torque=float(spec.action.high[0]), **options)
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'joint_state']

    @property
    def sources(self) -> tuple:
        return (self.source,)

    def act(self, readings: dict) -> np.ndarray:
        joints = readings[self.source]
        i = list(joints.names).index(self.joint)
        u = self.controller.act(float(joints.position[i]), float(joints.velocity[i]))
        return np.full(self.spec.action.size, u, dtype=np.float64)


def make_expert(spec: TaskSpec, **options):
    """Return the task's scripted/privileged expert."""
    if spec.sim == 'track_follow':
        return TrackExpert(spec, **options)
    if spec.sim == 'pendulum':
        return PendulumExpert(spec, **options)
    raise ValueError(f'no expert for robot.sim {spec.sim!r}; known: {", ".join(SIMULATORS)}')
