"""Safety while learning, in the core: the rate limit, the safe set, start states, resets.

``action.max_delta`` limits each action value's change per control tick (``limit_change``,
applied by the simulators); ``safety:`` is the safe set (``SafeSet``); ``reset:`` says what a
start state is (``StartCondition``), which a reset controller (``make_reset_controller``)
drives the robot back to. Every new spec key is either accepted or refused with an error
naming it.
"""

import copy
import math
import re

from hypothesis import given, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.episode.reset import StartCondition
from ilrl_ros.core.episode.safety import SafeSet
from ilrl_ros.core.networks import MLPPolicy
from ilrl_ros.core.readings import JointReading, OdomReading
from ilrl_ros.core.reset_controllers import (CheckpointReset, ExpertReset,
                                             make_reset_controller, PendulumRest)
from ilrl_ros.core.spec import contract_mismatch, load_spec, parse_spec, SpecError
from ilrl_ros.core.tasks import make_env
from ilrl_ros.core.world import make_world


def variant(task: str, **blocks) -> dict:
    """A bundled spec's mapping with top-level blocks replaced (None: removed)."""
    raw = copy.deepcopy(load_spec(task).raw)
    for key, value in blocks.items():
        if value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    return raw


def with_max_delta(task: str, max_delta) -> dict:
    raw = variant(task)
    raw['action']['max_delta'] = max_delta
    return raw


def joints(theta: float, theta_dot: float, stamp_ns: int = 0, name='pendulum_joint') -> dict:
    return {'joint_states': JointReading(stamp_ns=stamp_ns, names=(name,),
                                         position=np.array([theta]),
                                         velocity=np.array([theta_dot]))}


def odom(x: float, y: float, yaw: float = 0.0, vx: float = 0.0, wz: float = 0.0,
         stamp_ns: int = 0) -> dict:
    return {'odom': OdomReading(stamp_ns=stamp_ns, x=x, y=y, yaw=yaw, vx=vx, vy=0.0, wz=wz)}


# The rate limit ------------------------------------------------------------------------------

def test_limit_change_by_hand():
    action = parse_spec(with_max_delta('track_follow', [0.05, 0.5])).action
    np.testing.assert_array_equal(action.max_delta, [0.05, 0.5])
    # No previous command (an episode's first): no limit.
    np.testing.assert_array_equal(action.limit_change(None, [0.2, -2.0]), [0.2, -2.0])
    # Each value moves at most its own max_delta.
    np.testing.assert_allclose(action.limit_change([0.0, 0.0], [0.2, -2.0]), [0.05, -0.5])
    np.testing.assert_allclose(action.limit_change([0.1, 1.0], [0.0, 1.2]), [0.05, 1.2])
    # Within the limit the action passes exactly, not as previous + change.
    assert action.limit_change([0.1, 0.3], [0.13, 0.7]).tolist() == [0.13, 0.7]
    with pytest.raises(ValueError, match='the previous action has 1 values'):
        action.limit_change([0.0], [0.0, 0.0])
    with pytest.raises(ValueError, match='not finite'):
        action.limit_change([0.0, 0.0], [math.nan, 0.0])
    # One number is every field's limit; no max_delta, no limit.
    one = parse_spec(with_max_delta('track_follow', 0.1)).action
    np.testing.assert_array_equal(one.max_delta, [0.1, 0.1])
    plain = load_spec('track_follow').action
    assert plain.max_delta is None
    assert plain.limit_change([0.0, 0.0], [0.2, 2.0]).tolist() == [0.2, 2.0]


@given(st.data())
def test_limited_commands_stay_in_bounds_and_within_max_delta(data):
    action = parse_spec(with_max_delta('track_follow', [0.03, 0.4])).action
    bounds = st.tuples(*(st.floats(float(lo), float(hi)) for lo, hi in
                         zip(action.low, action.high)))
    previous = np.array(data.draw(bounds))
    wanted = np.array(data.draw(bounds))
    command = action.limit_change(previous, wanted)
    assert np.all(command >= action.low) and np.all(command <= action.high)
    assert np.all(np.abs(command - previous) <= action.max_delta * (1 + 1e-12))
    free = np.abs(wanted - previous) <= action.max_delta
    np.testing.assert_array_equal(command[free], wanted[free])
    # Repeated, the limit reaches any wanted command.
    for _ in range(40):
        previous = action.limit_change(previous, wanted)
    np.testing.assert_array_equal(previous, wanted)


