"""A physics-grade robot: a gymnasium MuJoCo environment seen through a JointState.

The spec names the environment (``robot.sim: mujoco``, ``robot.params.env: Reacher-v5``);
its readings are the joint states of the model's one-degree-of-freedom joints (names from the
MJCF, positions ``qpos``, velocities ``qvel``, efforts the applied actuator forces), and it
takes one effort per actuator in the spec's action field order, as ros2_control's forward
command controller does. Observation, reward and termination come from the spec, so the mock
robot serves it over ROS 2 exactly as it serves the pendulum. MuJoCo is imported only when a
MuJoCo task is built.
"""

import math

import gymnasium as gym
import numpy as np

from ilrl_ros.core.envs.spec_env import SpecEnv
from ilrl_ros.core.readings import JointReading
from ilrl_ros.core.spec import FINGERTIP_JOINTS, SpecError, TaskSpec

# MuJoCo's codes (mjtJoint, mjtTrn) for the joints a JointState can carry (one value each)
# and for an actuator that drives a joint.
_SLIDE, _HINGE = 2, 3
_TRANSMISSION_JOINT = 0
# How far the spec's control period may be from the environment's step, in seconds.
_DT_TOLERANCE_S = 1e-9


def make_mujoco_env(name: str):
    """The bare gymnasium MuJoCo environment ``name`` (no time limit, no checker).

    A missing ``mujoco`` (or one of gymnasium's MuJoCo dependencies) is reported by name.
    """
    try:
        import mujoco  # noqa: F401 - imported first, so its absence is named plainly
        env = gym.make(name, disable_env_checker=True)
    except (ImportError, gym.error.DependencyNotInstalled) as error:
        missing = getattr(error, 'name', None) or str(error)
        raise ImportError(f'robot.sim mujoco ({name}) needs the Python package {missing!r}, '
                          f'which is not installed: pip install -r requirements.txt (it '
                          f'pins mujoco and imageio)') from None
    return env.unwrapped


class ModelJoints:
    """The one-degree-of-freedom joints and the joint actuators of a MuJoCo model."""

    def __init__(self, model):
        import mujoco
        self.names, self.qpos, self.dof = [], [], []
        for j in range(model.njnt):
            # Free and ball joints hold a pose, not one value: a JointState cannot carry them.
            if model.jnt_type[j] in (_SLIDE, _HINGE):
                self.names.append(mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, j))
                self.qpos.append(int(model.jnt_qposadr[j]))
                self.dof.append(int(model.jnt_dofadr[j]))
        self.actuated = []
        """The joint each actuator drives, in actuator order ('' if not a joint)."""
        for a in range(model.nu):
            joint = int(model.actuator_trnid[a, 0])
            self.actuated.append(
                mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
                if model.actuator_trntype[a] == _TRANSMISSION_JOINT else '')
        self.ctrl_range = [tuple(model.actuator_ctrlrange[a]) if model.actuator_ctrllimited[a]
                           else (-math.inf, math.inf) for a in range(model.nu)]


def arm_links(model, shoulder: str, elbow: str) -> tuple:
    """Lengths (link0, link1) of a planar two-link arm in a MuJoCo model, in metres.

    link0: from the shoulder to the elbow (the elbow's body offset in the shoulder's body);
    link1: from the elbow to the body it carries (the fingertip, in gymnasium's Reacher).
    """
    import mujoco
    ids = []
    for joint in (shoulder, elbow):
        j = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, joint)
        if j < 0:
            raise SpecError(f'joint {joint!r} is not in the MuJoCo model')
        ids.append(int(model.jnt_bodyid[j]))
    elbow_body = ids[1]
    children = [b for b in range(model.nbody) if model.body_parentid[b] == elbow_body]
    if not children:
        raise SpecError(f'joint {elbow!r}: its body carries no link beyond it; expected a '
                        f'fingertip body')
    return (float(np.linalg.norm(model.body_pos[elbow_body][:2])),
            float(np.linalg.norm(model.body_pos[children[0]][:2])))


