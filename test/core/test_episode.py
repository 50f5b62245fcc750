"""Reward terms and termination conditions on hand-made readings, with hand-computed answers."""

import math

import numpy as np
import pytest
import yaml

from ilrl_ros.core.episode import FAILURE, SUCCESS, TIMEOUT
from ilrl_ros.core.episode.reward import RewardFunction
from ilrl_ros.core.episode.termination import Termination
from ilrl_ros.core.readings import JointReading, OdomReading, ScanReading
from ilrl_ros.core.spec import load_spec, parse_spec, tasks_dir
from ilrl_ros.core.world import make_world

SECOND = 1_000_000_000
T0 = 5 * SECOND
# The 'oval' track: straights of 3 m joined by half circles of radius 1.2 m; the bottom
# straight runs along y = -1.2 from x = -1.5 to 1.5, travelled in +x.
OVAL_LENGTH = 2 * 3.0 + 2 * math.pi * 1.2  # = 13.5398 m


def oval_spec(**reward_extra):
    raw = yaml.safe_load((tasks_dir() / 'track_follow.yaml').read_text())
    raw['robot']['params']['track'] = 'oval'
    if reward_extra:
        raw['reward'].append(reward_extra)
    return parse_spec(raw)


@pytest.fixture(scope='module')
def spec():
    return oval_spec()


@pytest.fixture(scope='module')
def world(spec):
    track = make_world(spec)
    assert track.name == 'oval'
    assert track.length == pytest.approx(OVAL_LENGTH, abs=1e-3)
    return track


def scan(closest=1.0, stamp_ns=0):
    """A 360-ray scan seeing 1 m everywhere except one ray at ``closest``."""
    ranges = np.full(360, 1.0)
    ranges[123] = closest
    return ScanReading(stamp_ns=stamp_ns, angle_min=-math.pi, angle_increment=math.pi / 180,
                       range_min=0.0, range_max=3.5, ranges=ranges)


def at(x, y, closest=1.0, stamp_ns=0):
    return {'scan': scan(closest, stamp_ns),
            'odom': OdomReading(stamp_ns=stamp_ns, x=x, y=y, yaw=0.0, vx=0.0, vy=0.0, wz=0.0)}


def test_track_progress_is_ten_times_the_arc_length(spec, world):
    reward = RewardFunction(spec, world)
    start = at(-0.5, -1.2)
    reward.reset(start)
    action = np.array([0.22, 0.0])
    after = at(0.3, -1.2)
    total, terms = reward.step(start, action, after)
    # 0.8 m along the straight, weight 10; living cost 0.05; no wall within 0.11 m.
    assert terms['track_progress'] == pytest.approx(8.0, abs=1e-9)
    assert terms['living_cost'] == -0.05
    assert terms['collision'] == 0.0
    assert total == pytest.approx(8.0 - 0.05, abs=1e-9)
    # 0.2 m back (the 0.05 m sideways offset does not count): -2.
    _, terms = reward.step(after, action, at(0.1, -1.15))
    assert terms['track_progress'] == pytest.approx(-2.0, abs=1e-9)


def test_track_progress_across_the_start_of_the_loop(spec, world):
    # From 0.1 m before s = 0 to 0.2 m after it: 0.3 m, not -(length - 0.3).
    reward = RewardFunction(spec, world)
    s0 = world.project(0.0, -1.2).s
    before = at(*world.pose_at(s0 - 0.1)[:2])
    reward.reset(before)
    _, terms = reward.step(before, np.zeros(2), at(*world.pose_at(s0 + 0.2)[:2]))
    assert terms['track_progress'] == pytest.approx(3.0, abs=1e-6)


def test_living_cost_every_step(spec, world):
    reward = RewardFunction(spec, world)
    readings = at(0.0, -1.2)
    reward.reset(readings)
    for _ in range(3):
        total, terms = reward.step(readings, np.zeros(2), readings)
        # Standing still: no progress, no collision, -0.05.
        assert total == pytest.approx(-0.05)


def test_collision_from_a_close_return(spec, world):
    reward = RewardFunction(spec, world)
    readings = at(0.0, -1.2)
    reward.reset(readings)
    action = np.zeros(2)
    # One ray at 0.10 m < threshold 0.11 m: weight 20 -> -20.
    assert reward.step(readings, action, at(0.0, -1.2, closest=0.10))[1]['collision'] == -20.0
    # Exactly at the threshold is not a collision.
    assert reward.step(readings, action, at(0.0, -1.2, closest=0.11))[1]['collision'] == 0.0
    # -inf (REP 117: closer than range_min) is a collision; +inf and NaN rays are not.
    assert reward.step(readings, action, at(0.0, -1.2, closest=-np.inf))[1]['collision'] == -20
    assert reward.step(readings, action, at(0.0, -1.2, closest=np.inf))[1]['collision'] == 0.0
    assert reward.step(readings, action, at(0.0, -1.2, closest=np.nan))[1]['collision'] == 0.0


def test_action_cost_term():
    spec = oval_spec(term='action_cost', weight=0.5)
    reward = RewardFunction(spec, make_world(spec))
    readings = at(0.0, -1.2)
    reward.reset(readings)
    # -0.5 * (0.2^2 + 1.5^2) = -0.5 * 2.29 = -1.145
    _, terms = reward.step(readings, np.array([0.2, 1.5]), readings)
    assert terms['action_cost'] == pytest.approx(-1.145)