def test_the_simulators_apply_the_rate_limit_and_a_reset_clears_it():
    env = make_env(parse_spec(with_max_delta('pendulum', 0.5)))
    env.reset(seed=0)
    env.step(np.array([2.0], dtype=np.float32))
    assert env.effort == 2.0                       # first command of the episode: no limit
    env.step(np.array([-2.0], dtype=np.float32))
    assert env.effort == 1.5
    env.step(np.array([-2.0], dtype=np.float32))
    assert env.effort == 1.0
    env.reset(seed=1)
    env.step(np.array([-2.0], dtype=np.float32))
    assert env.effort == -2.0
    track = make_env(parse_spec(with_max_delta('track_follow', [0.05, 1.0])))
    track.reset(seed=0)
    track.step([0.0, 0.0])
    for expected_v in (0.05, 0.1, 0.15, 0.2, 0.22):
        track.step([0.22, 2.84])
        assert track.velocity[0] == pytest.approx(expected_v)
    assert track.velocity[1] == pytest.approx(2.84)


def test_the_rate_limit_is_no_part_of_the_contract():
    limited = parse_spec(with_max_delta('pendulum', 0.5))
    assert contract_mismatch(load_spec('pendulum').contract(), limited.contract()) == ''


# Spec keys: accepted or refused by name --------------------------------------------------------

@pytest.mark.parametrize('task, blocks, message', [
    ('pendulum', {'safety': {}}, 'safety: expected joints, workspace or both'),
    ('pendulum', {'safety': None}, None),
    ('pendulum', {'safety': {'joints': [{'source': 'joint_states', 'joint': 'j'}]}},
     'safety.joints[0]: a joint limit needs position'),
    ('pendulum', {'safety': {'joints': [{'source': 'joint_states', 'joint': 'j',
                                         'position': [1.0, -1.0]}]}},
     'safety.joints[0].position: expected [low, high] with low <= high, got [1.0, -1.0]'),
    ('pendulum', {'safety': {'joints': [{'source': 'joint_states', 'joint': 'j',
                                         'max_velocity': 0}]}},
     'safety.joints[0].max_velocity: expected a number > 0 and at most 1e+09, got 0'),
    ('pendulum', {'safety': {'joints': [{'source': 'joint_states', 'joint': 'j',
                                         'max_velocity': 1, 'max_speed': 2}]}},
     'safety.joints[0]: unknown key(s) max_speed'),
    ('pendulum', {'safety': {'workspace': [{'source': 'joint_states', 'x': [0, 1]}]}},
     'safety.workspace[0].source: a workspace limit needs a source of kind odometry'),
    ('track_follow', {'safety': {'workspace': [{'source': 'odom', 'y': [0, math.inf]}]}},
     'safety.workspace[0].y[1]: expected a finite number'),
    ('track_follow', {'safety': {'workspace': [{'source': 'lidar', 'x': [0, 1]}]}},
     "safety.workspace[0].source: 'lidar' is not a declared source"),
    ('track_follow', {'safety': {'workspace': [{'source': 'odom', 'max_lateral': 2000}]}},
     'safety.workspace[0].max_lateral: expected a number > 0 and at most 1000 m'),
    ('pendulum', {'reset': {'joints': [{'source': 'joint_states', 'joint': 'j',
                                        'position': 3.1}]}},
     'reset.joints[0]: position given without tolerance'),
    ('pendulum', {'reset': {'joints': [{'source': 'joint_states', 'joint': 'j',
                                        'max_velocity': 0.1, 'wrap': 'yes'}]}},
     "reset.joints[0].wrap: expected true or false, got 'yes'"),
    ('pendulum', {'reset': {'hold_s': -1, 'joints': []}},
     'reset.hold_s: expected a number from 0 to 86400 s, got -1'),
    ('pendulum', {'reset': {'joints': []}}, 'reset: expected joints, poses or both'),
    ('track_follow', {'reset': {'poses': [{'source': 'odom', 'yaw': 0.0}]}},
     'reset.poses[0]: yaw given without yaw_tolerance'),
    ('track_follow', {'reset': {'poses': [{'source': 'odom', 'max_heading_error': 4}]}},
     'reset.poses[0].max_heading_error: expected a number > 0 and at most 3.14159 rad'),
    ('track_follow', {'reset': {'poses': [{'source': 'odom'}]}},
     'reset.poses[0]: a pose target needs x, y and tolerance'),
])
def test_new_blocks_are_refused_by_key_path(task, blocks, message):
    raw = variant(task, **blocks)
    if message is None:
        assert parse_spec(raw).safety is None
        return
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(raw)


