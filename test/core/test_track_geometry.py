"""Track geometry: known answers on the stadium 'oval', properties of 'default', lidar rays."""

import math
import time

import numpy as np
import pytest

from ilrl_ros.core.world.track_geometry import (
    ROBOT_RADIUS,
    TRACK_NAMES,
    Track,
    diff_drive_step,
    make_track,
    wrap_angle,
)

# The oval: straights of 3 m at y = -1.2 (travelled +x) and y = +1.2, half circles of radius
# 1.2 m centred at (+-1.5, 0); s = 0 at (0, -1.2).
STRAIGHT, RADIUS = 3.0, 1.2
OVAL_LENGTH = 2 * STRAIGHT + 2 * math.pi * RADIUS


@pytest.fixture(scope='module')
def oval():
    return make_track('oval')


@pytest.fixture(scope='module')
def default():
    return make_track('default')


def test_registry(oval):
    assert set(TRACK_NAMES) >= {'default', 'oval'}
    with pytest.raises(ValueError, match="'default', 'oval'"):
        make_track('monza')
    assert oval.length == pytest.approx(OVAL_LENGTH, abs=1e-3)
    assert oval.min_radius == pytest.approx(RADIUS, rel=1e-3)
    assert oval.spacing == pytest.approx(0.01, rel=0.01)


def test_default_shape(default):
    assert 12.0 <= default.length <= 18.0
    assert default.min_radius >= 0.8
    # Both left (positive) and right (negative) turns, and curvature varies smoothly.
    assert default.curvature.max() > 0.5 and default.curvature.min() < -0.5
    assert np.max(np.abs(np.diff(default.curvature))) < 0.05
    # Evenly resampled, and the walls lie width/2 either side of the centerline.
    segment = np.hypot(*np.diff(default.points, axis=0).T)
    assert np.ptp(segment) < 1e-3 * default.spacing
    np.testing.assert_allclose(np.hypot(*(default.left_wall - default.points).T), 0.5)
    assert default.wall_segments.shape == (2 * len(default.points), 2, 2)


def test_track_is_immutable(default):
    with pytest.raises(AttributeError, match='immutable'):
        default.width = 2.0
    with pytest.raises(ValueError):
        default.points[0, 0] = 1.0


def test_clockwise_input_is_driven_counter_clockwise():
    angle = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    circle = np.column_stack([2 * np.cos(angle), 2 * np.sin(angle)])
    track = Track(circle[::-1], width=1.0)
    # Starting on the +x axis, counter-clockwise travel heads +y and the centre is on the left.
    assert track.pose_at(0.0)[2] == pytest.approx(math.pi / 2, abs=0.02)
    assert track.project(1.8, 0.0).lateral == pytest.approx(0.2, abs=1e-3)


def test_centerlines_that_would_cross_their_walls_are_refused():
    angle = np.linspace(0.0, 2 * np.pi, 400, endpoint=False)
    with pytest.raises(ValueError, match='radius'):
        Track(np.column_stack([0.4 * np.cos(angle), 0.4 * np.sin(angle)]), width=1.0)
    # A stadium with gentle bends (radius 0.6 m) whose straights pinch to 0.6 m apart in the
    # middle, less than the 1 m width.
    x = np.linspace(-3.0, 3.0, 3000)
    half_gap = 0.6 - 0.3 * np.exp(-x**2)
    bend = np.linspace(-np.pi / 2, np.pi / 2, 1000)[1:-1]
    pinched = np.vstack([
        np.column_stack([x, -half_gap]),
        np.column_stack([3.0 + 0.6 * np.cos(bend), 0.6 * np.sin(bend)]),
        np.column_stack([x[::-1], half_gap[::-1]]),
        np.column_stack([-3.0 - 0.6 * np.cos(bend), -0.6 * np.sin(bend)]),
    ])
    with pytest.raises(ValueError, match='comes back within 0.6'):
        Track(pinched, width=1.0)
    assert Track(pinched, width=0.5).min_radius == pytest.approx(0.6, rel=0.01)


