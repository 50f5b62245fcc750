"""The lectures' 4x3 gridworld (living reward -0.03), with answers worked out by hand.

Its solvers, Q-learning's table sampler, the replayed trajectory and the gymnasium
registration.
"""

import gymnasium as gym
from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.algorithms import policy_iteration, q_learning, value_iteration
from ilrl_ros.core.envs.gridworld import (GridworldConfig, GridworldEnv, GYMNASIUM_ID,
                                          make_gridworld, trajectory)

ACTION = {'N': 0, 'E': 1, 'S': 2, 'W': 3}
# At -0.03 the optimal policy is AIMA's fig. 17.2 (a) one, as at -0.04.
POLICY = {(1, 3): 'E', (2, 3): 'E', (3, 3): 'E', (1, 2): 'N', (3, 2): 'N',
          (1, 1): 'N', (2, 1): 'W', (3, 1): 'W', (4, 1): 'W'}


@pytest.fixture(scope='module')
def world():
    return make_gridworld(GridworldConfig())


@pytest.fixture(scope='module')
def optimal(world):
    return value_iteration.solve(world.mdp)


def _policy_by_cell(world, policy):
    return {world.cells[s]: 'NESW'[policy[s]] for s in np.flatnonzero(~world.mdp.terminal)}


def test_the_default_is_the_lectures_setting():
    config = GridworldConfig()
    assert (config.living_reward, config.noise, config.gamma) == (-0.03, 0.2, 1.0)
    assert config.terminals == {(4, 3): 1.0, (4, 2): -1.0} and config.walls == ((2, 2),)


def test_values_satisfy_the_bellman_equations_written_out_by_hand(world, optimal):
    """Each cell's equation from the picture of the grid, with the optimal action."""
    U = {cell: u for cell, u in zip(world.cells, world.utilities(optimal.values))}
    r = -0.03
    # (3, 3) east: 0.8 into +1, 0.1 north into the edge (stays), 0.1 south to (3, 2).
    assert U[3, 3] == pytest.approx(r + 0.8 * 1.0 + 0.1 * U[3, 3] + 0.1 * U[3, 2], abs=1e-9)
    # (3, 2) north: 0.8 to (3, 3), 0.1 east into -1, 0.1 west into the wall (stays).
    assert U[3, 2] == pytest.approx(r + 0.8 * U[3, 3] - 0.1 + 0.1 * U[3, 2], abs=1e-9)
    # (4, 1) west: 0.8 to (3, 1), 0.1 north into -1, 0.1 south into the edge (stays).
    assert U[4, 1] == pytest.approx(r + 0.8 * U[3, 1] - 0.1 + 0.1 * U[4, 1], abs=1e-9)
    # (1, 1) north: 0.8 to (1, 2), 0.1 west into the edge, 0.1 east to (2, 1).
    assert U[1, 1] == pytest.approx(r + 0.8 * U[1, 2] + 0.1 * U[1, 1] + 0.1 * U[2, 1],
                                    abs=1e-9)
    # The two near ties the learner has to resolve, by hand from the same picture:
    # (3, 2) west: 0.8 into the wall (stays), 0.1 north to (3, 3), 0.1 south to (3, 1).
    west = r + 0.8 * U[3, 2] + 0.1 * U[3, 3] + 0.1 * U[3, 1]
    assert 0.0 < U[3, 2] - west < 0.01
    # (4, 1) south: 0.9 stays (edge, and east into the edge), 0.1 west to (3, 1).
    south = r + 0.9 * U[4, 1] + 0.1 * U[3, 1]
    assert 0.0 < U[4, 1] - south < 0.01
    expected = {(1, 3): 0.852, (2, 3): 0.894, (3, 3): 0.932, (1, 2): 0.814, (3, 2): 0.684,
                (1, 1): 0.772, (2, 1): 0.735, (3, 1): 0.696, (4, 1): 0.474}
    for cell, value in expected.items():
        assert U[cell] == pytest.approx(value, abs=5e-4), cell
    assert _policy_by_cell(world, optimal.policy) == POLICY


def test_policy_iteration_agrees_with_value_iteration(world, optimal):
    result = policy_iteration.solve(world.mdp)
    assert result.converged
    np.testing.assert_allclose(result.values, optimal.values, atol=1e-8)
    assert _policy_by_cell(world, result.policy) == POLICY


def test_the_table_sampler_draws_as_the_tables_say(world):
    sampler = q_learning.TableSampler(world.mdp, max_steps=100)
    mdp, s = world.mdp, world.state((3, 2))
    sampler.reset(seed=1)
    n = 4000
    counts = np.zeros(mdp.n_states)
    for _ in range(n):
        sampler._state, sampler._steps = s, 0
        nxt, reward, terminated, truncated = sampler.step(ACTION['N'])
        counts[nxt] += 1
        assert reward == mdp.R[s, ACTION['N'], nxt] and terminated == mdp.terminal[nxt]
        assert not truncated
    p = mdp.P[s, ACTION['N']]
    assert np.all(np.abs(counts / n - p) <= 5.0 * np.sqrt(p * (1.0 - p) / n))
    starts = {world.cells[sampler.reset()] for _ in range(400)}
    assert starts == set(POLICY)
    # Truncated after max_steps, never ended by it in a terminal cell.
    short = q_learning.TableSampler(world.mdp, max_steps=1)
    short.reset(seed=0)
    short._state = world.state((1, 1))
    assert short.step(ACTION['W'])[2:] == (False, True)