@pytest.mark.parametrize('value, message', [
    (0, 'action.max_delta: expected numbers > 0'),
    (-0.1, 'action.max_delta: expected numbers from 0 to 1e+09, got -0.1'),
    ([0.1, 0.2, 0.3], 'action.max_delta: expected 1 or 2 numbers, got 3'),
    ('fast', "action.max_delta: expected a number or a list of numbers, got 'fast'"),
    (math.nan, 'action.max_delta: expected finite numbers'),
])
def test_a_bad_max_delta_is_refused_with_key_value_and_range(value, message):
    with pytest.raises(SpecError, match=re.escape(message)):
        parse_spec(with_max_delta('track_follow', value))


numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10, 10 ** 12),
                    st.sampled_from([0, 0.1, 1, 3.14, 1e9, 2e9, -1]))
anything = st.one_of(numbers, st.booleans(), st.none(), st.text(max_size=6),
                     st.sampled_from(['joint_states', 'odom', 'pendulum_joint', 'scan']),
                     st.lists(numbers, max_size=3))


def mostly(good):
    """Mostly a good value of a key, sometimes anything at all."""
    return st.integers(1, 10).flatmap(lambda n: anything if n == 10 else good)


pairs = st.lists(st.floats(-10.0, 10.0), min_size=2, max_size=2).map(sorted)
positive = st.floats(0.001, 100.0)
# A key no entry takes (a typo), now and then.
stray = mostly(st.just({})).map(lambda value: value if value == {} else {'max_speeed': value})


@st.composite
def entry(draw, source: str, groups: tuple, joint: bool):
    """One safety or reset entry: its source (and joint), then groups of keys given together."""
    out = {'source': draw(mostly(st.just(source)))}
    if joint:
        out['joint'] = draw(mostly(st.just('pendulum_joint')))
    for group in groups:
        if draw(st.booleans()):
            out.update({key: draw(mostly(good)) for key, good in group.items()})
    return {**out, **draw(stray)}


def blocks(source: str) -> dict:
    angle = st.floats(0.01, 3.0)
    return {
        'joint_limit': entry(source, ({'position': pairs}, {'max_velocity': positive}), True),
        'workspace_limit': entry(source, ({'x': pairs}, {'y': pairs},
                                          {'max_lateral': positive}), False),
        'joint_target': entry(source, (
            {'position': st.floats(-10.0, 10.0), 'tolerance': positive},
            {'wrap': st.booleans()}, {'max_velocity': positive}), True),
        'pose_target': entry(source, (
            {'x': st.floats(-10.0, 10.0), 'y': st.floats(-10.0, 10.0), 'tolerance': positive},
            {'yaw': st.floats(-3.0, 3.0), 'yaw_tolerance': angle},
            {'max_lateral': positive}, {'max_heading_error': angle}, {'max_speed': positive},
            {'max_turn_rate': positive}), False),
    }