def test_project_on_the_oval_by_hand(oval):
    start = oval.project(0.0, -1.2)
    assert start.s == pytest.approx(0.0, abs=1e-9)
    assert start.lateral == pytest.approx(0.0, abs=1e-9)
    assert start.heading == pytest.approx(0.0, abs=1e-9)
    # Just before the start is just before the end of the loop: s wraps, it does not go < 0.
    behind = oval.project(-0.05, -1.1)
    assert behind.s == pytest.approx(oval.length - 0.05, abs=1e-6)
    assert behind.lateral == pytest.approx(0.1, abs=1e-9)
    # Top straight, travelled -x: the outside (y > 1.2) is on the right.
    top = oval.project(0.5, 1.5)
    assert top.s == pytest.approx(1.5 + math.pi * RADIUS + 1.0, abs=1e-3)
    assert top.lateral == pytest.approx(-0.3, abs=1e-6)
    assert abs(top.heading) == pytest.approx(math.pi, abs=1e-6)
    assert top.distance == pytest.approx(0.3, abs=1e-6)
    # Middle of the right half circle, 0.2 m inside it.
    bend = oval.project(1.5 + 1.0, 0.0)
    assert bend.s == pytest.approx(1.5 + 0.5 * math.pi * RADIUS, abs=1e-3)
    assert bend.lateral == pytest.approx(0.2, abs=1e-4)
    assert bend.heading == pytest.approx(math.pi / 2, abs=1e-3)


def test_project_arrays_and_hints_agree(default):
    rng = np.random.default_rng(3)
    s = rng.uniform(0.0, default.length, 300)
    lateral = rng.uniform(-0.5, 0.5, 300)
    x, y, _ = default.pose_at(s, lateral)
    many = default.project(x, y)
    for i in range(len(s)):
        hinted = default.project(x[i], y[i], hint_s=s[i] + rng.uniform(-0.2, 0.2))
        wrong_hint = default.project(x[i], y[i], hint_s=s[i] + default.length / 2)
        assert hinted == wrong_hint
        assert hinted.s == pytest.approx(many.s[i], abs=1e-12)
        assert hinted.lateral == pytest.approx(many.lateral[i], abs=1e-12)
    # pose_at and project are inverses, up to the 1 cm polyline's discretisation.
    delta = [default.arc_delta(a, b) for a, b in zip(s, many.s)]
    assert np.max(np.abs(delta)) < 5e-3
    np.testing.assert_allclose(many.lateral, lateral, atol=1e-4)


def test_arc_delta_wraps(oval):
    length = oval.length
    assert oval.arc_delta(length - 0.1, 0.2) == pytest.approx(0.3)
    assert oval.arc_delta(0.2, length - 0.1) == pytest.approx(-0.3)
    assert oval.arc_delta(1.0, 1.0 + length / 2) == pytest.approx(length / 2)
    assert oval.arc_delta(1.0 + length / 2, 1.0) == pytest.approx(length / 2)


def test_pose_at_and_sample_start(oval):
    assert oval.pose_at(0.0, 0.3) == pytest.approx((0.0, -0.9, 0.0), abs=1e-9)
    assert oval.pose_at(oval.length + 1.0) == pytest.approx((1.0, -1.2, 0.0), abs=1e-9)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x, y, yaw = oval.sample_start(rng, max_lateral=0.1, max_heading_error=0.2)
        projection = oval.project(x, y)
        assert abs(projection.lateral) <= 0.1 + 1e-9
        assert abs(wrap_angle(yaw - projection.heading)) <= 0.2 + 1e-2
        assert -math.pi < yaw <= math.pi


def test_collides(oval):
    limit = 0.5 - ROBOT_RADIUS
    assert not oval.collides(0.0, -1.2 + limit - 0.01, ROBOT_RADIUS)
    assert oval.collides(0.0, -1.2 + limit + 0.01, ROBOT_RADIUS)
    assert oval.collides(0.0, -1.2 - limit - 0.01, ROBOT_RADIUS)
    assert oval.collides(0.0, 0.0, ROBOT_RADIUS)


