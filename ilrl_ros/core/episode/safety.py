"""The safe set of a task spec (``safety:``): joint and workspace limits, checked per step.

Leaving the safe set ends an episode as ``unsafe`` (terminal): the episode manager, the
safety supervisor of the graph, then commands zero and resets. ``SafeSet.check`` says which
limit was broken and by what value, so the log and the episode's end event can say why.
"""

import math

from ilrl_ros.core.episode.measures import joint_position
from ilrl_ros.core.spec import TaskSpec


class SafeSet:
    """Checks readings against the spec's ``safety`` limits (none: every state is safe)."""

    def __init__(self, spec: TaskSpec, world=None):
        self.safety = spec.safety
        self.joints = spec.safety.joints if spec.safety else ()
        self.workspace = spec.safety.workspace if spec.safety else ()
        self._track = world
        if world is None and any(w.max_lateral is not None for w in self.workspace):
            raise ValueError(f"safety.workspace max_lateral needs a track; the task's "
                             f'robot.sim is {spec.sim!r}')

    @property
    def sources(self) -> tuple:
        return self.safety.sources if self.safety else ()

    def __bool__(self) -> bool:
        """Whether there is any limit to check."""
        return bool(self.joints or self.workspace)

    def check(self, readings: dict):
        """None while every limit holds, else a sentence naming the limit broken and the value.

        ``readings`` holds a reading for each of ``sources``; a joint missing from its joint
        state, or a non-finite value, raises ``ValueError`` (the state cannot be judged).
        """
        for i, limit in enumerate(self.joints):
            where = f'safety.joints[{i}]'
            position, velocity = joint_position(readings[limit.source], limit.joint)
            if limit.position is not None:
                low, high = limit.position
                if not low <= position <= high:
                    return (f'joint {limit.joint!r} is at position {position:.4g}, outside '
                            f'{where}.position [{low:g}, {high:g}]')
            if limit.max_velocity is not None and abs(velocity) > limit.max_velocity:
                return (f'joint {limit.joint!r} moves at {velocity:.4g} per second, faster '
                        f'than {where}.max_velocity {limit.max_velocity:g}')
        for i, limit in enumerate(self.workspace):
            where = f'safety.workspace[{i}]'
            odom = readings[limit.source]
            x, y = float(odom.x), float(odom.y)
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError(f'source {limit.source!r} reports the position ({x}, {y}); '
                                 f'expected finite numbers')
            for axis, value, bounds in (('x', x, limit.x), ('y', y, limit.y)):
                if bounds is not None and not bounds[0] <= value <= bounds[1]:
                    return (f'{limit.source!r} puts the robot at {axis} = {value:.3f} m, '
                            f'outside {where}.{axis} [{bounds[0]:g}, {bounds[1]:g}] m')
            if limit.max_lateral is not None:
                distance = float(self._track.project(x, y).distance)
                if distance > limit.max_lateral:
                    return (f'{limit.source!r} puts the robot {distance:.3f} m from the track '
                            f'centerline, beyond {where}.max_lateral {limit.max_lateral:g} m')
        return None
