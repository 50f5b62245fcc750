"""Expert for the corridor with posts: pure pursuit of a path that swerves left or right of each.

The side of each pass is drawn at random (a fair coin per post, per pass), so demonstrations
of the same state hold two different actions: the multimodal data behavior cloning with one
Gaussian averages into a drive straight at the post (Bishop, "Mixture Density Networks",
1994, section 1, on the mean of a multi-valued target). Privileged, as ``PurePursuit``: it
knows the map, the posts and the robot's true pose.
"""

import math

import numpy as np

from ilrl_ros.core.experts.pure_pursuit import PurePursuit


SIDES = ('random', 'left', 'right')


def smoothstep(u: float) -> float:
    """0 at u <= 0, 1 at u >= 1, a half cosine between (zero slope at both ends)."""
    u = min(max(u, 0.0), 1.0)
    return 0.5 - 0.5 * math.cos(math.pi * u)


class ObstaclePassing:
    """
    Follow the centerline, swerving around each post on a side drawn when it comes in reach.

    The path's lateral offset near a post at arc length ``s_o`` is ``side * pass_lateral``
    held for ``hold`` metres either side of it, ramped in (half cosine) over the ``approach``
    metres before and out over the ``leave`` metres after; ``pass_lateral`` puts the robot's
    edge ``margin`` metres off the post. The expert reacts late: the side is drawn when the
    robot itself comes within ``approach`` metres of the post (kept until it is ``leave``
    metres past), and only then does the path leave the centerline; the pursuit's target,
    ``lookahead`` metres ahead, is already part way up the ramp, so the swerve is abrupt: in
    one state the demonstrations turn hard left or hard right. A side whose gap is too narrow
    for the robot is never drawn.
    """

    def __init__(self, course, robot_radius: float = 0.105, margin: float = 0.08,
                 approach: float = 0.8, hold: float = 0.2, leave: float = 1.0, seed=0,
                 side: str = 'random', **pursuit):
        """
        Build the expert for one obstacle course (``world.obstacles.ObstacleCourse``).

        :param robot_radius: The robot's footprint radius in metres.
        :param margin: Clearance between the robot's edge and the post when passing, metres.
        :param approach: Arc length in metres over which the path swerves out before a post.
        :param hold: Half-length in metres of the stretch at full offset around a post.
        :param leave: Arc length in metres over which the path returns to the centerline.
        :param seed: Seed of the coin that picks each side, so that a collection repeats
            (None: fresh entropy).
        :param side: 'random' (a fair coin per pass), or 'left' or 'right' every time (to
            demonstrate each side from the same starts, as ``bench/multimodal.py`` does).
        :param pursuit: Options of ``PurePursuit`` (lookahead, speed, ...).
        """
        values = {'robot_radius': robot_radius, 'margin': margin, 'approach': approach,
                  'hold': hold, 'leave': leave}
        for name, value in values.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0.0):
                raise ValueError(f'obstacle expert {name} must be a finite number >= 0 '
                                 f'(metres), got {value!r}')
        if side not in SIDES:
            raise ValueError(f'obstacle expert side must be one of {", ".join(SIDES)}, got '
                             f'{side!r}')
        self.side = side
        if not hold < approach or not hold < leave:
            raise ValueError(f'obstacle expert: hold ({hold} m) must be shorter than approach '
                             f'({approach} m) and leave ({leave} m)')
        self.course = course
        self.pursuit = PurePursuit(course.track, **pursuit)
        self.approach, self.hold, self.leave = float(approach), float(hold), float(leave)
        self.rng = np.random.default_rng(seed)
        limit = 0.5 * course.width - robot_radius - 0.02
        # Per post: the lateral offsets of its passable sides, (left, right), None if too narrow.
        self.sides = []
        for post in course.obstacles:
            clear = post.radius + robot_radius + margin
            left, right = post.lateral + clear, post.lateral - clear
            self.sides.append((left if left <= limit else None,
                               right if right >= -limit else None))
        self._last_s = None  # a projection search hint only
        self.chosen = {}
        """The side chosen for each post now in reach: +1 left, -1 right."""
        self.choices = []
        """Every side drawn so far, in order, as (post index, +1 left or -1 right)."""

    def _side(self, i: int) -> int:
        if i not in self.chosen:
            left, right = self.sides[i]
            if self.side != 'random' and self.sides[i][self.side == 'right'] is not None:
                side = 1 if self.side == 'left' else -1
            elif left is not None and right is not None:
                side = 1 if self.rng.random() < 0.5 else -1
            else:
                side = 1 if left is not None else -1
            self.chosen[i] = side
            self.choices.append((i, side))
        return self.chosen[i]

    def lateral_at(self, s: float) -> float:
        """The path's offset from the centerline at arc length ``s``, for the sides chosen."""
        offset = 0.0
        for i, side in self.chosen.items():
            post = self.course.obstacles[i]
            d = self.course.track.arc_delta(post.s, s)
            if not -self.approach <= d <= self.leave:
                continue
            target = self.sides[i][0 if side > 0 else 1]
            if d < -self.hold:
                weight = smoothstep((d + self.approach) / (self.approach - self.hold))
            elif d > self.hold:
                weight = 1.0 - smoothstep((d - self.hold) / (self.leave - self.hold))
            else:
                weight = 1.0
            offset += weight * target
        return offset

    def act(self, x: float, y: float, yaw: float):
        """Command ``(v, w)`` for the robot at pose ``(x, y, yaw)``, as ``PurePursuit.act``."""
        track = self.course.track
        s = track.project(x, y, hint_s=self._last_s).s
        self._last_s = s
        for i, post in enumerate(self.course.obstacles):
            # The side is drawn when the robot itself comes within `approach` of the post;
            # until then the path keeps to the centerline, so the swerve starts at once.
            if -self.approach <= track.arc_delta(post.s, s) <= self.leave:
                self._side(i)
            else:
                self.chosen.pop(i, None)
        ahead = s + self.pursuit.lookahead
        target_x, target_y, _ = track.pose_at(ahead, self.lateral_at(ahead))
        return self.pursuit.toward(x, y, yaw, target_x, target_y)
