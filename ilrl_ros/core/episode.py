"""Reward terms and termination conditions of a task spec, computed from sensor readings.

The simulators, the reward monitor node and the episode manager node all use these, so a
return or an outcome means the same thing in simulation and over ROS 2.
"""

from dataclasses import dataclass
import math

import numpy as np

from ilrl_ros.core.spec import TaskSpec, Term
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize

SUCCESS, FAILURE, TIMEOUT = 'success', 'failure', 'timeout'


def _min_range(reading) -> float:
    ranges = np.asarray(reading.ranges, dtype=np.float64)
    valid = ranges[~np.isnan(ranges)]
    valid = np.where(np.isneginf(valid), 0.0, valid)
    return float(valid.min()) if valid.size else math.inf


def _joint_position(reading, joint: str) -> tuple:
    names = list(reading.names)
    if joint not in names:
        raise ValueError(f'joint {joint!r} is not in the joint states (they name {names})')
    i = names.index(joint)
    if len(reading.position) != len(names):
        raise ValueError(f'joint states name {len(names)} joints but carry '
                         f'{len(reading.position)} positions; expected one per name')
    velocity = float(reading.velocity[i]) if len(reading.velocity) > i else 0.0
    position = float(reading.position[i])
    if not (math.isfinite(position) and math.isfinite(velocity)):
        raise ValueError(f'joint {joint!r} has position {position} and velocity {velocity}; '
                         f'expected finite numbers')
    return position, velocity


class _Progress:
    """Arc length travelled along the track's centerline, from successive odometry."""

    def __init__(self, track, source: str):
        self.track = track
        self.source = source
        self.s = None
        self.total = 0.0

    def reset(self, readings: dict) -> None:
        odom = readings[self.source]
        self.s = self.track.project(odom.x, odom.y).s
        self.total = 0.0

    def advance(self, readings: dict) -> float:
        odom = readings[self.source]
        s = self.track.project(odom.x, odom.y, hint_s=self.s).s
        delta = self.track.arc_delta(self.s, s) if self.s is not None else 0.0
        self.s = s
        self.total += delta
        return delta


class RewardFunction:
    """r_t = sum of weighted terms of (readings before, action, readings after)."""

    def __init__(self, spec: TaskSpec, world=None):
        self.spec = spec
        self.terms = spec.reward
        self._progress = {}
        for term in self.terms:
            if term.kind == 'track_progress':
                if world is None:
                    raise ValueError("reward term track_progress needs a track; the task's "
                                     f'robot.sim is {spec.sim!r}')
                self._progress[id(term)] = _Progress(world, term.source)

    @property
    def sources(self) -> tuple:
        return tuple(dict.fromkeys(t.source for t in self.terms if t.source))

    def reset(self, readings: dict) -> None:
        for progress in self._progress.values():
            progress.reset(readings)

    def _term(self, term: Term, before: dict, action: np.ndarray, after: dict) -> float:
        if term.kind == 'track_progress':
            return self._progress[id(term)].advance(after)
        if term.kind == 'living_cost':
            return -1.0
        if term.kind == 'collision':
            return -1.0 if _min_range(after[term.source]) < term.param('threshold') else 0.0
        if term.kind == 'action_cost':
            return -float(np.sum(np.square(action)))
        if term.kind == 'pendulum_cost':
            # Pendulum-v1 scores the state the action was applied in, not the next one.
            joint = term.param('joint')
            theta, theta_dot = _joint_position(before[term.source], joint)
            return -(angle_normalize(theta) ** 2 + 0.1 * theta_dot ** 2 +
                     0.001 * self._applied_effort(after[term.source], joint, action) ** 2)
        raise ValueError(f'unknown reward term {term.kind!r}')

    def _applied_effort(self, joints, joint: str, action: np.ndarray) -> float:
        """The effort the joint reports after the step, else the commanded one.

        A joint state broadcaster reports the effort actually applied; using it avoids
        pairing a command with the wrong step when commands and states race on the wire.
        """
        names = list(joints.names)
        if joint in names and len(joints.effort) == len(names):
            return float(joints.effort[names.index(joint)])
        fields = self.spec.action.fields
        return float(action[fields.index(joint)]) if joint in fields else float(action[0])

    def step(self, before: dict, action: np.ndarray, after: dict) -> tuple:
        """Return (reward, {term kind: weighted value}) for one control step."""
        values = {}
        for term in self.terms:
            values[term.kind] = values.get(term.kind, 0.0) + \
                term.weight * self._term(term, before, action, after)
        return float(sum(values.values())), values