@st.composite
def new_keys(draw):
    """A bundled spec with random action.max_delta, safety and reset blocks."""
    task = draw(st.sampled_from(['pendulum', 'track_follow']))
    raw = variant(task, safety=None, reset=None)
    source = 'joint_states' if task == 'pendulum' else 'odom'
    made = blocks(source)
    which = draw(st.sets(st.sampled_from(['max_delta', 'safety', 'reset']), min_size=1))
    if 'max_delta' in which:
        size = len(raw['action']['fields'])
        raw['action']['max_delta'] = draw(mostly(st.one_of(
            positive, st.lists(positive, min_size=size, max_size=size))))
    limits = 'joint_limit' if task == 'pendulum' else 'workspace_limit'
    targets = 'joint_target' if task == 'pendulum' else 'pose_target'
    if 'safety' in which:
        key = 'joints' if task == 'pendulum' else 'workspace'
        raw['safety'] = draw(mostly(st.fixed_dictionaries({
            key: mostly(st.lists(made[limits], min_size=1, max_size=2))})))
    if 'reset' in which:
        key = 'joints' if task == 'pendulum' else 'poses'
        raw['reset'] = draw(mostly(st.fixed_dictionaries({
            key: mostly(st.lists(made[targets], min_size=1, max_size=2))},
            optional={'hold_s': mostly(st.floats(0.0, 5.0))})))
    return raw, which


@given(new_keys())
def test_random_values_of_the_new_keys_are_accepted_or_refused_by_name(drawn):
    raw, which = drawn
    try:
        spec = parse_spec(raw)
    except SpecError as error:
        text = str(error)
        assert text.startswith('spec: ')
        assert any(text.startswith(f'spec: {key}') or text.startswith(f'spec: action.{key}')
                   for key in which), text
        return
    # Accepted: every number is finite and within its range, and the spec still round-trips.
    if spec.action.max_delta is not None:
        assert np.all(spec.action.max_delta > 0) and np.all(np.isfinite(spec.action.max_delta))
    for limit in spec.safety.joints + spec.safety.workspace if spec.safety else ():
        for pair in (getattr(limit, 'position', None), getattr(limit, 'x', None),
                     getattr(limit, 'y', None)):
            assert pair is None or (math.isfinite(pair[0]) and pair[0] <= pair[1])
    if spec.reset is not None:
        assert 0.0 <= spec.reset.hold_s <= 86400.0
        for target in spec.reset.joints:
            assert target.position is None or target.tolerance > 0
    assert parse_spec(copy.deepcopy(spec.raw)).raw == spec.raw


# The safe set ------------------------------------------------------------------------------

def test_joint_limits_name_the_limit_and_the_value():
    raw = variant('pendulum', safety={'joints': [
        {'source': 'joint_states', 'joint': 'pendulum_joint', 'position': [-4.0, 4.0],
         'max_velocity': 6.0}]})
    safe = SafeSet(parse_spec(raw))
    assert safe and safe.sources == ('joint_states',)
    assert safe.check(joints(3.9, -5.9)) is None
    assert safe.check(joints(4.5, 0.0)) == ("joint 'pendulum_joint' is at position 4.5, "
                                            'outside safety.joints[0].position [-4, 4]')
    assert safe.check(joints(0.0, -6.5)) == ("joint 'pendulum_joint' moves at -6.5 per "
                                             'second, faster than '
                                             'safety.joints[0].max_velocity 6')
    with pytest.raises(ValueError, match="joint 'pendulum_joint' is not in the joint states"):
        safe.check(joints(0.0, 0.0, name='other'))


def test_the_bundled_pendulum_limit_is_never_left_in_simulation():
    # Pendulum-v1 clips the speed at 8 rad/s: the bundled limit is a guard for real joints.
    spec = load_spec('pendulum')
    safe = SafeSet(spec)
    env = make_env(spec)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for _ in range(400):
        env.step(np.array([rng.choice([-2.0, 2.0])], dtype=np.float32))
        assert safe.check(env.current_readings()) is None
    assert safe.check(joints(0.0, 8.0)) is None and safe.check(joints(0.0, 8.01))


def test_workspace_box_and_track_corridor():
    raw = variant('track_follow', safety={'workspace': [
        {'source': 'odom', 'x': [-10.0, 10.0], 'y': [-1.0, 8.0], 'max_lateral': 0.3}]})
    spec = parse_spec(raw)
    track = make_world(spec)
    safe = SafeSet(spec, track)
    x, y, heading = track.pose_at(2.0, 0.0)
    assert safe.check(odom(x, y)) is None
    x, y, _ = track.pose_at(2.0, 0.29)
    assert safe.check(odom(x, y)) is None
    x, y, _ = track.pose_at(2.0, -0.35)
    assert safe.check(odom(x, y)).startswith("'odom' puts the robot 0.350 m from the track "
                                             'centerline, beyond safety.workspace[0].'
                                             'max_lateral 0.3 m')
    assert safe.check(odom(11.0, 0.0)) == ("'odom' puts the robot at x = 11.000 m, outside "
                                           'safety.workspace[0].x [-10, 10] m')
    assert safe.check(odom(0.0, -2.5)).startswith("'odom' puts the robot at y = -2.500 m")
    with pytest.raises(ValueError, match="max_lateral needs a track; the task's robot.sim"):
        SafeSet(spec, None)


