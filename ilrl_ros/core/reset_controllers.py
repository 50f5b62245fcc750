"""Reset controllers: what drives a robot back to a start state when no simulator can.

"Where do you get episode resets from?" On a real robot, from a controller that brings it
back (or from an operator). A reset controller maps the newest readings to an action, like
an expert; the episode manager runs it until the spec's start condition holds
(``core/episode/reset.StartCondition``). By name (``make_reset_controller``):

- ``expert``: the task's scripted expert (``core/tasks.make_expert``);
- a scripted routine from ``ROUTINES``, e.g. ``pendulum_rest``, which damps the pendulum to
  rest hanging down;
- ``checkpoint:<folder>``: a trained policy, checked against the task as the policy node
  checks one, run on the observation assembled from the readings.

Each has ``sources`` (what it reads), ``act(readings)`` (an action within the bounds) and
``reset()`` (called as each reset begins).
"""

import numpy as np

from ilrl_ros.core.episode.measures import joint_position
from ilrl_ros.core.observation import ActionHistory, extract_observation
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize

CHECKPOINT_PREFIX = 'checkpoint:'


class ExpertReset:
    """The task's expert as a reset controller (pure pursuit back onto the track, swing-up)."""

    def __init__(self, spec: TaskSpec):
        from ilrl_ros.core.tasks import make_expert  # lazy: tasks builds simulators too
        self.spec = spec
        self.expert = make_expert(spec)

    @property
    def sources(self) -> tuple:
        return self.expert.sources

    def reset(self) -> None:
        pass

    def act(self, readings: dict) -> np.ndarray:
        return self.spec.action.clip(self.expert.act(readings))


class PendulumRest:
    """Damp the pendulum to rest hanging down: PD on the angle from pi, torque-limited.

    u = -kp * (theta - pi) - kd * theta_dot (the angle wrapped), clipped to the bounds. The
    damping takes the energy out; the proportional part tips a pendulum balanced upright,
    which damping alone would leave there. From any Pendulum-v1 start it rests within 0.1
    rad and 0.2 rad/s of hanging down in under 4 s.
    """

    def __init__(self, spec: TaskSpec, kp: float = 1.0, kd: float = 2.0):
        if spec.sim != 'pendulum':
            raise ValueError(f"reset controller 'pendulum_rest' drives a pendulum; the task's "
                             f'robot.sim is {spec.sim!r}')
        self.spec = spec
        self.kp, self.kd = kp, kd
        self.joint = str(spec.sim_params.get('joint', 'pendulum_joint'))
        (self.source,) = [s.name for s in spec.sources.values() if s.kind == 'joint_state']
        fields = spec.action.fields
        self._index = fields.index(self.joint) if self.joint in fields else 0

    @property
    def sources(self) -> tuple:
        return (self.source,)

    def reset(self) -> None:
        pass

    def act(self, readings: dict) -> np.ndarray:
        theta, theta_dot = joint_position(readings[self.source], self.joint)
        action = np.zeros(self.spec.action.size)
        action[self._index] = -self.kp * angle_normalize(theta - np.pi) - self.kd * theta_dot
        return self.spec.action.clip(action)


class CheckpointReset:
    """A checkpoint as a reset controller, run on the observation the policy would see.

    With ``observation.action_history`` the fields are followed by the controller's own last
    actions, from zeros at each reset's start, as the policy node does at an episode's start.
    """

    def __init__(self, spec: TaskSpec, path: str):
        from ilrl_ros.core.checkpoint import load_checkpoint  # lazy: loads torch
        self.spec = spec
        self.policy = load_checkpoint(path, expected_spec=spec)
        self.history = ActionHistory(spec)

    @property
    def sources(self) -> tuple:
        return self.spec.observation.sources

    def reset(self) -> None:
        self.history.reset()

    def act(self, readings: dict) -> np.ndarray:
        vector = self.history.augment(extract_observation(self.spec, readings))
        action = self.spec.action.clip(self.policy.act(vector))
        self.history.push(action)
        return action


ROUTINES = {'pendulum_rest': PendulumRest}
"""Scripted reset routines by name."""


def make_reset_controller(spec: TaskSpec, name: str):
    """The reset controller called ``name`` for ``spec``; None for '' (no controller).

    Raises ``ValueError`` (a ``CheckpointError`` for a checkpoint) with the reason when the
    name is unknown or the controller cannot drive this task.
    """
    if not name:
        return None
    if name == 'expert':
        return ExpertReset(spec)
    if name.startswith(CHECKPOINT_PREFIX):
        path = name[len(CHECKPOINT_PREFIX):]
        if not path:
            raise ValueError(f"reset controller {name!r}: expected 'checkpoint:<folder>'")
        return CheckpointReset(spec, path)
    if name in ROUTINES:
        return ROUTINES[name](spec)
    raise ValueError(f"reset controller {name!r} is not known; expected '', 'expert', "
                     f"'checkpoint:<folder>' or one of {', '.join(sorted(ROUTINES))}")
