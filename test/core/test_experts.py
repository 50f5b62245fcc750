"""Experts: pure pursuit laps the default track; swing-up + LQR balances the real Pendulum-v1."""

import math

import gymnasium as gym
import numpy as np
import pytest

from ilrl_ros.core.experts.pendulum_swingup import SwingUpLQR, solve_discrete_riccati
from ilrl_ros.core.experts.pure_pursuit import PurePursuit
from ilrl_ros.core.world.pendulum_dynamics import angle_normalize
from ilrl_ros.core.world.track_geometry import (
    MAX_ANGULAR_SPEED,
    MAX_LINEAR_SPEED,
    ROBOT_RADIUS,
    diff_drive_step,
    make_track,
)

CONTROL_PERIOD = 0.1


def drive_one_lap(track, expert, start, time_limit):
    """Run the expert at 10 Hz until it has gone once round; report time and worst offset."""
    x, y, yaw = start
    s = track.project(x, y).s
    progress, elapsed, worst_lateral = 0.0, 0.0, 0.0
    while progress < track.length and elapsed < time_limit:
        v, w = expert.act(x, y, yaw)
        assert 0.0 <= v <= MAX_LINEAR_SPEED + 1e-12
        assert abs(w) <= MAX_ANGULAR_SPEED + 1e-12
        x, y, yaw = diff_drive_step(x, y, yaw, v, w, CONTROL_PERIOD)
        elapsed += CONTROL_PERIOD
        projection = track.project(x, y, hint_s=s)
        progress += track.arc_delta(s, projection.s)
        s = projection.s
        worst_lateral = max(worst_lateral, abs(projection.lateral))
        assert not track.collides(x, y, ROBOT_RADIUS, hint_s=s), (
            f'collided at ({x:.3f}, {y:.3f}) after {elapsed:.1f} s')
    return progress, elapsed, worst_lateral


def test_pure_pursuit_laps_the_default_track():
    track = make_track('default')
    rng = np.random.default_rng(2024)
    time_limit = 1.3 * track.length / MAX_LINEAR_SPEED
    laps = []
    for _ in range(10):
        start = track.sample_start(rng, max_lateral=0.1, max_heading_error=0.2)
        laps.append(drive_one_lap(track, PurePursuit(track), start, time_limit))
    progress, elapsed, worst_lateral = np.array(laps).T
    print(f'lap time {elapsed.max():.1f} s (ideal {track.length / MAX_LINEAR_SPEED:.1f} s), '
          f'max |lateral| {worst_lateral.max():.3f} m')
    assert np.all(progress >= track.length)
    assert np.all(elapsed <= time_limit)
    # Starts are up to 0.1 m off the centerline; the expert must not drift further out.
    assert worst_lateral.max() < 0.15


def test_pure_pursuit_recovers_from_facing_backwards():
    track = make_track('oval')
    expert = PurePursuit(track)
    # On the bottom straight facing -x, against the direction of travel: turn on the spot.
    v, w = expert.act(0.0, -1.2, math.pi)
    assert v == 0.0 and abs(w) == pytest.approx(MAX_ANGULAR_SPEED)
    # Centred and aligned on a straight: straight ahead at full speed.
    v, w = expert.act(-1.0, -1.2, 0.0)
    assert v == pytest.approx(MAX_LINEAR_SPEED) and w == pytest.approx(0.0, abs=1e-9)
    # Left of the centerline: steer right.
    assert expert.act(-1.0, -1.0, 0.0)[1] < 0.0


def test_riccati_scalar_known_answer():
    # x' = x + u, cost x^2 + u^2: P = 1 + P - P^2 / (1 + P) gives P^2 - P - 1 = 0.
    p, k = solve_discrete_riccati([[1.0]], [[1.0]], [[1.0]], [[1.0]])
    golden = (1.0 + math.sqrt(5.0)) / 2.0
    assert p[0, 0] == pytest.approx(golden, rel=1e-10)
    assert k[0, 0] == pytest.approx(golden / (1.0 + golden), rel=1e-10)


def test_swing_up_lqr_parts():
    expert = SwingUpLQR()
    assert expert.energy(0.0, 0.0) == 0.0
    assert expert.energy(math.pi, 0.0) == pytest.approx(-30.0)
    # Upright and still: nothing to do. Hanging and still: kick at full torque.
    assert expert.act(0.0, 0.0) == 0.0
    assert abs(expert.act(math.pi, 0.0)) == expert.max_torque
    assert expert.is_catching(0.1, 0.0) and not expert.is_catching(1.5, 0.0)
    # The closed loop of the linearised model is stable.
    a = np.array([[1.0 + 15.0 * 0.05**2, 0.05], [15.0 * 0.05, 1.0]])
    b = np.array([[3.0 * 0.05**2], [3.0 * 0.05]])
    closed = a - b @ expert.gain[None, :]
    assert np.max(np.abs(np.linalg.eigvals(closed))) < 1.0


def test_swing_up_lqr_balances_gymnasium_pendulum():
    env = gym.make('Pendulum-v1')
    expert = SwingUpLQR()
    returns = []
    for seed in range(20):
        env.reset(seed=seed)
        total, angles = 0.0, []
        for _ in range(200):
            theta, theta_dot = env.unwrapped.state
            _, reward, _, _, _ = env.step(np.array([expert.act(theta, theta_dot)],
                                                   dtype=np.float32))
            total += reward
            angles.append(angle_normalize(env.unwrapped.state[0]))
        returns.append(total)
        assert np.max(np.abs(angles[-50:])) < 0.1, f'seed {seed} did not end balanced'
    env.close()
    print(f'pendulum mean return {np.mean(returns):.1f} (worst {np.min(returns):.1f})')
    # A random policy scores about -1200.
    assert np.mean(returns) > -200.0
