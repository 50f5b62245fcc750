"""Simulators built from task specs: Pendulum-v1 in lockstep, the corridor robot's episodes."""

import gymnasium as gym
import numpy as np
import pytest
import yaml

from ilrl_ros.core.spec import load_spec, parse_spec, tasks_dir
from ilrl_ros.core.tasks import make_env, make_expert


@pytest.fixture(scope='module')
def pendulum_spec():
    return load_spec('pendulum')


@pytest.fixture(scope='module')
def track_spec():
    return load_spec('track_follow')


@pytest.mark.parametrize('seed', [0, 1, 42])
def test_pendulum_matches_gymnasium_step_for_step(pendulum_spec, seed):
    ours = make_env(pendulum_spec)
    reference = gym.make('Pendulum-v1')
    obs, _ = ours.reset(seed=seed)
    expected, _ = reference.reset(seed=seed)
    np.testing.assert_array_equal(obs, expected)
    rng = np.random.default_rng(1000 + seed)
    # Torques up to 3 N m, so some lie outside the +-2 N m bounds and are clipped.
    torques = rng.uniform(-3.0, 3.0, size=(200, 1)).astype(np.float32)
    assert np.any(np.abs(torques) > 2.0) and np.any(np.abs(torques) < 2.0)
    for step, torque in enumerate(torques, start=1):
        obs, reward, terminated, truncated, info = ours.step(torque)
        expected, expected_reward, ref_terminated, ref_truncated, _ = reference.step(torque)
        assert obs.dtype == np.float32
        np.testing.assert_allclose(obs, expected, rtol=0, atol=1e-6, err_msg=f'step {step}')
        assert abs(reward - expected_reward) <= 1e-9, f'step {step}'
        assert not terminated and not ref_terminated
        # Pendulum-v1's time limit is 200 steps: truncated at step 200, not before.
        assert truncated == ref_truncated == (step == 200), f'step {step}'
    assert info['outcome'] in ('success', 'timeout')


def test_pendulum_reset_from_a_given_state(pendulum_spec):
    env = make_env(pendulum_spec)
    obs, _ = env.reset(options={'state': (0.0, 0.5)})
    # theta 0 is upright: cos 1, sin 0, and the speed.
    np.testing.assert_allclose(obs, [1.0, 0.0, 0.5], atol=1e-7)


def _noisy_track_spec():
    return _track_spec_with(scan_noise_std=0.02)


def test_track_follow_is_deterministic_under_a_seed():
    # With lidar noise, so that the seed has more to decide than the start pose.
    spec = _noisy_track_spec()
    first, second, other = make_env(spec), make_env(spec), make_env(spec)
    obs_a, _ = first.reset(seed=5)
    obs_b, _ = second.reset(seed=5)
    obs_c, _ = other.reset(seed=6)
    np.testing.assert_array_equal(obs_a, obs_b)
    assert not np.array_equal(obs_a, obs_c)
    actions = np.random.default_rng(0).uniform([0.0, -1.0], [0.22, 1.0], size=(40, 2))
    for action in actions:
        step_a = first.step(action)
        step_b = second.step(action)
        np.testing.assert_array_equal(step_a[0], step_b[0])
        assert step_a[1:4] == step_b[1:4]
        if step_a[2] or step_a[3]:
            break


def test_expert_completes_a_lap(track_spec):
    env = make_env(track_spec)
    expert = make_expert(track_spec)
    env.reset(seed=3)
    episode_return, steps = 0.0, 0
    while True:
        obs, reward, terminated, truncated, info = env.step(expert.act(env.readings()))
        episode_return += reward
        steps += 1
        if terminated or truncated:
            break
    assert info['outcome'] == 'success'
    assert terminated and not truncated
    assert not info['collided']
    length = env.track.length
    # 10 per metre along the centerline and -0.05 per step, no collision penalty: the lap
    # ends on the step that crosses the start, so it overshoots by at most one step's travel
    # (0.22 m/s * 0.1 s = 0.022 m, worth 0.22).
    assert info['progress_m'] >= length
    assert episode_return == pytest.approx(10.0 * info['progress_m'] - 0.05 * steps, abs=1e-6)
    assert 0.0 <= episode_return - (10.0 * length - 0.05 * steps) <= 10.0 * 0.022 + 1e-9
    # At most 0.22 m/s: a lap takes at least length / 0.022 steps.
    assert steps >= length / 0.022