def test_no_safety_block_no_limits():
    spec = parse_spec(variant('track_follow', safety=None))
    safe = SafeSet(spec, make_world(spec))
    assert not safe and safe.sources == ()
    assert safe.check({}) is None


# Start states ------------------------------------------------------------------------------

def test_the_pendulum_start_state_wraps_and_must_hold():
    condition = StartCondition(load_spec('pendulum'))   # hanging down, 0.5 s
    assert condition.sources == ('joint_states',)
    assert not condition.update(joints(1.0, 0.0, 0), 0)
    assert condition.unmet.startswith("joint 'pendulum_joint' is at 1, 2.142 from "
                                      'reset.joints[0].position 3.14159 (tolerance 0.1)')
    assert not condition.update(joints(3.1, 0.5, 1), 1)
    assert 'faster than reset.joints[0].max_velocity 0.2' in condition.unmet
    # Three turns further on is the same angle for a continuous joint.
    second = 1_000_000_000
    assert not condition.update(joints(3 * math.pi + 0.05, 0.1), 1 * second)
    assert condition.unmet == 'the start state has held 0.00 s of reset.hold_s 0.5 s'
    assert not condition.update(joints(3 * math.pi, 0.0), int(1.4 * second))
    assert condition.update(joints(-math.pi, 0.0), int(1.5 * second))
    # A break starts the hold again.
    assert not condition.update(joints(0.0, 0.0), int(1.6 * second))
    assert not condition.update(joints(math.pi, 0.0), int(1.7 * second))
    condition.reset()
    assert condition.unmet == 'no reading judged yet'


def test_pose_targets():
    raw = variant('track_follow', reset={'poses': [
        {'source': 'odom', 'x': 1.0, 'y': 2.0, 'tolerance': 0.2, 'yaw': 3.0,
         'yaw_tolerance': 0.3, 'max_speed': 0.05, 'max_turn_rate': 0.1}]})
    condition = StartCondition(parse_spec(raw))
    assert condition.missing(odom(1.1, 2.1, yaw=-3.1)) == ''
    assert condition.missing(odom(1.3, 2.0, yaw=3.0)).startswith('the robot is 0.300 m from '
                                                                 'reset.poses[0] (1, 2)')
    assert 'from reset.poses[0].yaw 3' in condition.missing(odom(1.0, 2.0, yaw=2.0))
    assert 'faster than reset.poses[0].max_speed' in condition.missing(
        odom(1.0, 2.0, yaw=3.0, vx=0.1))
    assert 'faster than reset.poses[0].max_turn_rate' in condition.missing(
        odom(1.0, 2.0, yaw=3.0, wz=-0.2))
    spec = load_spec('track_follow')     # on the centerline, along it
    track = make_world(spec)
    condition = StartCondition(spec, track)
    x, y, heading = track.pose_at(5.0, 0.05)
    assert condition.missing(odom(x, y, yaw=heading + 0.1)) == ''
    assert 'off the track direction' in condition.missing(odom(x, y, yaw=heading + 0.5))
    x, y, heading = track.pose_at(5.0, 0.2)
    assert 'beyond reset.poses[0].max_lateral 0.1 m' in condition.missing(odom(x, y, heading))
    with pytest.raises(ValueError, match='need a track'):
        StartCondition(spec, None)
    with pytest.raises(ValueError, match="task 'track_follow' has no reset block"):
        StartCondition(parse_spec(variant('track_follow', reset=None)), track)


# Reset controllers -------------------------------------------------------------------------

