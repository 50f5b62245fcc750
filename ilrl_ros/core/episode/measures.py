"""What reward terms and termination conditions measure in the readings.

The nearest obstacle in a scan, one joint's state, an arm's fingertip distance to its
target, and the distance travelled along the track: a collision or a lap counts the same for
the reward and for the end of an episode.
"""

import math

import numpy as np


def min_range(reading) -> float:
    """The nearest range in a scan: NaN rays skipped, -inf (too close to measure) as 0."""
    ranges = np.asarray(reading.ranges, dtype=np.float64)
    valid = ranges[~np.isnan(ranges)]
    valid = np.where(np.isneginf(valid), 0.0, valid)
    return float(valid.min()) if valid.size else math.inf


def joint_position(reading, joint: str) -> tuple:
    """Return (position, velocity) of one joint of a joint state; velocity 0 if not sent."""
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


def joint_effort(reading, joint: str) -> float:
    """The effort one joint of a joint state reports (N m or N)."""
    names = list(reading.names)
    if joint not in names:
        raise ValueError(f'joint {joint!r} is not in the joint states (they name {names})')
    if len(reading.effort) != len(names):
        raise ValueError(f'joint states name {len(names)} joints but carry '
                         f'{len(reading.effort)} efforts; expected one per name')
    effort = float(reading.effort[names.index(joint)])
    if not math.isfinite(effort):
        raise ValueError(f'joint {joint!r} has effort {effort}; expected a finite number')
    return effort


def fingertip_distance(reading, term) -> float:
    """Distance in metres from a planar two-link arm's fingertip to a target, by one term.

    The arm turns about the origin: ``shoulder`` at the base, ``elbow`` ``link0`` metres out,
    the fingertip ``link1`` metres beyond it; the target sits at the positions of the
    ``target_x`` and ``target_y`` slide joints (gymnasium's Reacher).
    """
    q0, _ = joint_position(reading, term.param('shoulder'))
    q1, _ = joint_position(reading, term.param('elbow'))
    x = term.param('link0') * math.cos(q0) + term.param('link1') * math.cos(q0 + q1)
    y = term.param('link0') * math.sin(q0) + term.param('link1') * math.sin(q0 + q1)
    tx, _ = joint_position(reading, term.param('target_x'))
    ty, _ = joint_position(reading, term.param('target_y'))
    return math.hypot(x - tx, y - ty)


def joint_within(reading, term) -> bool:
    """Whether a term's ``joint`` lies within its [``low``, ``high``]."""
    position, _ = joint_position(reading, term.param('joint'))
    return term.param('low') <= position <= term.param('high')


class TrackProgress:
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


def track_progresses(terms, kind: str, world, spec, what: str) -> dict:
    """A TrackProgress for each term of this kind, keyed by ``id(term)``; they need a track."""
    progresses = {}
    for term in terms:
        if term.kind == kind:
            if world is None:
                raise ValueError(f"{what} {kind} needs a track; the task's robot.sim is "
                                 f'{spec.sim!r}')
            progresses[id(term)] = TrackProgress(world, term.source)
    return progresses
