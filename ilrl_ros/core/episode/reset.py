"""What a start state is (the spec's ``reset:`` block), judged from sensor readings.

Without a simulator an episode's reset is the robot driven back to a start state, by a
reset controller or by an operator. ``StartCondition`` says when it is there: every target
holds (a joint near a position and slow enough, the robot near a pose, on the track, slow
enough), without a break for ``hold_s`` seconds of reading stamps.
"""

import math

from ilrl_ros.core.episode.measures import joint_position
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize


class StartCondition:
    """Whether the readings show a start state of the task, held long enough."""

    def __init__(self, spec: TaskSpec, world=None):
        if spec.reset is None:
            raise ValueError(f'task {spec.name!r} has no reset block: a reset controller needs '
                             f'the spec to say what a start state is (reset: joints or poses)')
        self.spec = spec.reset
        self._track = world
        if world is None and any(p.max_lateral is not None or p.max_heading_error is not None
                                 for p in self.spec.poses):
            raise ValueError(f'reset.poses max_lateral and max_heading_error need a track; the '
                             f"task's robot.sim is {spec.sim!r}")
        self._since = None
        self.unmet = 'no reading judged yet'
        """Why the last readings were no start state ('' when they were)."""

    @property
    def sources(self) -> tuple:
        return self.spec.sources

    def reset(self) -> None:
        """Forget how long the start state has held (a new reset begins)."""
        self._since = None
        self.unmet = 'no reading judged yet'

    def missing(self, readings: dict) -> str:
        """Why ``readings`` are no start state, or '' when every target holds."""
        for i, target in enumerate(self.spec.joints):
            where = f'reset.joints[{i}]'
            position, velocity = joint_position(readings[target.source], target.joint)
            if target.position is not None:
                error = position - target.position
                if target.wrap:
                    error = angle_normalize(error)
                if abs(error) > target.tolerance:
                    return (f'joint {target.joint!r} is at {position:.4g}, {abs(error):.4g} '
                            f'from {where}.position {target.position:g} (tolerance '
                            f'{target.tolerance:g})')
            if target.max_velocity is not None and abs(velocity) > target.max_velocity:
                return (f'joint {target.joint!r} moves at {velocity:.4g} per second, faster '
                        f'than {where}.max_velocity {target.max_velocity:g}')
        for i, target in enumerate(self.spec.poses):
            problem = self._pose_missing(f'reset.poses[{i}]', target, readings[target.source])
            if problem:
                return problem
        return ''

    def _pose_missing(self, where: str, target, odom) -> str:
        x, y, yaw = float(odom.x), float(odom.y), float(odom.yaw)
        if not all(math.isfinite(v) for v in (x, y, yaw, odom.vx, odom.vy, odom.wz)):
            raise ValueError(f'source {target.source!r} reports a non-finite pose or velocity; '
                             f'expected finite numbers')
        if target.x is not None:
            distance = math.hypot(x - target.x, y - target.y)
            if distance > target.tolerance:
                return (f'the robot is {distance:.3f} m from {where} ({target.x:g}, '
                        f'{target.y:g}) (tolerance {target.tolerance:g} m)')
        if target.yaw is not None:
            error = abs(angle_normalize(yaw - target.yaw))
            if error > target.yaw_tolerance:
                return (f'the robot faces {yaw:.3f} rad, {error:.3f} rad from {where}.yaw '
                        f'{target.yaw:g} (tolerance {target.yaw_tolerance:g} rad)')
        if target.max_lateral is not None or target.max_heading_error is not None:
            projection = self._track.project(x, y)
            if target.max_lateral is not None and projection.distance > target.max_lateral:
                return (f'the robot is {projection.distance:.3f} m from the track centerline, '
                        f'beyond {where}.max_lateral {target.max_lateral:g} m')
            error = abs(angle_normalize(yaw - projection.heading))
            if target.max_heading_error is not None and error > target.max_heading_error:
                return (f'the robot faces {error:.3f} rad off the track direction, beyond '
                        f'{where}.max_heading_error {target.max_heading_error:g} rad')
        speed = math.hypot(odom.vx, odom.vy)
        if target.max_speed is not None and speed > target.max_speed:
            return (f'the robot moves at {speed:.3f} m/s, faster than {where}.max_speed '
                    f'{target.max_speed:g} m/s')
        if target.max_turn_rate is not None and abs(odom.wz) > target.max_turn_rate:
            return (f'the robot turns at {odom.wz:.3f} rad/s, faster than '
                    f'{where}.max_turn_rate {target.max_turn_rate:g} rad/s')
        return ''

    def update(self, readings: dict, stamp_ns: int) -> bool:
        """Judge one set of readings; True once the start state has held for ``hold_s``."""
        self.unmet = self.missing(readings)
        if self.unmet:
            self._since = None
            return False
        if self._since is None:
            self._since = stamp_ns
        held_s = (stamp_ns - self._since) / 1e9
        if held_s >= self.spec.hold_s - 1e-9:
            return True
        self.unmet = (f'the start state has held {held_s:.2f} s of reset.hold_s '
                      f'{self.spec.hold_s:g} s')
        return False
