"""Choose the expert by name: the task's scripted expert or a trained checkpoint (a teacher).

Learning by cheating (Chen, Zhou, Koltun & Kraehenbuehl, "Learning by Cheating", CoRL 2020):
a teacher trained on privileged input labels the states a student visits, and the student
learns to act from its own, poorer sensors. Here the teacher is any checkpoint; it sees the
observation of the task it was trained on (its manifest's spec), built from the same
readings as the student's own observation, e.g. a lidar teacher (``track_follow``) labelling
a camera student (``track_follow_camera``), whose robot publishes both.

Expert names, the same for the ``expert`` node's ``expert`` parameter, ``ilrl collect
--expert`` and ``ilrl dagger --expert``:

- ``scripted`` (or empty): the task's scripted, privileged expert (``core/tasks.make_expert``);
- ``checkpoint:<folder>``: a trained policy as the teacher.
"""

import numpy as np

from ilrl_ros.core.observation import extract_observation
from ilrl_ros.core.spec import contract_mismatch, TaskSpec

SCRIPTED = 'scripted'
CHECKPOINT_PREFIX = 'checkpoint:'
EXPECTED = f"expected {SCRIPTED!r} (the task's scripted expert) or '{CHECKPOINT_PREFIX}<folder>'"


def parse_expert_name(name) -> tuple:
    """``(kind, path)`` for an expert name: ``('scripted', '')`` or ``('checkpoint', folder)``.

    Raises ``ValueError`` naming the value and the forms expected for anything else.
    """
    if not isinstance(name, str):
        raise ValueError(f'expert {name!r}: {EXPECTED}, not a {type(name).__name__}')
    if name in ('', SCRIPTED):
        return SCRIPTED, ''
    if name.startswith(CHECKPOINT_PREFIX):
        path = name[len(CHECKPOINT_PREFIX):]
        if not path.strip():
            raise ValueError(f'expert {name!r}: the checkpoint folder is missing; {EXPECTED}')
        if '\x00' in path:
            raise ValueError(f'expert {name!r}: a folder name cannot hold a NUL character; '
                             f'{EXPECTED}')
        return 'checkpoint', path
    raise ValueError(f'expert {name!r} is not known; {EXPECTED}')


class CheckpointExpert:
    """A checkpoint as the expert of another task (the student's): the teacher.

    It acts on the observation of its own task (the spec in its manifest) built from the
    student's readings, so it must read sources the student's robot has (same name and
    kind), run at the same control rate and command the same action (type, fields, bounds).
    Anything else is refused with a ``ValueError`` naming both tasks. A teacher whose task
    appends its own past actions (``observation.action_history``) is refused too: an expert
    that labels does not know what was executed.
    """

    def __init__(self, student: TaskSpec, path: str):
        from ilrl_ros.core.checkpoint import load_checkpoint  # lazy: loads torch
        # No expected spec: the teacher's task is allowed to differ in what it observes.
        self.policy = load_checkpoint(path)
        self.student = student
        self.spec = teacher = self.policy.spec
        where = f'teacher checkpoint {path} (task {teacher.name!r})'
        difference = contract_mismatch(student.contract()['action'],
                                       teacher.contract()['action'])
        if difference:
            raise ValueError(
                f'{where} commands {_action_text(teacher)} but the student task '
                f'{student.name!r} commands {_action_text(student)}: the action spaces must '
                f'match ({difference})')
        if not np.isclose(teacher.control_rate_hz, student.control_rate_hz):
            raise ValueError(f'{where} acts at {teacher.control_rate_hz:g} Hz but the student '
                             f'task {student.name!r} at {student.control_rate_hz:g} Hz')
        if teacher.observation.action_history:
            raise ValueError(f'{where} sees its last {teacher.observation.action_history} '
                             f'actions (observation.action_history); an expert that labels '
                             f'does not know what was executed: train the teacher without it')
        for name in teacher.observation.sources:
            theirs = teacher.sources[name]
            ours = student.sources.get(name)
            if ours is None or ours.kind != theirs.kind:
                have = ', '.join(f'{s.name} ({s.kind})' for s in student.sources.values())
                raise ValueError(f'{where} reads source {name!r} ({theirs.kind}), which the '
                                 f'student task {student.name!r} does not have; it has {have}')

    @property
    def sources(self) -> tuple:
        """The teacher's observation sources, by the names both tasks give them."""
        return tuple(self.spec.observation.sources)

    def act(self, readings: dict) -> np.ndarray:
        """The teacher's action for the readings, within the student's action bounds."""
        vector = extract_observation(self.spec, readings)
        return self.student.action.clip(self.policy.act(vector))


def _action_text(spec: TaskSpec) -> str:
    a = spec.action
    return (f'{a.type} [{", ".join(a.fields)}] in [{", ".join(f"{v:g}" for v in a.low)}] .. '
            f'[{", ".join(f"{v:g}" for v in a.high)}]')


def make_named_expert(spec: TaskSpec, name: str = SCRIPTED):
    """The expert called ``name`` (see the module docstring) for the student task ``spec``.

    Each has ``sources`` (the readings it needs) and ``act(readings) -> action``.
    """
    kind, path = parse_expert_name(name)
    if kind == SCRIPTED:
        from ilrl_ros.core.tasks import make_expert  # lazy: tasks builds simulators too
        return make_expert(spec)
    return CheckpointExpert(spec, path)
