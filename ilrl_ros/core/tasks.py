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

SIMULATORS = ('track_follow', 'pendulum', 'mujoco')


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
    elif spec.sim == 'mujoco':
        # Imports MuJoCo, so only when a MuJoCo task is built.
        from ilrl_ros.core.envs.mujoco_robot import MujocoRobotEnv
        env = MujocoRobotEnv(spec)
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


class ReacherExpert:
    """Inverse kinematics of the arm to the target, then a PD torque (Reacher-v5).

    The arm and target joints, and the link lengths, are those of the spec's
    ``fingertip_distance`` or ``fingertip_near`` term (checked against the MuJoCo model when
    the simulator is built). Options: ``kp``, ``kd``.
    """

    def __init__(self, spec: TaskSpec, **options):
        from ilrl_ros.core.experts.two_link_reach import TwoLinkReach
        self.spec = spec
        terms = spec.reward + spec.termination.success + spec.termination.success_at_timeout
        arm = next((t for t in terms if t.kind in ('fingertip_distance', 'fingertip_near')),
                   None)
        if arm is None:
            raise ValueError(f'task {spec.name!r}: the reacher expert needs a '
                             f'fingertip_distance or fingertip_near term naming the arm')
        self.source = arm.source
        self.joints = [arm.param(k) for k in ('shoulder', 'elbow', 'target_x', 'target_y')]
        self.field_of = [spec.action.fields.index(j) for j in self.joints[:2]]
        self.controller = TwoLinkReach(arm.param('link0'), arm.param('link1'),
                                       max_effort=float(np.min(spec.action.high)), **options)

    @property
    def sources(self) -> tuple:
        return (self.source,)

    def act(self, readings: dict) -> np.ndarray:
        from ilrl_ros.core.episode.measures import joint_position
        (q0, v0), (q1, v1), (tx, _), (ty, _) = (joint_position(readings[self.source], j)
                                                for j in self.joints)
        u = self.controller.act(q0, q1, v0, v1, tx, ty)
        action = np.zeros(self.spec.action.size)
        action[self.field_of] = u
        return action


class MujocoLQR:
    """LQR about the model's initial state (upright), on the MuJoCo step linearized.

    The state is the joints' positions then velocities, as the joint states report them; the
    Jacobians are central differences of one environment step (all its MuJoCo substeps).
    Options: ``q`` (state weight, one number or one per state value), ``r`` (effort weight).
    """

    def __init__(self, spec: TaskSpec, q=1.0, r=0.1):
        from ilrl_ros.core.algorithms.lqr import linearize, lqr_gain
        from ilrl_ros.core.envs.mujoco_robot import check_against_model, make_mujoco_env
        self.spec = spec
        sim = make_mujoco_env(spec.sim_params['env'])
        joints, self._actuator_of_field = check_against_model(spec, sim)
        self.names = joints.names
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'joint_state']
        n, nu = len(self.names), sim.model.nu
        if sim.model.nq != n or sim.model.nv != n:
            raise ValueError(f'{spec.sim_params["env"]}: LQR needs a model of hinge and slide '
                             f'joints only')
        self.x0 = np.concatenate([sim.init_qpos, sim.init_qvel])

        def step(x, u):
            sim.set_state(x[:n], x[n:])
            sim.do_simulation(u, sim.frame_skip)
            return np.concatenate([sim.data.qpos, sim.data.qvel])

        a, b = linearize(step, self.x0, np.zeros(nu))
        self.k, _ = lqr_gain(a, b, np.eye(2 * n) * np.asarray(q, dtype=np.float64),
                             np.eye(nu) * float(r))

    @property
    def sources(self) -> tuple:
        return (self.source,)

    def act(self, readings: dict) -> np.ndarray:
        joints = readings[self.source]
        order = [list(joints.names).index(name) for name in self.names]
        x = np.concatenate([np.asarray(joints.position)[order],
                            np.asarray(joints.velocity)[order]])
        ctrl = -self.k @ (x - self.x0)
        return np.clip(ctrl[self._actuator_of_field], self.spec.action.low,
                       self.spec.action.high)


# The MuJoCo environments with an expert, and its class.
MUJOCO_EXPERTS = {'Reacher-v5': ReacherExpert, 'InvertedPendulum-v5': MujocoLQR}


def make_expert(spec: TaskSpec, **options):
    """Return the task's scripted/privileged expert."""
    if spec.sim == 'track_follow':
        return TrackExpert(spec, **options)
    if spec.sim == 'pendulum':
        return PendulumExpert(spec, **options)
    if spec.sim == 'mujoco':
        env = spec.sim_params['env']
        if env not in MUJOCO_EXPERTS:
            raise ValueError(f'no expert for the MuJoCo environment {env}; experts exist for '
                             f'{", ".join(MUJOCO_EXPERTS)}')
        return MUJOCO_EXPERTS[env](spec, **options)
    raise ValueError(f'no expert for robot.sim {spec.sim!r}; known: {", ".join(SIMULATORS)}')