class Termination:
    """Decides whether an episode has ended, and how: success, failure or timeout."""

    def __init__(self, spec: TaskSpec, world=None):
        self.spec = spec.termination
        self._world = world
        self._progress = {}
        self._held_since = {}
        self._start_ns = 0
        half_step = 0.5 / spec.control_rate_hz
        self._timeout_ns = int((self.spec.timeout_s - half_step) * 1e9)
        for term in self.spec.success + self.spec.failure + self.spec.success_at_timeout:
            if term.kind == 'lap_complete':
                if world is None:
                    raise ValueError("termination lap_complete needs a track; the task's "
                                     f'robot.sim is {spec.sim!r}')
                self._progress[id(term)] = _Progress(world, term.source)

    @property
    def sources(self) -> tuple:
        terms = self.spec.success + self.spec.failure + self.spec.success_at_timeout
        return tuple(dict.fromkeys(t.source for t in terms if t.source))

    def reset(self, readings: dict, stamp_ns: int) -> None:
        self._start_ns = stamp_ns
        self._held_since = {}
        for progress in self._progress.values():
            progress.reset(readings)

    def elapsed_s(self, stamp_ns: int) -> float:
        return (stamp_ns - self._start_ns) / 1e9

    def _holds(self, term: Term, readings: dict, stamp_ns: int) -> bool:
        if term.kind == 'lap_complete':
            progress = self._progress[id(term)]
            return progress.total >= progress.track.length
        if term.kind == 'collision':
            return _min_range(readings[term.source]) < term.param('threshold')
        if term.kind == 'joint_near':
            theta, _ = _joint_position(readings[term.source], term.param('joint'))
            near = abs(angle_normalize(theta - term.param('target', 0.0))) <= \
                term.param('tolerance')
            if not near:
                self._held_since.pop(id(term), None)
                return False
            since = self._held_since.setdefault(id(term), stamp_ns)
            return (stamp_ns - since) / 1e9 >= term.param('hold_s', 0.0) - 1e-9
        raise ValueError(f'unknown termination condition {term.kind!r}')

    def check(self, readings: dict, stamp_ns: int):
        """Advance by one step's readings; return the outcome, or None if it goes on."""
        for progress in self._progress.values():
            progress.advance(readings)
        # Evaluate every condition each step: held-for-a-while conditions need the history.
        success = [self._holds(t, readings, stamp_ns) for t in self.spec.success]
        failure = [self._holds(t, readings, stamp_ns) for t in self.spec.failure]
        at_timeout = [self._holds(t, readings, stamp_ns) for t in self.spec.success_at_timeout]
        if any(failure):
            return FAILURE
        if any(success):
            return SUCCESS
        if stamp_ns - self._start_ns >= self._timeout_ns:
            return SUCCESS if at_timeout and all(at_timeout) else TIMEOUT
        return None

    def progress_m(self) -> float:
        """Centerline distance covered this episode (0 for tasks without a track)."""
        return max((p.total for p in self._progress.values()), default=0.0)


@dataclass(frozen=True)
class EpisodeResult:
    """What one episode came to, in the form the episode manager publishes."""

    episode: int
    outcome: str
    episode_return: float
    length: int
    duration_s: float
    policy: str = ''

    def as_dict(self) -> dict:
        return {'episode': self.episode, 'outcome': self.outcome,
                'success': self.outcome == SUCCESS, 'return': self.episode_return,
                'length': self.length, 'duration_s': self.duration_s, 'policy': self.policy}
