"""Fuzzing every message the task specs read through the conversion and assembly nodes use.

Generated LaserScan, Odometry, JointState and Image messages (non-finite, huge, empty,
mismatched lengths, joints named twice, stamps far in the past and future) go through
``reading_from_message`` and an ``ObservationAssembler`` exactly as a node feeds them. The
only outcomes allowed are an ``ObservationError`` (with a message) or a finite float32
observation of the task's size: nothing else may escape, and nothing non-finite may reach a
policy. Each target draws 500 messages (2000 generated inputs per run).
"""

from functools import lru_cache
import math

from hypothesis import given, settings, strategies as st
from nav_msgs.msg import Odometry
import numpy as np
import pytest
from sensor_msgs.msg import Image, JointState, LaserScan

from ilrl_ros.core.observation import (FutureStamp, ObservationAssembler, ObservationError,
                                       StaleObservation)
from ilrl_ros.core.spec import load_spec as load_spec_uncached
from ilrl_ros.messages import ns_to_stamp, reading_from_message

EXAMPLES = 500
NOW_NS = 1_000_000 * 1_000_000_000  # the node's clock: 1e6 s after the epoch

FLOAT32_MAX = float(np.finfo(np.float32).max)
# What a float64 message field can carry: everything, including the absurd.
any_double = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -0.0, 1e-300, 1e200, -1e200, 1e308, math.inf, -math.inf, math.nan]),
    st.floats(-10.0, 10.0))
# A float32 field (LaserScan ranges and angles) refuses values beyond float32 at assignment.
any_single = st.one_of(
    st.floats(width=32, allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, FLOAT32_MAX, -FLOAT32_MAX, math.inf, -math.inf, math.nan]),
    st.floats(0.0, 5.0, width=32))

# Stamps from long ago to far ahead of the node's clock, and the usual near-now ones.
stamp_ns = st.one_of(
    st.integers(0, 2**31 - 1).map(lambda s: s * 1_000_000_000),
    st.integers(-10_000_000_000, 10_000_000_000).map(lambda d: NOW_NS + d),
    st.integers(-200_000_000, 50_000_000).map(lambda d: NOW_NS + d))


load_spec = lru_cache(maxsize=None)(load_spec_uncached)


def stamped(msg, ns: int):
    msg.header.stamp = ns_to_stamp(ns)
    return msg


@st.composite
def laser_scans(draw):
    msg = LaserScan()
    n = draw(st.sampled_from([0, 1, 7, 360, 1000]))
    msg.angle_min = draw(st.one_of(st.just(-math.pi), any_single))
    msg.angle_increment = draw(st.one_of(st.just(2 * math.pi / max(n, 1)), any_single))
    msg.range_min = draw(st.one_of(st.just(0.12), any_single))
    msg.range_max = draw(st.one_of(st.just(3.5), any_single))
    base = draw(st.floats(0.0625, 5.0, width=32))
    ranges = [base] * n
    for _ in range(draw(st.integers(0, 5))):
        if n:
            ranges[draw(st.integers(0, n - 1))] = draw(any_single)
    msg.ranges = ranges
    return stamped(msg, draw(stamp_ns))


@st.composite
def odometries(draw):
    msg = Odometry()
    yaw = draw(st.floats(-math.pi, math.pi))
    p, q, t = msg.pose.pose.position, msg.pose.pose.orientation, msg.twist.twist
    p.x, p.y = draw(any_double), draw(any_double)
    q.z, q.w = math.sin(yaw / 2), math.cos(yaw / 2)
    if draw(st.booleans()):
        setattr(q, draw(st.sampled_from('xyzw')), draw(any_double))
    t.linear.x, t.linear.y, t.angular.z = draw(any_double), draw(any_double), draw(any_double)
    return stamped(msg, draw(stamp_ns))


@st.composite
def joint_states(draw):
    msg = JointState()
    names = draw(st.lists(st.sampled_from(['pendulum_joint', 'other', 'x']), max_size=4))
    if draw(st.booleans()):
        names = ['pendulum_joint'] + names
    msg.name = names
    count = draw(st.integers(0, 4)) if draw(st.booleans()) else len(names)
    msg.position = draw(st.lists(any_double, min_size=count, max_size=count))
    msg.velocity = draw(st.lists(any_double, min_size=0, max_size=5))
    msg.effort = draw(st.lists(any_double, min_size=0, max_size=5))
    return stamped(msg, draw(stamp_ns))