def drive_to_start(env, spec, controller, condition, safe, steps: int) -> int:
    """Run the controller on the simulator until the start state holds; the steps it took."""
    condition.reset()
    for step in range(steps):
        readings = env.current_readings()
        assert safe.check(readings) is None, safe.check(readings)
        if condition.update(readings, env.stamp_ns):
            return step
        env.step(controller.act(readings))
    raise AssertionError(f'no start state in {steps} steps: {condition.unmet}')


def test_pendulum_rest_brings_every_start_to_rest_hanging_down():
    spec = load_spec('pendulum')
    env = make_env(spec)
    controller = make_reset_controller(spec, 'pendulum_rest')
    assert isinstance(controller, PendulumRest) and controller.sources == ('joint_states',)
    condition, safe = StartCondition(spec), SafeSet(spec)
    starts = [{'state': (0.0, 0.0)}, {'state': (1e-6, 0.0)}, {'state': (0.5, 8.0)}]
    for seed, options in enumerate(starts + [None] * 12):
        env.reset(seed=seed, options=options)
        # 4 s of simulated time (80 steps at 20 Hz), the hold included.
        assert drive_to_start(env, spec, controller, condition, safe, 80) <= 80


def test_the_track_expert_brings_the_robot_back_from_a_crash_inside_the_corridor():
    spec = load_spec('track_follow')
    env = make_env(spec)
    controller = make_reset_controller(spec, 'expert')
    assert isinstance(controller, ExpertReset) and controller.sources == ('odom',)
    track = make_world(spec)
    condition, safe = StartCondition(spec, track), SafeSet(spec, track)
    for seed in range(6):
        env.reset(seed=seed)
        turn = (1.0 if seed % 2 else -1.0) * (0.3 + 0.2 * seed)
        for _ in range(300):
            if env.step([0.22, turn])[2]:
                break
        assert env.termination.spec.failure and abs(env._info(None, {})['lateral']) > 0.35
        drive_to_start(env, spec, controller, condition, safe, 200)


def test_a_checkpoint_as_reset_controller(tmp_path):
    spec = load_spec('pendulum')
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=(8,),
                       head='deterministic')
    with torch.no_grad():
        for parameter in policy.parameters():
            parameter.zero_()
    path = save_checkpoint(tmp_path / 'zero', policy, algorithm='test', spec=spec, config={},
                           provenance={})
    controller = make_reset_controller(spec, f'checkpoint:{path}')
    assert isinstance(controller, CheckpointReset)
    assert controller.sources == ('joint_states',)
    np.testing.assert_allclose(controller.act(joints(1.0, 0.0)), [0.0], atol=1e-6)
    with pytest.raises(ValueError, match="trained for task 'pendulum'"):
        make_reset_controller(load_spec('track_follow'), f'checkpoint:{path}')
    # With an action history the controller's own last actions follow the fields.
    raw = variant('pendulum')
    raw['observation']['action_history'] = 2
    spec = parse_spec(raw)
    policy = MLPPolicy(spec.observation.size, spec.action.size, hidden=(8,),
                       head='deterministic')
    path = save_checkpoint(tmp_path / 'history', policy, algorithm='test', spec=spec,
                           config={}, provenance={})
    controller = make_reset_controller(spec, f'checkpoint:{path}')
    first = controller.act(joints(1.0, 0.0))
    second = controller.act(joints(1.0, 0.0))
    np.testing.assert_allclose(controller.history.values(), np.r_[first, second], rtol=1e-6)
    controller.reset()
    assert not controller.history.values().any()


@pytest.mark.parametrize('task, name, message', [
    ('pendulum', 'teleport', "reset controller 'teleport' is not known; expected '', 'expert', "
                             "'checkpoint:<folder>' or one of pendulum_rest"),
    ('pendulum', 'checkpoint:', "expected 'checkpoint:<folder>'"),
    ('track_follow', 'pendulum_rest', "'pendulum_rest' drives a pendulum; the task's robot.sim "
                                      "is 'track_follow'"),
    ('pendulum', 'checkpoint:/nonexistent/folder', 'nonexistent'),
])
def test_unknown_or_unfit_reset_controllers_are_refused(task, name, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace(')', r'\)')):
        make_reset_controller(load_spec(task), name)
    assert make_reset_controller(load_spec(task), '') is None
