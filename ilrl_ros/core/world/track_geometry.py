"""Geometry of the corridor a simulated differential-drive robot follows (the ALVINN road task).

A ``Track`` holds a closed centerline resampled at even arc length and the two walls offset
from it; it projects poses onto the road, casts lidar rays at the walls and samples starts.
Plain NumPy: the gymnasium environment and the ROS simulator are built on top of it.
"""

import math
from collections.abc import Callable
from functools import lru_cache
from typing import NamedTuple

import numpy as np

# TurtleBot3 Burger limits, so that a policy learnt here can drive the real robot.
MAX_LINEAR_SPEED = 0.22
MAX_ANGULAR_SPEED = 2.84
ROBOT_RADIUS = 0.105

# Rays whose direction is this close to a wall vertex count as pointing at both segments that
# meet there, so that floating-point rounding cannot let a ray slip through the joint.
_ANGLE_TOLERANCE = 1e-9
# Half-width, in metres of arc, of the centerline window searched around a projection hint.
_HINT_WINDOW = 1.0


class Projection(NamedTuple):
    """Where a point lies relative to the centerline."""

    s: float
    """Arc length of the closest centerline point, in [0, length)."""
    lateral: float
    """Signed offset from the centerline in metres, positive to the left of travel."""
    heading: float
    """Angle of the centerline tangent at ``s`` in radians, in (-pi, pi]."""
    distance: float
    """Unsigned distance from the point to the centerline in metres."""


def wrap_angle(angle):
    """Wrap an angle (or an array of them) in radians into (-pi, pi]."""
    return np.pi - np.mod(np.pi - angle, 2.0 * np.pi)


def diff_drive_step(x, y, yaw, v, w, dt):
    """
    Integrate unicycle kinematics exactly over one step of constant commands.

    With ``w != 0`` the robot drives an arc of radius ``v / w``; the chord form used here is
    exact for every ``w``, including 0, so there is no branch and no loss of precision as
    ``w`` goes to 0. Works on scalars and on arrays alike.

    :param x: Position in metres.
    :param y: Position in metres.
    :param yaw: Heading in radians.
    :param v: Linear speed in m/s.
    :param w: Angular speed in rad/s, counter-clockwise positive.
    :param dt: Step length in seconds.
    :return: ``(x, y, yaw)`` after the step, yaw wrapped into (-pi, pi].
    """
    turn = w * dt
    # sin(a + b) - sin(a) = 2 cos(a + b/2) sin(b/2), and np.sinc(z) = sin(pi z) / (pi z).
    chord = v * dt * np.sinc(turn / (2.0 * np.pi))
    mid_yaw = yaw + 0.5 * turn
    return x + chord * np.cos(mid_yaw), y + chord * np.sin(mid_yaw), wrap_angle(yaw + turn)


