"""Termination conditions of a task spec: whether an episode has ended, and how."""

from ilrl_ros.core.episode import FAILURE, SUCCESS, TIMEOUT
from ilrl_ros.core.episode.measures import (fingertip_distance, joint_position, joint_within,
                                            min_range, track_progresses)
from ilrl_ros.core.spec import TaskSpec, Term
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize


class Termination:
    """Decides whether an episode has ended, and how: success, failure or timeout."""

    def __init__(self, spec: TaskSpec, world=None):
        self.spec = spec.termination
        self._world = world
        self._held_since = {}
        self._start_ns = 0
        self.timed_out = False
        """Whether the last outcome ``check`` returned came from the time limit."""
        half_step = 0.5 / spec.control_rate_hz
        self._timeout_ns = int((self.spec.timeout_s - half_step) * 1e9)
        self._progress = track_progresses(
            self.spec.success + self.spec.failure + self.spec.success_at_timeout,
            'lap_complete', world, spec, 'termination')

    @property
    def sources(self) -> tuple:
        terms = self.spec.success + self.spec.failure + self.spec.success_at_timeout
        return tuple(dict.fromkeys(t.source for t in terms if t.source))

    def reset(self, readings: dict, stamp_ns: int) -> None:
        self._start_ns = stamp_ns
        self._held_since = {}
        self.timed_out = False
        for progress in self._progress.values():
            progress.reset(readings)

    def elapsed_s(self, stamp_ns: int) -> float:
        return (stamp_ns - self._start_ns) / 1e9

    def _holds(self, term: Term, readings: dict, stamp_ns: int) -> bool:
        if term.kind == 'lap_complete':
            progress = self._progress[id(term)]
            return progress.total >= progress.track.length
        if term.kind == 'collision':
            return min_range(readings[term.source]) < term.param('threshold')
        if term.kind == 'joint_outside':
            return not joint_within(readings[term.source], term)
        if term.kind == 'joint_near':
            theta, _ = joint_position(readings[term.source], term.param('joint'))
            near = abs(angle_normalize(theta - term.param('target', 0.0))) <= \
                term.param('tolerance')
            return self._held(term, near, stamp_ns)
        if term.kind == 'fingertip_near':
            near = fingertip_distance(readings[term.source], term) <= term.param('tolerance')
            return self._held(term, near, stamp_ns)
        raise ValueError(f'unknown termination condition {term.kind!r}')

    def _held(self, term: Term, holds: bool, stamp_ns: int) -> bool:
        """Whether ``term`` has held for its ``hold_s`` up to this step."""
        if not holds:
            self._held_since.pop(id(term), None)
            return False
        since = self._held_since.setdefault(id(term), stamp_ns)
        return (stamp_ns - since) / 1e9 >= term.param('hold_s', 0.0) - 1e-9

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
            self.timed_out = True
            return SUCCESS if at_timeout and all(at_timeout) else TIMEOUT
        return None

    def progress_m(self) -> float:
        """Centerline distance covered this episode (0 for tasks without a track)."""
        return max((p.total for p in self._progress.values()), default=0.0)
