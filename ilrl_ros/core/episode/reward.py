"""Reward terms of a task spec, computed from sensor readings before and after each step."""

import numpy as np

from ilrl_ros.core.episode.measures import (fingertip_distance, joint_effort, joint_position,
                                            joint_within, min_range, track_progresses)
from ilrl_ros.core.spec import TaskSpec, Term
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize


class RewardFunction:
    """r_t = sum of weighted terms of (readings before, action, readings after)."""

    def __init__(self, spec: TaskSpec, world=None):
        self.spec = spec
        self.terms = spec.reward
        self._progress = track_progresses(self.terms, 'track_progress', world, spec,
                                          'reward term')

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
            return -1.0 if min_range(after[term.source]) < term.param('threshold') else 0.0
        if term.kind == 'action_cost':
            return -float(np.sum(np.square(action)))
        if term.kind == 'fingertip_distance':
            # gymnasium's Reacher scores the state after the step.
            return -fingertip_distance(after[term.source], term)
        if term.kind == 'effort_cost':
            # The effort the joint reports after the step: the one that acted on it, never
            # a command paired with the wrong step when commands and states race on the wire.
            return -joint_effort(after[term.source], term.param('joint')) ** 2
        if term.kind == 'joint_within':
            # 1 while the joint stays in its range (InvertedPendulum's alive reward).
            return 1.0 if joint_within(after[term.source], term) else 0.0
        if term.kind == 'pendulum_cost':
            # Pendulum-v1 scores the state the action was applied in, not the next one.
            joint = term.param('joint')
            theta, theta_dot = joint_position(before[term.source], joint)
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