def _cross(a, b):
    """Z component of the cross product of stacked 2-D vectors."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def _expand_ranges(starts, counts):
    """Flatten the integer ranges ``[start, start + count)`` into (owner, value) pairs."""
    owners = np.repeat(np.arange(len(counts)), counts)
    firsts = np.repeat(np.cumsum(counts) - counts, counts)
    return owners, np.repeat(starts, counts) + (np.arange(owners.size) - firsts)


def _readonly(array):
    array = np.ascontiguousarray(array, dtype=float)
    array.setflags(write=False)
    return array


class Track:
    """
    A closed corridor of constant width around a centerline, driven counter-clockwise.

    The centerline is resampled at (nearly) even arc length; ``s`` increases in the direction
    of travel, which is made counter-clockwise whatever the orientation of the input. The walls
    are the centerline offset by ``width / 2`` to either side. A track never changes after it
    is built (its arrays are read-only), so one instance can be shared by many environments.

    Attributes: ``name``; ``width`` and ``length`` (centerline length) in metres; ``spacing``,
    the mean distance between centerline points; ``points``, ``tangents`` (unit) and
    ``normals`` (unit, pointing left), each ``(N, 2)``; ``s``, the arc length at each point,
    ``(N,)``; ``curvature``, signed (left turns positive) in 1/m, ``(N,)``; ``min_radius``,
    the tightest radius of curvature in metres; ``left_wall`` and ``right_wall``, ``(N, 2)``
    closed polylines; ``wall_segments``, ``(2N, 2, 2)`` as [segment, start/end, x/y], the left
    wall's segments first.
    """

    __slots__ = (
        '_hint_offsets',
        '_seg_lengths',
        '_seg_vectors',
        '_wall_ends',
        '_wall_half_lengths',
        '_wall_midpoints',
        '_wall_starts',
        '_x',
        '_y',
        'curvature',
        'left_wall',
        'length',
        'min_radius',
        'name',
        'normals',
        'points',
        'right_wall',
        's',
        'spacing',
        'tangents',
        'wall_segments',
        'width',
    )

    def __init__(self, centerline, width: float = 1.0, spacing: float = 0.01,
                 name: str = 'custom'):
        """
        Build a track from the vertices of a closed centerline.

        :param centerline: ``(M, 2)`` points in metres, in order along the loop; the closing
            segment back to the first point is implied (repeating the first point is allowed).
            Sample it more finely than ``spacing``: resampling keeps the input's corners, so a
            coarse polyline has its curvature concentrated at its vertices.
        :param width: Distance between the walls in metres.
        :param spacing: Target distance between resampled centerline points in metres.
        :param name: A label for messages and plots.
        :raises ValueError: If the centerline is malformed, or bends or folds so tightly that
            the walls would cross.
        """
        points = np.asarray(centerline, dtype=float)
        if points.ndim != 2 or points.shape[1] != 2 or len(points) < 3:
            raise ValueError(
                f'Track {name!r}: the centerline must be an (M, 2) array of at least 3 points, '
                f'got shape {points.shape}.')
        if not np.all(np.isfinite(points)):
            raise ValueError(f'Track {name!r}: the centerline contains NaN or infinite values.')
        if not (width > 0.0 and spacing > 0.0):
            raise ValueError(
                f'Track {name!r}: width and spacing must be positive, got width={width} and '
                f'spacing={spacing}.')
        if np.allclose(points[0], points[-1]):
            points = points[:-1]
        # Shoelace area: negative means the input runs clockwise, and travel must be CCW.
        area = 0.5 * np.sum(_cross(points, np.roll(points, -1, axis=0)))
        if area < 0.0:
            points = points[::-1]

        closed = np.vstack([points, points[:1]])
        chord = np.hypot(*np.diff(closed, axis=0).T)
        if np.any(chord == 0.0):
            points = points[chord > 0.0]
            closed = np.vstack([points, points[:1]])
            chord = np.hypot(*np.diff(closed, axis=0).T)
        cumulative = np.concatenate([[0.0], np.cumsum(chord)])
        count = max(math.ceil(cumulative[-1] / spacing), 3)
        targets = np.linspace(0.0, cumulative[-1], count, endpoint=False)
        points = np.column_stack([np.interp(targets, cumulative, closed[:, 0]),
                                  np.interp(targets, cumulative, closed[:, 1])])

        seg_vectors = np.roll(points, -1, axis=0) - points
        seg_lengths = np.hypot(*seg_vectors.T)
        s = np.concatenate([[0.0], np.cumsum(seg_lengths)[:-1]])
        length = float(np.sum(seg_lengths))
        central = np.roll(points, -1, axis=0) - np.roll(points, 1, axis=0)
        tangents = central / np.hypot(*central.T)[:, None]
        normals = np.column_stack([-tangents[:, 1], tangents[:, 0]])
        # Turning angle between the chords to the points about 5 cm behind and ahead, per
        # metre: one segment either side would read the small corners that resampling leaves
        # at the input's vertices as sharp bends.
        reach = max(1, round(0.05 / spacing))
        ahead = np.roll(points, -reach, axis=0) - points
        behind = points - np.roll(points, reach, axis=0)
        turn = wrap_angle(np.arctan2(ahead[:, 1], ahead[:, 0])
                          - np.arctan2(behind[:, 1], behind[:, 0]))
        curvature = turn / (0.5 * (np.hypot(*ahead.T) + np.hypot(*behind.T)))
        min_radius = float(1.0 / max(np.max(np.abs(curvature)), 1e-12))
        _check_clearance(name, points, s, length, width, curvature, min_radius)

        half = 0.5 * width
        left_wall = points + half * normals
        right_wall = points - half * normals
        starts = np.vstack([left_wall, right_wall])
        ends = np.vstack([np.roll(left_wall, -1, axis=0), np.roll(right_wall, -1, axis=0)])

        # Slots are filled through object.__setattr__ because __setattr__ refuses changes.
        init = object.__setattr__
        init(self, 'name', str(name))
        init(self, 'width', float(width))
        init(self, 'length', length)
        init(self, 'spacing', length / len(points))
        init(self, 'points', _readonly(points))
        init(self, 'tangents', _readonly(tangents))
        init(self, 'normals', _readonly(normals))
        init(self, 's', _readonly(s))
        init(self, 'curvature', _readonly(curvature))
        init(self, 'min_radius', min_radius)
        init(self, 'left_wall', _readonly(left_wall))
        init(self, 'right_wall', _readonly(right_wall))
        init(self, 'wall_segments', _readonly(np.stack([starts, ends], axis=1)))
        init(self, '_x', _readonly(points[:, 0]))
        init(self, '_y', _readonly(points[:, 1]))
        init(self, '_seg_vectors', _readonly(seg_vectors))
        init(self, '_seg_lengths', _readonly(seg_lengths))
        init(self, '_wall_starts', _readonly(starts))
        init(self, '_wall_ends', _readonly(ends))
        init(self, '_wall_midpoints', _readonly(0.5 * (starts + ends)))
        init(self, '_wall_half_lengths', _readonly(0.5 * np.hypot(*(ends - starts).T)))
        half_window = max(round(_HINT_WINDOW / self.spacing), 2)
        init(self, '_hint_offsets', np.arange(-half_window, half_window + 1))

    def __setattr__(self, key, value):
        raise AttributeError(
            f'Track is immutable (tried to set {key!r}); build a new one with make_track() '
            'or Track(...).')

    def __repr__(self):
        return (f'Track(name={self.name!r}, length={self.length:.3f} m, width={self.width} m, '
                f'min_radius={self.min_radius:.3f} m, points={len(self.points)})')

    # Projection and arc length.

    def project(self, x, y, hint_s=None) -> Projection:
        """
        Project a point onto the centerline polyline.

        :param x: Point x in metres; a scalar, or an array (then every field is an array).
        :param y: Point y in metres, same shape as ``x``.
        :param hint_s: Arc length near which the answer is expected (e.g. the last step's
            ``s``); only a window around it is searched, and the whole loop is searched
            whenever the windowed answer could be wrong. Used for scalar points only.
        :return: ``Projection(s, lateral, heading, distance)``.
        """
        if np.ndim(x) == 0 and np.ndim(y) == 0:
            x, y = float(x), float(y)
            return self._project_point(x, y, self._nearest_vertex(x, y, hint_s))
        xs, ys = np.broadcast_arrays(np.asarray(x, dtype=float), np.asarray(y, dtype=float))
        query = np.column_stack([xs.ravel(), ys.ravel()])
        vertex = np.empty(len(query), dtype=int)
        # Chunked so that the (points x vertices) distance table stays small.
        for first in range(0, len(query), 256):
            block = query[first:first + 256]
            d2 = ((block[:, 0, None] - self._x[None, :]) ** 2
                  + (block[:, 1, None] - self._y[None, :]) ** 2)
            vertex[first:first + 256] = np.argmin(d2, axis=1)
        s, lateral, heading, distance = self._refine(query, vertex)
        shape = xs.shape
        return Projection(s.reshape(shape), lateral.reshape(shape), heading.reshape(shape),
                          distance.reshape(shape))

    def _nearest_vertex(self, x, y, hint_s):
        if hint_s is not None and math.isfinite(hint_s):
            centre = int(math.fmod(hint_s, self.length) / self.spacing)
            window = np.mod(centre + self._hint_offsets, len(self.points))
            d2 = (self._x[window] - x) ** 2 + (self._y[window] - y) ** 2
            best = int(np.argmin(d2))
            # Inside the corridor the nearest footpoint is unique (Track checks the
            # clearance), so an interior minimum of the window is the global one.
            if 0 < best < len(window) - 1 and d2[best] <= (0.5 * self.width) ** 2:
                return int(window[best])
        return int(np.argmin((self._x - x) ** 2 + (self._y - y) ** 2))

    def _project_point(self, x, y, vertex):
        """Scalar twin of ``_refine``, in plain floats because NumPy calls cost more here."""
        count = len(self.points)
        best = None
        for segment in range(vertex - 2, vertex + 2):
            segment %= count
            ax, ay = self._x[segment], self._y[segment]
            vx, vy = self._seg_vectors[segment]
            u = ((x - ax) * vx + (y - ay) * vy) / self._seg_lengths[segment] ** 2
            u = min(max(u, 0.0), 1.0)
            fx, fy = ax + u * vx, ay + u * vy
            d2 = (x - fx) ** 2 + (y - fy) ** 2
            if best is None or d2 < best[0]:
                best = (d2, segment, u, fx, fy)
        d2, segment, u, fx, fy = best
        if u >= 1.0:
            segment, u = (segment + 1) % count, 0.0
        following = (segment + 1) % count
        tx, ty = (1.0 - u) * self.tangents[segment] + u * self.tangents[following]
        s = float(self.s[segment] + u * self._seg_lengths[segment])
        if s >= self.length:
            s -= self.length
        distance = math.sqrt(d2)
        side = math.copysign(1.0, tx * (y - fy) - ty * (x - fx))
        return Projection(s, side * distance if distance > 0.0 else 0.0, math.atan2(ty, tx),
                          distance)

    def _refine(self, query, vertex):
        """Closest point on the four segments around each nearest vertex."""
        count = len(self.points)
        segment = np.mod(vertex[:, None] + np.arange(-2, 2)[None, :], count)
        start = self.points[segment]
        vector = self._seg_vectors[segment]
        offset = query[:, None, :] - start
        u = np.clip(np.sum(offset * vector, axis=2) / self._seg_lengths[segment] ** 2, 0.0, 1.0)
        foot = start + u[..., None] * vector
        d2 = np.sum((query[:, None, :] - foot) ** 2, axis=2)
        pick = np.argmin(d2, axis=1)
        rows = np.arange(len(query))
        segment, u, foot = segment[rows, pick], u[rows, pick], foot[rows, pick]
        distance = np.sqrt(d2[rows, pick])
        # A foot at the end of a segment is the start of the next: report it there, so that
        # s stays in [0, length) and matches the scalar path.
        at_end = u >= 1.0
        segment = np.where(at_end, np.mod(segment + 1, count), segment)
        u = np.where(at_end, 0.0, u)

        s = self.s[segment] + u * self._seg_lengths[segment]
        s = np.where(s >= self.length, s - self.length, s)
        tangent = self._interpolated_tangent(segment, u)
        side = np.where(_cross(tangent, query - foot) < 0.0, -1.0, 1.0)
        return s, side * distance, np.arctan2(tangent[:, 1], tangent[:, 0]), distance

    def _interpolated_tangent(self, segment, u):
        # Blending the vertex tangents keeps heading continuous from one segment to the next.
        following = np.mod(segment + 1, len(self.points))
        tangent = ((1.0 - u)[:, None] * self.tangents[segment]
                   + u[:, None] * self.tangents[following])
        return tangent / np.hypot(*tangent.T)[:, None]

    def arc_delta(self, s_from, s_to) -> float:
        """Signed progress along the loop from ``s_from`` to ``s_to``, in (-L/2, L/2]."""
        delta = np.mod(s_to - s_from, self.length)
        return float(delta - self.length) if delta > 0.5 * self.length else float(delta)

    def pose_at(self, s, lateral=0.0):
        """
        Pose on the road at arc length ``s`` (any real; wrapped) and signed lateral offset.

        :return: ``(x, y, heading)``: the point ``lateral`` metres left of the centerline and
            the centerline tangent angle there. Scalars in, floats out; arrays broadcast.
        """
        if np.ndim(s) == 0 and np.ndim(lateral) == 0:
            return self._pose_at_point(float(s), float(lateral))
        s_arr, lateral_arr = np.broadcast_arrays(np.asarray(s, dtype=float),
                                                 np.asarray(lateral, dtype=float))
        s_flat = np.mod(s_arr.ravel(), self.length)
        segment = np.clip(np.searchsorted(self.s, s_flat, side='right') - 1,
                          0, len(self.points) - 1)
        u = np.clip((s_flat - self.s[segment]) / self._seg_lengths[segment], 0.0, 1.0)
        tangent = self._interpolated_tangent(segment, u)
        normal = np.column_stack([-tangent[:, 1], tangent[:, 0]])
        point = (self.points[segment] + u[:, None] * self._seg_vectors[segment]
                 + lateral_arr.ravel()[:, None] * normal)
        heading = np.arctan2(tangent[:, 1], tangent[:, 0])
        shape = s_arr.shape
        return point[:, 0].reshape(shape), point[:, 1].reshape(shape), heading.reshape(shape)

    def _pose_at_point(self, s, lateral):
        """Scalar twin of ``pose_at``, in plain floats because NumPy calls cost more here."""
        s %= self.length
        count = len(self.points)
        segment = min(max(int(np.searchsorted(self.s, s, side='right')) - 1, 0), count - 1)
        u = min(max((s - self.s[segment]) / self._seg_lengths[segment], 0.0), 1.0)
        tx, ty = (1.0 - u) * self.tangents[segment] + u * self.tangents[(segment + 1) % count]
        norm = math.hypot(tx, ty)
        vx, vy = self._seg_vectors[segment]
        x = self._x[segment] + u * vx - lateral * ty / norm
        y = self._y[segment] + u * vy + lateral * tx / norm
        return float(x), float(y), math.atan2(ty, tx)

    def sample_start(self, rng: np.random.Generator, max_lateral: float = 0.1,
                     max_heading_error: float = 0.2):
        """
        Draw a random start pose along the loop, roughly facing the direction of travel.

        Draws, in order, ``s`` uniform on the loop, the lateral offset uniform in
        ``[-max_lateral, max_lateral]`` and the heading error uniform in
        ``[-max_heading_error, max_heading_error]``.

        :return: ``(x, y, yaw)`` with yaw in (-pi, pi].
        """
        if max_lateral < 0.0 or max_lateral >= 0.5 * self.width:
            raise ValueError(
                f'max_lateral={max_lateral} m puts starts outside the {self.width} m corridor; '
                f'use a value in [0, {0.5 * self.width}).')
        s = rng.uniform(0.0, self.length)
        lateral = rng.uniform(-max_lateral, max_lateral)
        heading_error = rng.uniform(-max_heading_error, max_heading_error)
        x, y, heading = self.pose_at(s, lateral)
        return x, y, float(wrap_angle(heading + heading_error))

    def collides(self, x, y, radius: float, hint_s=None) -> bool:
        """Whether a disc of ``radius`` metres at ``(x, y)`` touches or crosses a wall."""
        return abs(self.project(x, y, hint_s).lateral) > 0.5 * self.width - radius

    # Lidar.

    def raycast(self, x, y, yaw, angles, max_range):
        """
        Ranges from ``(x, y)`` to the nearest wall along each robot-frame ray.

        Only wall segments within ``max_range`` are considered, and each ray is intersected
        only with the segments whose angular extent, seen from the robot, contains it, so the
        cost grows with the number of wall crossings instead of rays times segments.

        :param yaw: Robot heading in radians; ray angles are relative to it (CCW positive).
        :param angles: Ray angles in radians, any shape.
        :param max_range: Longest range reported in metres.
        :return: Float array shaped like ``angles``; ``np.inf`` where nothing lies within
            ``max_range`` (REP 117: +inf means no return within range).
        """
        angles = np.asarray(angles, dtype=float)
        if not max_range > 0.0:
            raise ValueError(f'max_range must be positive, got {max_range}.')
        origin = np.array([x, y], dtype=float)
        ranges = np.full(angles.size, np.inf)
        if angles.size == 0:
            return ranges.reshape(angles.shape)

        midpoint_gap = np.hypot(*(self._wall_midpoints - origin).T)
        near = np.flatnonzero(midpoint_gap <= max_range + self._wall_half_lengths)
        if near.size == 0:
            return ranges.reshape(angles.shape)
        start = self._wall_starts[near] - origin
        vector = self._wall_ends[near] - self._wall_starts[near]
        start_angle = np.arctan2(start[:, 1], start[:, 0])
        end = start + vector
        sweep = wrap_angle(np.arctan2(end[:, 1], end[:, 0]) - start_angle)
        low = np.mod(np.where(sweep >= 0.0, start_angle, start_angle + sweep)
                     - _ANGLE_TOLERANCE, 2.0 * np.pi)
        high = low + np.abs(sweep) + 2.0 * _ANGLE_TOLERANCE

        ray_world = np.mod(yaw + angles.ravel(), 2.0 * np.pi)
        order = np.argsort(ray_world)
        sorted_rays = ray_world[order]
        first = np.searchsorted(sorted_rays, low, side='left')
        last = np.searchsorted(sorted_rays, high, side='right')
        # An extent that runs past 2 pi continues from angle 0.
        wrapped = np.searchsorted(sorted_rays, high - 2.0 * np.pi, side='right')
        owner_a, position_a = _expand_ranges(first, last - first)
        owner_b, position_b = _expand_ranges(np.zeros_like(wrapped), wrapped)
        owner = np.concatenate([owner_a, owner_b])
        ray = order[np.concatenate([position_a, position_b])]
        if ray.size == 0:
            return ranges.reshape(angles.shape)

        direction = np.column_stack([np.cos(ray_world[ray]), np.sin(ray_world[ray])])
        start, vector = start[owner], vector[owner]
        denominator = _cross(direction, vector)
        parallel = np.abs(denominator) < 1e-12
        denominator = np.where(parallel, 1.0, denominator)
        t = _cross(start, vector) / denominator
        u = _cross(start, direction) / denominator
        hit = ~parallel & (t >= 0.0) & (u >= -1e-9) & (u <= 1.0 + 1e-9)
        np.minimum.at(ranges, ray[hit], t[hit])
        ranges[ranges > max_range] = np.inf
        return ranges.reshape(angles.shape)


def _check_clearance(name, points, s, length, width, curvature, min_radius):
    """Refuse centerlines whose walls would cross, with a message that says where."""
    half = 0.5 * width
    if min_radius <= half:
        worst = int(np.argmax(np.abs(curvature)))
        raise ValueError(
            f'Track {name!r} bends with a radius of {min_radius:.3f} m at s={s[worst]:.2f} m, '
            f'tighter than half its {width} m width, so its inner wall would fold over; '
            'smooth that bend or make the corridor narrower.')
    # Away from its own neighbourhood (where a bend of radius >= width/2 cannot bring it back
    # within one width), the centerline must stay more than a width from itself.
    stride = max(1, int(len(points) * (0.1 * width) / length))
    sub, sub_s = points[::stride], s[::stride]
    gap = np.hypot(*(sub[:, None, :] - sub[None, :, :]).transpose(2, 0, 1))
    arc = np.abs(sub_s[:, None] - sub_s[None, :])
    arc = np.minimum(arc, length - arc)
    close = (arc > 0.5 * np.pi * width) & (gap <= width)
    if np.any(close):
        i, j = np.unravel_index(np.argmin(np.where(close, gap, np.inf)), gap.shape)
        raise ValueError(
            f'Track {name!r} comes back within {gap[i, j]:.3f} m of itself (s={sub_s[i]:.2f} m '
            f'and s={sub_s[j]:.2f} m), less than its {width} m width, so its walls would '
            'overlap; move those parts apart or make the corridor narrower.')


def _trefoil_centerline(samples: int = 20000):
    """Three lobes with three gentle right-hand dents between them; about 15 m around."""
    phi = np.linspace(0.0, 2.0 * np.pi, samples, endpoint=False)
    # The sin(2 phi) term makes the lobes unequal, so the task is not symmetric.
    radius = 2.2 * (1.0 + 0.2 * np.cos(3.0 * phi) + 0.05 * np.sin(2.0 * phi))
    return np.column_stack([radius * np.cos(phi), radius * np.sin(phi)])


def _oval_centerline(straight: float = 3.0, radius: float = 1.2, spacing: float = 0.002):
    """
    A stadium: two straights of ``straight`` metres joined by half circles of ``radius``.

    Starts at the middle of the bottom straight, ``(0, -radius)``, heading +x.
    """
    half = 0.5 * straight
    arc = np.pi * radius
    total = 2.0 * straight + 2.0 * arc
    s = np.arange(0.0, total, spacing)
    # Pieces in travel order, measured from (0, -radius).
    bounds = np.cumsum([half, arc, straight, arc])
    x = np.empty_like(s)
    y = np.empty_like(s)
    piece = np.searchsorted(bounds, s, side='right')
    bottom = (piece == 0) | (piece == 4)
    x[bottom] = np.where(piece[bottom] == 0, s[bottom], s[bottom] - total)
    y[bottom] = -radius
    for index, centre_x, start_angle in ((1, half, -0.5 * np.pi), (3, -half, 0.5 * np.pi)):
        mask = piece == index
        angle = start_angle + (s[mask] - np.concatenate([[0.0], bounds])[index]) / radius
        x[mask] = centre_x + radius * np.cos(angle)
        y[mask] = radius * np.sin(angle)
    top = piece == 2
    x[top] = half - (s[top] - bounds[1])
    y[top] = radius
    return np.column_stack([x, y])


_TRACKS: dict[str, Callable[[], np.ndarray]] = {
    'default': _trefoil_centerline,
    'oval': _oval_centerline,
}
TRACK_NAMES = tuple(_TRACKS)


@lru_cache(maxsize=16)
def make_track(name: str = 'default', width: float = 1.0) -> Track:
    """
    Build one of the named tracks (cached: tracks are immutable, so sharing is safe).

    ``'default'``: a three-lobed loop of about 15 m with left and right turns, tightest radius
    about 1 m. ``'oval'``: a 3 m x 1.2 m-radius stadium, about 13.5 m, for tests.

    :raises ValueError: For an unknown name.
    """
    if name not in _TRACKS:
        known = ', '.join(repr(known_name) for known_name in _TRACKS)
        raise ValueError(f'Unknown track {name!r}; the known tracks are {known}.')
    return Track(_TRACKS[name](), width=width, name=name)