def test_track_progress_needs_a_track(spec):
    with pytest.raises(ValueError, match='track_progress needs a track'):
        RewardFunction(spec, None)
    with pytest.raises(ValueError, match='lap_complete needs a track'):
        Termination(spec, None)


def joint(theta, theta_dot=0.0, stamp_ns=0, name='pendulum_joint'):
    return {'joint_states': JointReading(stamp_ns=stamp_ns, names=(name,),
                                         position=np.array([theta]),
                                         velocity=np.array([theta_dot]))}


@pytest.fixture(scope='module')
def pendulum():
    return load_spec('pendulum')


def test_pendulum_cost_is_scored_on_the_state_before_the_step(pendulum):
    reward = RewardFunction(pendulum)
    before = joint(0.5, -1.0)
    after = joint(3.0, 5.0)
    reward.reset(before)
    total, terms = reward.step(before, np.array([1.5]), after)
    # -(0.5^2 + 0.1 * (-1)^2 + 0.001 * 1.5^2) = -(0.25 + 0.1 + 0.00225) = -0.35225
    assert total == pytest.approx(-0.35225, abs=1e-12)
    assert terms == {'pendulum_cost': total}
    # The angle is wrapped: 2 pi - 0.5 is -0.5 from upright, also 0.25.
    total, _ = reward.step(joint(2 * math.pi - 0.5, -1.0), np.array([1.5]), after)
    assert total == pytest.approx(-0.35225, abs=1e-12)
    # Hanging down at rest, no torque: -(pi^2) = -9.8696
    total, _ = reward.step(joint(math.pi), np.array([0.0]), after)
    assert total == pytest.approx(-math.pi ** 2, abs=1e-12)


def test_pendulum_cost_refuses_a_missing_joint(pendulum):
    reward = RewardFunction(pendulum)
    with pytest.raises(ValueError, match="joint 'pendulum_joint' is not in the joint states"):
        reward.step(joint(0.0, name='other'), np.array([0.0]), joint(0.0))


def test_lap_complete_after_a_full_lap(spec, world):
    termination = Termination(spec, world)
    s0 = 2.0
    termination.reset(at(*world.pose_at(s0)[:2], stamp_ns=T0), T0)
    # 0.2 m per step along the centerline: 67 steps make 13.4 m < 13.54 m, 68 make 13.6 m.
    expected_steps = math.ceil(OVAL_LENGTH / 0.2)
    assert expected_steps == 68
    for k in range(1, expected_steps + 1):
        stamp = T0 + k * SECOND // 10
        outcome = termination.check(at(*world.pose_at(s0 + 0.2 * k)[:2], stamp_ns=stamp), stamp)
        assert outcome == (SUCCESS if k == expected_steps else None), f'step {k}'
    assert termination.progress_m() == pytest.approx(0.2 * expected_steps, abs=1e-6)


def test_collision_is_a_failure(spec, world):
    termination = Termination(spec, world)
    termination.reset(at(0.0, -1.2, stamp_ns=T0), T0)
    assert termination.check(at(0.0, -1.2, closest=0.2, stamp_ns=T0 + 1), T0 + 1) is None
    assert termination.check(at(0.0, -1.2, closest=0.1, stamp_ns=T0 + 2), T0 + 2) == FAILURE


def test_timeout_at_timeout_s(spec, world):
    termination = Termination(spec, world)
    termination.reset(at(0.0, -1.2, stamp_ns=T0), T0)
    # timeout_s is 150 s at 10 Hz: still going at 149.9 s, a timeout at 150 s.
    before = T0 + 1499 * SECOND // 10
    assert termination.check(at(0.0, -1.2, stamp_ns=before), before) is None
    assert termination.elapsed_s(before) == pytest.approx(149.9)
    end = T0 + 150 * SECOND
    assert termination.check(at(0.0, -1.2, stamp_ns=end), end) == TIMEOUT


def run_pendulum(pendulum, theta_at):
    """Outcomes of a 200-step pendulum episode whose angle at step k is theta_at(k)."""
    termination = Termination(pendulum)
    termination.reset(joint(theta_at(0), stamp_ns=T0), T0)
    outcomes = []
    for k in range(1, 201):
        stamp = T0 + k * SECOND // 20
        outcomes.append(termination.check(joint(theta_at(k), stamp_ns=stamp), stamp))
    return outcomes


@pytest.mark.parametrize('first_upright_step, theta, outcome', [
    (1, 0.05, SUCCESS),                    # near upright the whole episode
    (1, 2 * math.pi - 0.05, SUCCESS),      # the same angle, one turn further
    (160, 0.05, SUCCESS),                  # 8.00 s to 10.00 s: held exactly 2 s
    (161, 0.05, TIMEOUT),                  # 8.05 s to 10.00 s: 1.95 s < hold_s 2 s
    (1, 0.15, TIMEOUT),                    # outside the 0.1 rad tolerance
])
def test_pendulum_success_needs_joint_near_held_for_hold_s(pendulum, first_upright_step,
                                                           theta, outcome):
    outcomes = run_pendulum(pendulum,
                            lambda k: theta if k >= first_upright_step else math.pi)
    # timeout_s 10 at 20 Hz: nothing before step 200, then the outcome.
    assert outcomes[:-1] == [None] * 199
    assert outcomes[-1] == outcome


def test_pendulum_dropping_at_the_last_step_is_a_timeout(pendulum):
    outcomes = run_pendulum(pendulum, lambda k: 0.0 if k < 200 else 0.5)
    assert outcomes[-1] == TIMEOUT
