"""track_obstacle: a post in the corridor that the lidar sees and the robot hits.

And the expert that passes it on a random side, and the checks on the posts a spec lists.
"""

import math

from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import yaml

from ilrl_ros.core.spec import load_spec, spec_from_yaml, SpecError, tasks_dir
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_ros.core.world import make_world
from ilrl_ros.core.world.obstacles import ObstacleCourse, parse_obstacles
from ilrl_ros.core.world.track_geometry import make_track, Track

# The oval's bottom straight runs along y = -1.2 in +x, with s = 0 at x = 0.
Y = -1.2


@pytest.fixture(scope='module')
def spec():
    return load_spec('track_obstacle')


def course(lateral=0.0, radius=0.1, s=0.3):
    track = make_track('oval')
    return ObstacleCourse(track, parse_obstacles(track, [{'s': s, 'lateral': lateral,
                                                          'radius': radius}], 0.105))


def test_the_task_builds_a_course_with_its_post(spec):
    world = make_world(spec)
    assert isinstance(world, ObstacleCourse) and len(world.obstacles) == 1
    post = world.obstacles[0]
    assert (post.s, post.lateral, post.radius) == (0.3, 0.0, 0.12)
    assert (post.x, post.y) == pytest.approx((0.3, Y), abs=1e-6)
    # Everything else is the track's: same length, same projection.
    assert world.length == make_track('oval').length
    assert isinstance(make_world(load_spec('track_follow')), Track)


def test_lidar_ranges_to_the_post_by_hand():
    world = course(lateral=0.06, radius=0.1)   # centre (0.3, -1.14)
    # From (-1, -1.2) facing +x the centre is 1.3 ahead and 0.06 to the left: the ray along
    # +x enters the circle at 1.3 - sqrt(0.1^2 - 0.06^2) = 1.3 - 0.08 = 1.22.
    ranges = world.raycast(-1.0, Y, 0.0, np.array([0.0, math.pi]), 3.5)
    assert ranges[0] == pytest.approx(1.22, abs=1e-9)
    # Backwards the post is not seen: the ray meets the corridor's far bend (or nothing).
    plain = make_track('oval').raycast(-1.0, Y, 0.0, np.array([math.pi]), 3.5)
    assert ranges[1] == plain[0]
    # From (0.45, -1.3) facing +y the ray passes 0.15 m from the centre, beyond the 0.1 m
    # radius: it misses the post and meets the wall as on the bare track.
    ray_up = world.raycast(0.45, -1.3, math.pi / 2, np.array([0.0]), 3.5)
    assert ray_up[0] == pytest.approx(make_track('oval').raycast(
        0.45, -1.3, math.pi / 2, np.array([0.0]), 3.5)[0])


def test_collisions_with_the_post():
    world = course(radius=0.1)                    # centre (0.3, -1.2)
    assert world.obstacle_clearance(0.0, Y) == pytest.approx(0.2)
    assert world.collides(0.1, Y, 0.105)          # 0.2 from the centre: 0.1 from its surface
    assert not world.collides(0.0, Y, 0.105)      # 0.3 from the centre
    assert not world.collides(0.3, Y + 0.3, 0.105)


def test_driving_into_the_post_ends_the_episode_as_a_collision(spec):
    env = make_env(spec)
    env.reset(seed=0, options={'pose': (-0.4, Y, 0.0)})
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated) and steps < 40:
        _, _, terminated, truncated, info = env.step(np.array([0.22, 0.0]))
        steps += 1
    assert terminated and info['outcome'] == 'failure'
    # The lidar ended it, with the post's surface within the 0.11 m threshold: from x = -0.4
    # to the surface at 0.3 - 0.12 = 0.18 less 0.11 is 0.47 m, 21.4 steps of 0.022 m.
    assert env.track.obstacle_clearance(*env.pose[:2]) < 0.115
    assert steps == 22


def test_random_starts_keep_clear_of_the_post(spec):
    world = make_world(spec)
    rng = np.random.default_rng(0)
    post = world.obstacles[0]
    for _ in range(200):
        x, y, _ = world.sample_start(rng, 0.1, 0.2)
        d = world.arc_delta(post.s, world.project(x, y).s)
        assert not -1.6 < d < 1.1


def pass_once(spec, seed):
    """Drive the expert past the post from 1.4 m before it; (side, closest approach)."""
    env, expert = make_env(spec), make_expert(spec, seed=seed)
    env.reset(seed=seed, options={'pose': (-1.1, Y, 0.0)})
    closest, side = math.inf, None
    for _ in range(110):
        action = expert.act(env.current_readings())
        _, _, terminated, _, info = env.step(action)
        assert not terminated
        closest = min(closest, env.track.obstacle_clearance(*env.pose[:2]))
        if side is None and env.pose[0] >= 0.3:
            side = 'left' if info['lateral'] > 0 else 'right'
    return side, closest, expert.controller.choices


def test_the_expert_passes_on_both_sides_across_seeds(spec):
    sides = []
    for seed in range(6):
        side, closest, choices = pass_once(spec, seed)
        sides.append(side)
        # One draw, and the side taken is the side drawn.
        assert len(choices) == 1 and side == ('left' if choices[0][1] > 0 else 'right')
        # The robot's edge (0.105 m) stays clear of the post.
        assert closest > 0.105 + 0.03
    assert set(sides) == {'left', 'right'}


def test_the_expert_can_be_told_a_side(spec):
    for side in ('left', 'right'):
        expert = make_expert(spec, side=side)
        assert expert.controller.side == side
    with pytest.raises(ValueError, match='side'):
        make_expert(spec, side='middle')


posts = st.fixed_dictionaries(
    {'s': st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=2)),
     'radius': st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.none())},
    optional={'lateral': st.floats(allow_nan=True, allow_infinity=True),
              'height': st.floats()})


def _sound(post) -> bool:
    try:
        s, radius = float(post['s']), float(post['radius'])
        lateral = float(post.get('lateral', 0.0))
    except (TypeError, ValueError):
        return False
    return 'height' not in post and all(map(math.isfinite, (s, radius, lateral))) \
        and isinstance(post['s'], float) and radius > 0.0 and abs(lateral) + radius < 0.5 \
        and max(0.5 - lateral - radius, 0.5 + lateral - radius) > 0.21


@settings(max_examples=60, deadline=None)
@given(post=posts)
def test_bad_posts_are_refused_with_their_reason(post):
    track = make_track('oval')
    if _sound(post):
        assert len(parse_obstacles(track, [post], 0.105)) == 1
        return
    with pytest.raises(ValueError, match=r'robot\.params\.obstacles\[0\]'):
        parse_obstacles(track, [post], 0.105)


@settings(max_examples=30, deadline=None)
@given(value=st.one_of(st.floats(allow_nan=True), st.just(float('nan')), st.none(),
                       st.text(max_size=3), st.just([{'s': 1.0}]),
                       st.just([{'s': 1.0, 'radius': -0.1}]),
                       st.just([{'s': float('nan'), 'radius': 0.1}]),
                       st.just([{'s': 1.0, 'radius': 0.1, 'lateral': 9.0}])))
def test_bad_obstacles_in_a_spec_are_refused(value):
    data = yaml.safe_load((tasks_dir() / 'track_obstacle.yaml').read_text())
    data['robot']['params']['obstacles'] = value
    with pytest.raises(SpecError, match='robot.params.obstacles'):
        spec_from_yaml(yaml.safe_dump(data))