@st.composite
def images(draw):
    msg = Image()
    msg.encoding = draw(st.sampled_from(['mono8', 'rgb8', 'bgra8', 'mono16', '16UC1', '']))
    msg.height = draw(st.sampled_from([0, 1, 24, 48, 49]))
    msg.width = draw(st.sampled_from([0, 1, 32, 64]))
    channels = {'rgb8': 3, 'bgra8': 4, 'mono16': 2}.get(msg.encoding, 1)
    msg.step = draw(st.one_of(st.just(msg.width * channels), st.integers(0, 300)))
    size = draw(st.one_of(st.just(msg.step * msg.height), st.integers(0, 20000)))
    msg.data = bytes(draw(st.integers(0, 255)) for _ in range(min(size, 8))) * (size // 8) \
        + bytes(size % 8)
    msg.is_bigendian = draw(st.sampled_from([0, 1]))
    return stamped(msg, draw(stamp_ns))


def assemble(task: str, messages: dict):
    """Feed messages as a node does; return the observation, or the ObservationError."""
    spec = load_spec(task)
    assembler = ObservationAssembler(spec)
    try:
        for name, msg in messages.items():
            source = spec.sources[name]
            assembler.update(name, reading_from_message(source.kind, msg, name), NOW_NS)
        observation = assembler.latest(NOW_NS)
    except ObservationError as error:
        assert str(error), 'a refusal must say why'
        return error
    assert observation.vector.dtype == np.float32
    assert observation.vector.shape == (spec.observation.size,)
    assert np.all(np.isfinite(observation.vector)), observation.vector
    return observation


def good(task: str, name: str, ns: int = NOW_NS):
    """A well-formed message for the source, to pair with a fuzzed one."""
    spec = load_spec(task)
    kind = spec.sources[name].kind
    if kind == 'odometry':
        msg = Odometry()
        msg.pose.pose.orientation.w = 1.0
    elif kind == 'laser_scan':
        msg = LaserScan()
        msg.angle_min, msg.angle_increment = -math.pi, 2 * math.pi / 360
        msg.range_min, msg.range_max = 0.12, 3.5
        msg.ranges = [1.0] * 360
    else:
        msg = Image()
        msg.encoding, msg.height, msg.width, msg.step = 'mono8', 48, 64, 64
        msg.data = bytes(48 * 64)
    return stamped(msg, ns)


@settings(max_examples=EXAMPLES)
@given(scan=laser_scans())
def test_fuzzed_laser_scans_are_refused_or_finite(scan):
    assemble('track_follow', {'scan': scan, 'odom': good('track_follow', 'odom')})


@settings(max_examples=EXAMPLES)
@given(odom=odometries())
def test_fuzzed_odometry_is_refused_or_finite(odom):
    assemble('track_follow', {'scan': good('track_follow', 'scan'), 'odom': odom})


@settings(max_examples=EXAMPLES)
@given(joints=joint_states())
def test_fuzzed_joint_states_are_refused_or_finite(joints):
    assemble('pendulum', {'joint_states': joints})


@settings(max_examples=EXAMPLES)
@given(image=images())
def test_fuzzed_images_are_refused_or_finite(image):
    assemble('track_follow_camera', {'camera': image,
                                     'odom': good('track_follow_camera', 'odom')})


# The probes that killed nodes before, one by one, with the reason each is refused for.

def joint_state(position=0.1, names=('pendulum_joint',), ns=NOW_NS, positions=None):
    msg = JointState()
    msg.name = list(names)
    msg.position = positions if positions is not None else [position] * len(names)
    msg.velocity = [0.0] * len(msg.position)
    return stamped(msg, ns)


@pytest.mark.parametrize('message, reason', [
    (joint_state(math.inf), "joint 'pendulum_joint' position is inf"),
    (joint_state(1e200), 'position is 1e+200; expected a finite number within +/-1e+06'),
    (joint_state(names=('pendulum_joint', 'pendulum_joint'), positions=[0.1, 2.0]),
     "joints ['pendulum_joint'] more than once"),
    (joint_state(ns=NOW_NS + 3600 * 10**9), 'stamped 3600.000 s ahead'),
    (joint_state(ns=NOW_NS + 5 * 10**9), 'stamped 5.000 s ahead'),
])
def test_the_issue_probes_on_joint_states_are_refused_with_a_reason(message, reason):
    outcome = assemble('pendulum', {'joint_states': message})
    assert isinstance(outcome, ObservationError)
    assert reason in str(outcome)


def test_a_huge_quaternion_is_refused_not_an_overflow():
    odom = good('track_follow', 'odom')
    odom.pose.pose.orientation.z = 1e200
    outcome = assemble('track_follow', {'scan': good('track_follow', 'scan'), 'odom': odom})
    assert isinstance(outcome, ObservationError)
    assert 'beyond +/-1e+06' in str(outcome)


def test_a_future_stamp_never_becomes_the_newest_and_cannot_keep_an_input_fresh():
    spec = load_spec('pendulum')
    assembler = ObservationAssembler(spec)
    ahead = joint_state(ns=NOW_NS + 3600 * 10**9)
    with pytest.raises(FutureStamp):
        assembler.update('joint_states', reading_from_message('joint_state', ahead), NOW_NS)
    assert assembler.newest_stamp_ns() == -1
    # Within the tolerance a reading ahead is kept, but its arrival still ages it: once
    # nothing new has come for max_age_s, the input is stale whatever its stamp says.
    slightly = joint_state(ns=NOW_NS + 200_000_000)
    assembler.update('joint_states', reading_from_message('joint_state', slightly), NOW_NS)
    assert assembler.latest(NOW_NS + 100_000_000).vector.shape == (3,)
    late = NOW_NS + int(spec.observation.max_age_s * 1e9) + 1
    with pytest.raises(StaleObservation, match='nothing new'):
        assembler.latest(late)
    assert assembler.silent_for_ns(late) > spec.observation.max_age_s * 1e9
    # The normal feed, stamped by the clock, is taken again at once.
    fresh = joint_state(ns=late)
    assembler.update('joint_states', reading_from_message('joint_state', fresh), late)
    assert assembler.latest(late).stamp_ns == late
