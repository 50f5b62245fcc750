"""Round posts standing in the corridor: a track with obstacles the lidar sees and the robot hits.

``ObstacleCourse`` wraps an immutable ``Track`` and answers everything a track answers (the
centerline, projections, arc lengths pass straight through); only what the posts change is
its own: lidar ranges (a ray stops at the nearer of a wall and a post), collisions and start
poses (never on or just before a post). ``make_world`` builds one when a task's
``robot.params.obstacles`` lists posts, so the simulator, the rewards, the episode manager
and the expert all see the same posts.
"""

import math
from typing import NamedTuple

import numpy as np

from ilrl_ros.core.world.track_geometry import Track, wrap_angle

MAX_OBSTACLES = 64
"""Posts one task may list (each costs a ray-circle test per lidar ray)."""


class Obstacle(NamedTuple):
    """A round post at arc length ``s`` and signed ``lateral`` offset (left positive)."""

    s: float
    """Arc length along the centerline in metres, in [0, track length)."""
    lateral: float
    """Offset of the post's centre from the centerline in metres, positive to the left."""
    radius: float
    """Radius of the post in metres."""
    x: float
    """World position of the centre in metres."""
    y: float
    """World position of the centre in metres."""


def _number(value, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not math.isfinite(value):
        raise ValueError(f'{name} must be a finite number, got {value!r}')
    return float(value)


def parse_obstacles(track: Track, items, robot_radius: float = 0.0) -> tuple:
    """Check the spec's ``obstacles`` list and place each post on ``track``.

    Each item is ``{s: metres along the centerline, lateral: metres left of it (default 0),
    radius: metres}``. A post must stand inside the corridor and leave a gap wider than the
    robot (``2 * robot_radius``) on at least one side, or no lap could be completed.

    :raises ValueError: Naming the item and what was expected.
    """
    where = 'robot.params.obstacles'
    if not isinstance(items, (list, tuple)) or len(items) > MAX_OBSTACLES:
        raise ValueError(f'{where} must be a list of at most {MAX_OBSTACLES} posts '
                         f'({{s, lateral, radius}}), got {items!r}')
    half = 0.5 * track.width
    posts = []
    for i, item in enumerate(items):
        name = f'{where}[{i}]'
        if not isinstance(item, dict) or not {'s', 'radius'} <= set(item) \
                or not set(item) <= {'s', 'lateral', 'radius'}:
            raise ValueError(f'{name} must be a mapping with s, radius and optionally lateral '
                             f'(metres), got {item!r}')
        s = _number(item['s'], f'{name}.s') % track.length
        lateral = _number(item.get('lateral', 0.0), f'{name}.lateral')
        radius = _number(item['radius'], f'{name}.radius')
        if radius <= 0.0:
            raise ValueError(f'{name}.radius must be positive, got {radius}')
        gap = half - abs(lateral) - radius
        wider = max(half - lateral - radius, half + lateral - radius)
        if gap <= 0.0 or wider <= 2.0 * robot_radius:
            raise ValueError(
                f'{name} (lateral {lateral} m, radius {radius} m) must stand inside the '
                f'{track.width} m corridor and leave a gap wider than the robot '
                f'({2.0 * robot_radius:.3f} m) on one side')
        x, y, _ = track.pose_at(s, lateral)
        posts.append(Obstacle(s, lateral, radius, float(x), float(y)))
    return tuple(posts)


class ObstacleCourse:
    """A ``Track`` with round posts; every other attribute is the track's own."""

    def __init__(self, track: Track, obstacles, start_clearance: tuple = (1.6, 1.1)):
        """
        Put the posts on the track.

        :param track: The corridor.
        :param obstacles: ``Obstacle`` posts (``parse_obstacles``).
        :param start_clearance: (before, after): random starts keep at least this many
            metres of arc before and after each post, so that an expert can always pass it.
        """
        self.track = track
        self.obstacles = tuple(obstacles)
        self.start_clearance = tuple(float(v) for v in start_clearance)
        self._centres = np.array([[o.x, o.y] for o in self.obstacles], dtype=float) \
            .reshape(-1, 2)
        self._radii = np.array([o.radius for o in self.obstacles], dtype=float)

    def __getattr__(self, name):
        # Only reached for what this class does not define: the track answers.
        if name == 'track':
            raise AttributeError(name)
        return getattr(self.track, name)

    def __repr__(self):
        return f'ObstacleCourse({self.track!r}, {len(self.obstacles)} posts)'

    def raycast(self, x, y, yaw, angles, max_range):
        """Ranges to the nearest wall or post along each robot-frame ray (see Track.raycast)."""
        ranges = self.track.raycast(x, y, yaw, angles, max_range)
        if not self.obstacles:
            return ranges
        shape = ranges.shape
        world = yaw + np.asarray(angles, dtype=float).reshape(-1)
        direction = np.stack([np.cos(world), np.sin(world)], axis=1)     # [R, 2]
        offset = self._centres - np.array([x, y], dtype=float)           # [P, 2]
        along = direction @ offset.T                                     # [R, P]
        # Squared distance from the centre to the ray's line, and half the chord inside.
        perpendicular2 = np.sum(offset ** 2, axis=1)[None, :] - along ** 2
        half_chord2 = self._radii[None, :] ** 2 - perpendicular2
        inside = np.sum(offset ** 2, axis=1) <= self._radii ** 2
        t = along - np.sqrt(np.maximum(half_chord2, 0.0))
        hit = (half_chord2 >= 0.0) & (t >= 0.0)
        t = np.where(inside[None, :], 0.0, np.where(hit, t, np.inf))
        nearest = t.min(axis=1)
        nearest[nearest > max_range] = np.inf
        return np.minimum(ranges.reshape(-1), nearest).reshape(shape)

    def obstacle_clearance(self, x, y) -> float:
        """Distance from ``(x, y)`` to the nearest post's surface (inf without posts)."""
        if not self.obstacles:
            return math.inf
        gaps = np.hypot(self._centres[:, 0] - x, self._centres[:, 1] - y) - self._radii
        return float(gaps.min())

    def collides(self, x, y, radius: float, hint_s=None) -> bool:
        """Whether a disc of ``radius`` metres at ``(x, y)`` touches a wall or a post."""
        return self.track.collides(x, y, radius, hint_s) \
            or self.obstacle_clearance(x, y) < radius

    def sample_start(self, rng: np.random.Generator, max_lateral: float = 0.1,
                     max_heading_error: float = 0.2):
        """Draw a start as ``Track.sample_start`` does, away from the posts (redrawn)."""
        before, after = self.start_clearance
        for _ in range(1000):
            x, y, yaw = self.track.sample_start(rng, max_lateral, max_heading_error)
            s = self.track.project(x, y).s
            if all(not -before < self.track.arc_delta(o.s, s) < after
                   for o in self.obstacles):
                return x, y, float(wrap_angle(yaw))
        raise ValueError(f'no start pose on {self!r} keeps {before} m before and {after} m '
                         'after every post; list fewer posts')
