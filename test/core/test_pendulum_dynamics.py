"""Pendulum-v1 as pure functions: hand-computed steps and a lockstep run against gymnasium."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils import seeding

from ilrl_ros.core.world.pendulum_dynamics import (
    MAX_SPEED,
    angle_normalize,
    pendulum_cost,
    pendulum_observation,
    pendulum_step,
    sample_initial_state,
)


def test_upright_at_rest_stays_put():
    assert pendulum_step(0.0, 0.0, 0.0) == (0.0, 0.0)


def test_step_from_horizontal_by_hand():
    # theta_ddot = 15 sin(pi/2) + 3 * 1 = 18; speed 18 * 0.05 = 0.9; angle + 0.9 * 0.05.
    theta, theta_dot = pendulum_step(math.pi / 2, 0.0, 1.0)
    assert theta_dot == pytest.approx(0.9, abs=1e-15)
    assert theta == pytest.approx(math.pi / 2 + 0.045, abs=1e-15)


def test_torque_and_speed_are_clipped():
    assert pendulum_step(0.3, 0.5, 50.0) == pendulum_step(0.3, 0.5, 2.0)
    assert pendulum_step(0.3, 0.5, np.array([-7.0])) == pendulum_step(0.3, 0.5, -2.0)
    theta, theta_dot = pendulum_step(0.0, 7.99, 2.0)
    assert theta_dot == MAX_SPEED
    assert theta == pytest.approx(8 * 0.05)


def test_worst_cost_matches_the_documented_bound():
    # gymnasium documents the worst reward as -(pi^2 + 0.1 * 8^2 + 0.001 * 2^2).
    assert pendulum_cost(math.pi, 8.0, 5.0) == pytest.approx(16.2736044, abs=1e-7)
    assert pendulum_cost(2 * math.pi, 0.0, 0.0) == pytest.approx(0.0, abs=1e-24)


def test_angle_normalize_and_observation():
    assert angle_normalize(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    observation = pendulum_observation(math.pi / 2, -1.5)
    assert observation.dtype == np.float32
    np.testing.assert_allclose(observation, [0.0, 1.0, -1.5], atol=1e-7)


def test_multi_torque_action_is_refused():
    with pytest.raises(ValueError, match='one torque'):
        pendulum_step(0.0, 0.0, [1.0, 2.0])


@pytest.mark.parametrize('seed', [0, 1, 7, 42, 12345])
def test_lockstep_with_gymnasium(seed):
    env = gym.make('Pendulum-v1')
    observation, _ = env.reset(seed=seed)
    theta, theta_dot = sample_initial_state(seeding.np_random(seed)[0])
    np.testing.assert_array_equal(observation, pendulum_observation(theta, theta_dot))

    # Out-of-bound torques too, as float32 like the env's action space.
    torques = np.random.default_rng(seed).uniform(-4.0, 4.0, size=(200, 1)).astype(np.float32)
    for u in torques:
        observation, reward, _, _, _ = env.step(u)
        cost = pendulum_cost(theta, theta_dot, u)
        theta, theta_dot = pendulum_step(theta, theta_dot, u)
        np.testing.assert_allclose(observation, pendulum_observation(theta, theta_dot),
                                   rtol=0.0, atol=1e-12)
        assert -cost == pytest.approx(reward, rel=0.0, abs=1e-12)
    np.testing.assert_allclose(env.unwrapped.state, [theta, theta_dot], rtol=0.0, atol=1e-12)
    env.close()