def _bandit():
    """One state, two actions into a terminal: 'left' earns 1, 'right' earns 0."""
    from ilrl_ros.core.envs.gridworld import TabularMDP
    P = np.zeros((2, 2, 2))
    P[:, :, 1] = 1.0
    R = np.zeros((2, 2, 2))
    R[0, 0, 1] = 1.0
    return TabularMDP(P=P, R=R, terminal=np.array([False, True]), gamma=1.0,
                      start=np.array([1.0, 0.0]))


def test_q_learning_counts_the_episodes_to_the_reference_policy():
    sampler = q_learning.TableSampler(_bandit())
    config = q_learning.QLearningConfig(episodes=50, lr_schedule='constant', lr=0.5,
                                        epsilon_start=1.0, epsilon_end=1.0, seed=3)
    # With lr 0.5 and uniformly random actions Q(left) after its k-th try is 1 - 0.5^k,
    # Q(right) stays 0: the greedy policy is 'left' from the start (first of ties).
    result = q_learning.train(sampler, config, reference_policy=np.array([0, -1]))
    assert result.episodes_to_reference == 1
    assert result.q[0, 0] == pytest.approx(1.0 - 0.5 ** result.visits[0, 0])
    assert result.q[0, 1] == 0.0
    assert q_learning.train(sampler, config, reference_policy=np.array([1, -1])) \
        .episodes_to_reference is None
    with pytest.raises(ValueError, match='reference_policy'):
        q_learning.train(sampler, config, reference_policy=np.array([2, -1]))


@pytest.mark.slow
def test_q_learning_defaults_find_the_lectures_optimal_policy(world, optimal):
    """The README's 10-seed table measures the claim; one seed here, with a wide margin."""
    live = ~world.mdp.terminal
    result = q_learning.train(q_learning.TableSampler(world.mdp), q_learning.QLearningConfig(),
                              reference_policy=np.where(live, optimal.policy, -1))
    assert result.episodes_to_reference is not None
    assert _policy_by_cell(world, result.policy) == POLICY
    np.testing.assert_allclose(result.q.max(axis=1)[live], optimal.values[live], atol=0.05)


def test_a_replay_without_noise_walks_the_policy_by_hand(world, optimal):
    quiet = make_gridworld(GridworldConfig(noise=0.0))
    steps = trajectory(quiet, optimal.policy, np.random.default_rng(0), start=(1, 1))
    # North twice, east three times; -0.03 a step, +1 on entering the exit.
    assert [quiet.cells[s.state] for s in steps] == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3)]
    assert ['NESW'[s.direction] for s in steps] == list('NNEEE')
    assert steps[-1].terminated and quiet.cells[steps[-1].next_state] == (4, 3)
    assert steps[-1].ret == pytest.approx(5 * -0.03 + 1.0)
    assert [s.reward for s in steps[:-1]] == pytest.approx([-0.03] * 4)


def test_a_replay_slips_as_often_as_the_noise_says(world):
    rng = np.random.default_rng(4)
    slipped = total = 0
    for _ in range(300):
        for step in trajectory(world, lambda s: 1, rng, start=(1, 1), max_steps=20):
            total += 1
            slipped += step.direction != step.action
            assert step.next_state == world.move(step.state, step.direction)
    assert abs(slipped / total - 0.2) < 5.0 * np.sqrt(0.2 * 0.8 / total)
    with pytest.raises(ValueError, match='terminal'):
        trajectory(world, lambda s: 0, rng, start=(4, 3))


def test_the_gridworld_is_a_registered_gymnasium_env():
    from gymnasium.utils.env_checker import check_env
    import ilrl_ros.core.envs  # noqa: F401  (registers it)
    env = gym.make(GYMNASIUM_ID)
    assert env.observation_space == gym.spaces.Box(0.0, 1.0, (11,), np.float32)
    obs, info = env.reset(seed=0)
    assert obs.sum() == 1.0 and obs[env.unwrapped.world.state(info['cell'])] == 1.0
    check_env(env.unwrapped, skip_render_check=True)
    aima = gym.make(GYMNASIUM_ID, living_reward=-0.04)
    assert aima.unwrapped.world.config.living_reward == -0.04
    with pytest.raises(ValueError, match='no setting colour'):
        gym.make(GYMNASIUM_ID, colour='red')
    with pytest.raises(ValueError, match='observation'):
        GridworldEnv(observation='pixels')


@given(name=st.sampled_from(['noise', 'gamma', 'living_reward']),
       value=st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=5),
                       st.none()))
def test_bad_numbers_in_a_gridworld_config_are_named(name, value):
    valid = isinstance(value, float) and np.isfinite(value) and (
        name == 'living_reward' or (name == 'noise' and 0.0 <= value <= 1.0)
        or (name == 'gamma' and 0.0 < value <= 1.0))
    if valid:
        assert getattr(GridworldConfig(**{name: value}), name) == value
        return
    with pytest.raises(ValueError, match=f'gridworld {name}'):
        GridworldConfig(**{name: value})
