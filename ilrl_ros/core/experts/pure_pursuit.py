"""Expert for the corridor task: pure pursuit of the centerline, driven counter-clockwise.

Pure pursuit after Coulter, "Implementation of the Pure Pursuit Path Tracking Algorithm",
CMU-RI-TR-92-01, 1992. The expert is privileged: it knows the map and the robot's true pose,
which the learner only sees through its lidar.
"""

import math

from ilrl_ros.core.world.track_geometry import MAX_ANGULAR_SPEED, MAX_LINEAR_SPEED, Track


class PurePursuit:
    """
    Steer towards the centerline point ``lookahead`` metres of arc ahead of the robot.

    The arc through that point, tangent to the robot's heading, has curvature
    ``k = 2 y / d^2`` (``y`` the point's lateral offset in the robot frame, ``d`` its
    distance). The expert drives that arc at ``speed``, slowed so that the lateral
    acceleration ``v^2 |k|`` stays below ``max_lateral_accel`` and the turn rate below
    ``max_angular``. A target behind the robot (it is facing the wrong way) makes it turn on
    the spot towards the target.
    """

    def __init__(self, track: Track, lookahead: float = 0.35, speed: float = MAX_LINEAR_SPEED,
                 max_angular: float = MAX_ANGULAR_SPEED, max_lateral_accel: float = 0.5):
        """
        Build the expert for one track.

        :param track: The track to follow.
        :param lookahead: Arc length in metres from the robot's projection to the target.
        :param speed: Cruise speed in m/s.
        :param max_angular: Turn-rate limit in rad/s.
        :param max_lateral_accel: Lateral acceleration limit in m/s^2; slows tight curves.
        """
        if lookahead <= 0.0 or speed <= 0.0 or max_angular <= 0.0 or max_lateral_accel <= 0.0:
            raise ValueError(
                'lookahead, speed, max_angular and max_lateral_accel must all be positive, got '
                f'{lookahead}, {speed}, {max_angular} and {max_lateral_accel}.')
        self.track = track
        self.lookahead = float(lookahead)
        self.speed = float(speed)
        self.max_angular = float(max_angular)
        self.max_lateral_accel = float(max_lateral_accel)
        # Only a search hint for the projection: the answer does not depend on it.
        self._last_s = None

    def act(self, x: float, y: float, yaw: float):
        """
        Command for the robot at pose ``(x, y, yaw)``.

        :return: ``(v, w)``: linear speed in m/s and angular speed in rad/s (CCW positive).
        """
        s = self.track.project(x, y, hint_s=self._last_s).s
        self._last_s = s
        return self.toward(x, y, yaw, *self.track.pose_at(s + self.lookahead)[:2])

    def toward(self, x: float, y: float, yaw: float, target_x: float, target_y: float):
        """Command for the robot at pose ``(x, y, yaw)`` to drive the arc to a target point.

        :return: ``(v, w)`` as ``act`` returns.
        """
        dx, dy = target_x - x, target_y - y
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        ahead = cos_yaw * dx + sin_yaw * dy
        left = -sin_yaw * dx + cos_yaw * dy
        if ahead <= 0.0:
            return 0.0, math.copysign(self.max_angular, left)
        curvature = 2.0 * left / (ahead**2 + left**2)
        v = self.speed
        if curvature != 0.0:
            v = min(v, math.sqrt(self.max_lateral_accel / abs(curvature)),
                    self.max_angular / abs(curvature))
        return v, v * curvature