def check_against_model(spec: TaskSpec, env) -> tuple:
    """Refuse a spec the environment cannot run; return (joints, actuator index per field).

    The control rate must be the environment's step rate; the action a Float64MultiArray of
    one effort per actuator, each field the joint its actuator drives, every actuator named
    once, within its control range; fingertip terms must name the model's link lengths.
    """
    name = spec.sim_params['env']
    joints = ModelJoints(env.model)
    rate = 1.0 / env.dt
    if abs(spec.dt - env.dt) > _DT_TOLERANCE_S:
        raise SpecError(f'control_rate_hz: {spec.control_rate_hz:g} Hz, but {name} steps every '
                        f'{env.dt:g} s; expected {rate:g} Hz')
    if spec.action.type != 'float64_multi_array':
        raise SpecError(f'action.type: a mujoco robot takes efforts as float64_multi_array, '
                        f'got {spec.action.type}')
    actuated = [j for j in joints.actuated if j]
    if len(actuated) != len(joints.actuated):
        raise SpecError(f'{name}: an actuator drives something other than a joint; a mujoco '
                        f'robot here drives joints only')
    unknown = [f for f in spec.action.fields if f not in actuated]
    if unknown:
        raise SpecError(f'action.fields: {", ".join(map(repr, unknown))} is not a joint an '
                        f'actuator of {name} drives; its actuated joints: '
                        f'{", ".join(actuated)}')
    missing = [j for j in actuated if j not in spec.action.fields]
    if missing:
        raise SpecError(f'action.fields: the actuated joint(s) {", ".join(missing)} of {name} '
                        f'are missing; expected one effort per actuator: '
                        f'{", ".join(actuated)}')
    index = [actuated.index(f) for f in spec.action.fields]
    for i, field in enumerate(spec.action.fields):
        low, high = joints.ctrl_range[index[i]]
        if spec.action.low[i] < low - 1e-12 or spec.action.high[i] > high + 1e-12:
            raise SpecError(f'action: the bounds of {field!r} [{spec.action.low[i]:g}, '
                            f"{spec.action.high[i]:g}] exceed its actuator's control range "
                            f'[{low:g}, {high:g}] in {name}')
    terms = spec.reward + spec.termination.success + spec.termination.failure + \
        spec.termination.success_at_timeout
    for term in terms:
        for key in ('joint',) + FINGERTIP_JOINTS:
            joint = term.param(key)
            if joint is not None and joint not in joints.names:
                raise SpecError(f'{term.kind}.{key}: {joint!r} is not a joint of {name}; its '
                                f'joints: {", ".join(joints.names)}')
    for term in terms:
        if term.kind in ('fingertip_distance', 'fingertip_near'):
            links = arm_links(env.model, term.param('shoulder'), term.param('elbow'))
            given = (term.param('link0'), term.param('link1'))
            if not np.allclose(links, given, atol=1e-9):
                raise SpecError(f'{term.kind}: link0, link1 are {given}, but the arm of {name} '
                                f'has links {tuple(round(v, 9) for v in links)} m')
    return joints, index


class MujocoRobotEnv(SpecEnv):
    """Gymnasium environment for a ``robot.sim: mujoco`` task spec."""

    def __init__(self, spec: TaskSpec):
        super().__init__(spec)
        self.sim = make_mujoco_env(spec.sim_params['env'])
        self.joints, self._actuator_of_field = check_against_model(spec, self.sim)
        sources = [s.name for s in spec.sources.values() if s.kind == 'joint_state']
        if len(sources) != 1:
            raise SpecError(f'sources: a mujoco robot publishes one joint_state source; the '
                            f'spec declares {len(sources)}')
        self.source = sources[0]

    def readings(self) -> dict:
        data = self.sim.data
        reading = JointReading(stamp_ns=self.stamp_ns, names=tuple(self.joints.names),
                               position=data.qpos[self.joints.qpos].copy(),
                               velocity=data.qvel[self.joints.dof].copy(),
                               effort=data.qfrc_actuator[self.joints.dof].copy())
        return {self.source: reading}

    def controls(self, command: np.ndarray) -> np.ndarray:
        """The actuator controls (MuJoCo's ``ctrl``, actuator order) of a command."""
        ctrl = np.zeros(self.sim.model.nu)
        ctrl[self._actuator_of_field] = command
        return ctrl

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        self.sim.reset(seed=seed)
        if 'state' in options:
            # (qpos, qvel): a start state of one's choosing (tests, reset controllers).
            qpos, qvel = (np.asarray(v, dtype=np.float64) for v in options['state'])
            self.sim.set_state(qpos, qvel)
        return self.start_episode(), {'outcome': None}

    def step(self, action):
        command = self.command(action)
        _, gym_reward, gym_terminated, _, _ = self.sim.step(self.controls(command))
        obs, reward, terminated, truncated, outcome, terms = self.finish_step(command)
        # gymnasium's own reward and termination, for comparison with the spec's.
        info = {'outcome': outcome, 'reward_terms': terms,
                'gymnasium': {'reward': float(gym_reward), 'terminated': bool(gym_terminated)}}
        return obs, reward, terminated, truncated, info