def test_driving_straight_into_a_wall_fails(track_spec):
    env = make_env(track_spec)
    x, y, heading = env.track.pose_at(2.0)
    # Facing the left wall, 0.5 m away, at full speed.
    env.reset(seed=0, options={'pose': (x, y, heading + np.pi / 2)})
    steps, terminated, truncated = 0, False, False
    while not (terminated or truncated) and steps < 40:
        _, _, terminated, truncated, info = env.step([0.22, 0.0])
        steps += 1
    assert info['outcome'] == 'failure'
    assert terminated and not truncated
    assert info['reward_terms']['collision'] == -20.0
    # The wall is 0.5 m away and the collision range 0.11 m: about (0.5 - 0.11) / 0.022
    # = 17.7 steps, so the 18th step collides.
    assert steps == 18
    # The robot moved only sideways: no progress along the track.
    assert abs(info['progress_m']) < 0.01


def test_actions_are_clipped_to_the_spec_bounds(track_spec):
    env = make_env(track_spec)
    x, y, heading = env.track.pose_at(1.0)
    env.reset(options={'pose': (x, y, heading)})
    *_, info = env.step([5.0, 0.0])
    # 5 m/s is clipped to 0.22 m/s: 0.022 m of progress in 0.1 s.
    assert info['progress_m'] == pytest.approx(0.022, abs=1e-3)


def test_reset_keeps_stamps_increasing(track_spec):
    env = make_env(track_spec)
    _, info = env.reset(seed=0)
    stamps = [info['stamp_ns']]
    for _ in range(3):
        stamps.append(env.step([0.1, 0.0])[4]['stamp_ns'])
    _, info = env.reset(seed=0)
    stamps.append(info['stamp_ns'])
    stamps.append(env.step([0.1, 0.0])[4]['stamp_ns'])
    assert all(later > earlier for earlier, later in zip(stamps, stamps[1:]))
    # One control period (100 ms) apart, a reset included.
    assert set(np.diff(stamps)) == {100_000_000}
    readings = env.readings()
    assert {r.stamp_ns for r in readings.values()} == {stamps[-1]}


def _track_spec_with(**params):
    data = yaml.safe_load((tasks_dir() / 'track_follow.yaml').read_text())
    data['robot']['params'].update(params)
    return parse_spec(data)


def test_actuation_noise_moves_the_robot_off_the_commanded_velocity():
    # Wheel slip: odometry reports the executed velocity, the command plus noise of the
    # given standard deviation, drawn from the env's seeded generator.
    env = make_env(_track_spec_with(actuation_noise_std=[0.01, 0.3]))
    env.reset(seed=3)
    command = np.array([0.15, 0.0])
    executed = []
    for _ in range(400):
        _, _, terminated, truncated, _ = env.step(command)
        odom = env.current_readings()['odom']
        executed.append((odom.vx, odom.wz))
        if terminated or truncated:
            env.reset()
    error = np.array(executed) - command
    assert abs(error.mean(axis=0)).max() < 0.05
    np.testing.assert_allclose(error.std(axis=0), [0.01, 0.3], rtol=0.15)
    clean = make_env(_track_spec_with())
    clean.reset(seed=3)
    clean.step(command)
    odom = clean.current_readings()['odom']
    assert (odom.vx, odom.wz) == (0.15, 0.0)


def test_start_offsets_follow_the_params():
    env = make_env(_track_spec_with(start_max_lateral=0.3, start_max_heading_error=0.0))
    laterals = [abs(env.reset(seed=s)[1]['lateral']) for s in range(60)]
    assert max(laterals) > 0.2 and max(laterals) <= 0.3 + 1e-9
    with pytest.raises(ValueError, match='actuation_noise_std'):
        make_env(_track_spec_with(actuation_noise_std=[-0.1, 0.2]))