def test_raycast_on_the_oval_by_hand(oval):
    angles = np.array([0.0, math.pi / 4, math.pi / 2, math.pi, -math.pi / 2, -3 * math.pi / 4])
    ranges = oval.raycast(0.0, -1.2, 0.0, angles, max_range=3.5)
    # Forward and back along y = -1.2 to the outer wall of a half circle: radius 1.7 about
    # (+-1.5, 0), so x = +-(1.5 + sqrt(1.7^2 - 1.2^2)).
    along = 1.5 + math.sqrt(1.7**2 - 1.2**2)
    half = 0.5
    expected = [along, half * math.sqrt(2), half, along, half, half * math.sqrt(2)]
    np.testing.assert_allclose(ranges, expected, atol=1e-3)
    # The same pose turned round, and out of range: +inf, not max_range (REP 117).
    turned = oval.raycast(0.0, -1.2, math.pi, np.array([0.0, math.pi / 2]), max_range=2.0)
    assert turned[0] == np.inf
    assert turned[1] == pytest.approx(0.5, abs=1e-9)


def _brute_force_ranges(track, x, y, yaw, angles, max_range):
    """Every ray against every wall segment."""
    direction = np.column_stack([np.cos(yaw + angles), np.sin(yaw + angles)])[:, None, :]
    start = track.wall_segments[None, :, 0, :] - np.array([x, y])
    vector = track.wall_segments[None, :, 1, :] - track.wall_segments[None, :, 0, :]

    def cross(a, b):
        return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]

    with np.errstate(divide='ignore', invalid='ignore'):
        denominator = cross(direction, vector)
        t = cross(start, vector) / denominator
        u = cross(start, direction) / denominator
    t = np.where((t >= 0) & (u >= 0) & (u <= 1), t, np.inf).min(axis=1)
    return np.where(t <= max_range, t, np.inf)


def test_raycast_matches_brute_force(default):
    rng = np.random.default_rng(5)
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    for _ in range(5):
        x, y, yaw = default.sample_start(rng, max_lateral=0.4, max_heading_error=math.pi)
        for max_range in (1.0, 3.5):
            expected = _brute_force_ranges(default, x, y, yaw, angles, max_range)
            ranges = default.raycast(x, y, yaw, angles, max_range)
            np.testing.assert_array_equal(np.isinf(ranges), np.isinf(expected))
            finite = np.isfinite(expected)
            np.testing.assert_allclose(ranges[finite], expected[finite], atol=1e-9)


def test_raycast_is_fast(default):
    angles = np.linspace(-math.pi, math.pi, 360, endpoint=False)
    x, y, yaw = default.pose_at(3.0, 0.1)
    default.raycast(x, y, yaw, angles, 3.5)
    started = time.perf_counter()
    for _ in range(50):
        default.raycast(x, y, yaw, angles, 3.5)
    # The brief asks for well under 2 ms; the margin absorbs a busy test machine.
    assert (time.perf_counter() - started) / 50 < 2e-3


def test_diff_drive_step_by_hand():
    assert diff_drive_step(1.0, 2.0, 0.0, 0.2, 0.0, 0.5) == pytest.approx((1.1, 2.0, 0.0))
    # A quarter circle of radius v / w = 1 from the origin heading +x ends at (1, 1), +y.
    end = diff_drive_step(0.0, 0.0, 0.0, math.pi / 2, math.pi / 2, 1.0)
    assert end == pytest.approx((1.0, 1.0, math.pi / 2), abs=1e-12)
    # Turning on the spot, and yaw wrapped into (-pi, pi].
    assert diff_drive_step(0.0, 0.0, 3.0, 0.0, 1.0, 1.0) == pytest.approx(
        (0.0, 0.0, 4.0 - 2 * math.pi))
    assert wrap_angle(-math.pi) == pytest.approx(math.pi)
    # Many small steps and one big one land in the same place (the integration is exact).
    x, y, yaw = 0.0, 0.0, 0.3
    for _ in range(100):
        x, y, yaw = diff_drive_step(x, y, yaw, 0.22, -1.3, 0.01)
    assert (x, y, yaw) == pytest.approx(diff_drive_step(0.0, 0.0, 0.3, 0.22, -1.3, 1.0),
                                        abs=1e-12)
