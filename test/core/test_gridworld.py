"""The 4x3 gridworld against Russell & Norvig's published answers, and its three solvers."""

import numpy as np
import pytest

from ilrl_ros.core.algorithms import policy_iteration, q_learning, value_iteration
from ilrl_ros.core.envs.gridworld import GridworldConfig, GridworldEnv, make_gridworld
from ilrl_ros.core.rl.tabular import bellman_backup
from ilrl_ros.core.train_log import TrainingLog

# AIMA 3rd ed., fig. 17.3: utilities of the 4x3 world with R(s) = -0.04 and gamma = 1.
AIMA_UTILITIES = {(1, 3): 0.812, (2, 3): 0.868, (3, 3): 0.918, (4, 3): 1.0,
                  (1, 2): 0.762, (3, 2): 0.660, (4, 2): -1.0,
                  (1, 1): 0.705, (2, 1): 0.655, (3, 1): 0.611, (4, 1): 0.388}
# AIMA fig. 17.2 (a): the optimal policy for R(s) = -0.04.
AIMA_POLICY = {(1, 3): 'E', (2, 3): 'E', (3, 3): 'E',
               (1, 2): 'N', (3, 2): 'N',
               (1, 1): 'N', (2, 1): 'W', (3, 1): 'W', (4, 1): 'W'}
ACTION = {'N': 0, 'E': 1, 'S': 2, 'W': 3}


@pytest.fixture(scope='module')
def world():
    return make_gridworld(GridworldConfig(living_reward=-0.04, gamma=1.0))


@pytest.fixture(scope='module')
def optimal(world):
    return value_iteration.solve(world.mdp)


def _policy_by_cell(world, policy):
    return {world.cells[s]: 'NESW'[policy[s]] for s in np.flatnonzero(~world.mdp.terminal)}


def test_tables_move_as_the_book_says(world):
    P = world.mdp.P
    assert len(world.cells) == 11 and (2, 2) not in world.cells
    np.testing.assert_allclose(P.sum(axis=2), 1.0)
    s = world.state
    # North from (1, 1): 0.8 up, 0.1 east, 0.1 west into the edge (stays).
    assert P[s((1, 1)), ACTION['N'], s((1, 2))] == pytest.approx(0.8)
    assert P[s((1, 1)), ACTION['N'], s((2, 1))] == pytest.approx(0.1)
    assert P[s((1, 1)), ACTION['N'], s((1, 1))] == pytest.approx(0.1)
    # North from (2, 1) bumps into the wall at (2, 2).
    assert P[s((2, 1)), ACTION['N'], s((2, 1))] == pytest.approx(0.8)
    assert P[s((2, 1)), ACTION['N'], s((1, 1))] == pytest.approx(0.1)
    assert P[s((2, 1)), ACTION['N'], s((3, 1))] == pytest.approx(0.1)
    # Terminals absorb with no reward; a step into +1 earns the living reward plus +1.
    assert P[s((4, 3)), :, s((4, 3))].tolist() == [1.0] * 4
    assert not world.mdp.R[s((4, 3))].any()
    assert world.mdp.R[s((3, 3)), ACTION['E'], s((4, 3))] == pytest.approx(-0.04 + 1.0)
    assert world.mdp.R[s((3, 3)), ACTION['E'], s((3, 3))] == pytest.approx(-0.04)


def test_value_iteration_matches_the_published_utilities_and_policy(world, optimal):
    assert optimal.converged
    utilities = world.utilities(optimal.values)
    for cell, expected in AIMA_UTILITIES.items():
        assert utilities[world.state(cell)] == pytest.approx(expected, abs=5e-4), cell
    assert _policy_by_cell(world, optimal.policy) == AIMA_POLICY


def test_policy_iteration_reaches_the_same_values_and_policy(world, optimal):
    log = TrainingLog()
    result = policy_iteration.solve(world.mdp, log=log)
    assert result.converged and result.changes[-1] == 0
    np.testing.assert_allclose(result.values, optimal.values, atol=1e-8)
    assert _policy_by_cell(world, result.policy) == AIMA_POLICY
    assert log.series('train/policy_changes')[1] == result.changes.tolist()


def _two_state_mdp():
    """States A, B; actions stay, go. Rewards and probabilities small enough to do by hand."""
    P = np.zeros((2, 2, 2))
    R = np.zeros((2, 2, 2))
    P[0, 0, 0], R[0, 0, 0] = 1.0, 1.0            # A stay: A, +1
    P[0, 1, 0], R[0, 1, 0] = 0.5, 0.0            # A go: A with 0.5, 0 ...
    P[0, 1, 1], R[0, 1, 1] = 0.5, 2.0            # ... or B with 0.5, +2
    P[1, 0, 1], R[1, 0, 1] = 1.0, 0.0            # B stay: B, 0
    P[1, 1, 0], R[1, 1, 0] = 1.0, -1.5           # B go: A, -1.5
    return P, R


def test_bellman_backup_on_a_two_state_mdp_by_hand():
    P, R = _two_state_mdp()
    q = bellman_backup(P, R, np.array([1.0, 2.0]), 0.5, np.array([False, False]))
    # A stay: 1 + 0.5 * 1; A go: 0.5 (0 + 0.5 * 1) + 0.5 (2 + 0.5 * 2);
    # B stay: 0 + 0.5 * 2; B go: -1.5 + 0.5 * 1.
    np.testing.assert_allclose(q, [[1.5, 1.75], [1.0, -1.0]])
    # A terminal state has no future: its row is 0 whatever the tables say.
    q = bellman_backup(P, R, np.array([1.0, 2.0]), 0.5, np.array([False, True]))
    np.testing.assert_allclose(q, [[1.5, 1.75], [0.0, 0.0]])


def test_both_solvers_find_the_hand_solution_of_the_two_state_mdp():
    from ilrl_ros.core.envs.gridworld import TabularMDP
    P, R = _two_state_mdp()
    mdp = TabularMDP(P=P, R=R, terminal=np.array([False, False]), gamma=0.5,
                     start=np.array([1.0, 0.0]))
    # Staying in A forever: V(A) = 1 / (1 - 0.5) = 2, better than going (0.25 V(A) + 1 +
    # 0.25 V(B) = 1.5); staying in B: V(B) = 0, better than going (-1.5 + 1).
    for result in (value_iteration.solve(mdp), policy_iteration.solve(mdp)):
        np.testing.assert_allclose(result.values, [2.0, 0.0], atol=1e-9)
        assert result.policy.tolist() == [0, 0]


def test_discounted_values_equal_aimas_state_reward_utilities():
    """With gamma < 1, the per-transition tables give AIMA's U(s) = R(s) + gamma max ..."""
    config = GridworldConfig(living_reward=-0.04, gamma=0.9)
    world = make_gridworld(config)
    P, terminal, R_s = world.mdp.P, world.mdp.terminal, world.state_reward
    # AIMA's own value iteration, fig. 17.4, on state rewards, written out independently.
    U = np.zeros(len(R_s))
    for _ in range(1000):
        U = np.where(terminal, R_s, R_s + config.gamma * (P @ U).max(axis=1))
    result = value_iteration.solve(world.mdp)
    np.testing.assert_allclose(world.utilities(result.values), U, atol=1e-8)


def test_q_learning_converges_to_the_optimal_policy(world, optimal):
    env = GridworldEnv(GridworldConfig(living_reward=-0.04, gamma=1.0))
    log = TrainingLog()
    # 5000 episodes through the gymnasium env; AIMA's -0.04 has no near ties as close as the
    # lectures' -0.03 (test_gridworld_lectures.py), so a faster-forgetting rate suffices.
    config = q_learning.QLearningConfig(episodes=5000, seed=0, lr_power=0.7, log_every=100)
    result = q_learning.train(env, config, log=log)
    assert _policy_by_cell(world, result.policy) == AIMA_POLICY
    live = ~world.mdp.terminal
    np.testing.assert_allclose(result.q.max(axis=1)[live], optimal.values[live], atol=0.05)
    # The learning curve rises as exploration decays; the log has it too.
    returns = result.episode_returns
    assert returns[-500:].mean() > returns[:500].mean() + 0.1
    steps, means = log.series('rollout/ep_return_mean')
    assert steps[-1] == 5000 and len(means) == 50
    assert result.steps == result.episode_lengths.sum() == result.visits.sum()


def test_env_transitions_follow_the_tables():
    env = GridworldEnv()
    mdp = env.world.mdp
    env.reset(seed=7)
    n = 2000
    for s in np.flatnonzero(~mdp.terminal):
        for a in range(mdp.n_actions):
            counts = np.zeros(mdp.n_states)
            for _ in range(n):
                env.reset(options={'state': int(s)})
                nxt, reward, *_ = env.step(a)
                counts[nxt] += 1
                assert reward == mdp.R[s, a, nxt]
            p = mdp.P[s, a]
            # Five standard errors of a binomial frequency; impossible moves never happen.
            tolerance = 5.0 * np.sqrt(p * (1.0 - p) / n)
            assert np.all(np.abs(counts / n - p) <= tolerance), (env.world.cells[s], a)


def test_env_returns_average_to_the_utilities_discount_included():
    """Monte Carlo returns of the optimal policy from (1, 1) match U(1, 1) with gamma 0.9."""
    config = GridworldConfig(gamma=0.9, start=(1, 1))
    env = GridworldEnv(config)
    policy = value_iteration.solve(env.world.mdp).policy
    expected = value_iteration.solve(env.world.mdp).values[env.world.state((1, 1))]
    env.reset(seed=3)
    returns = []
    for _ in range(3000):
        state, info = env.reset()
        assert info['cell'] == (1, 1)
        total, discount, done = 0.0, 1.0, False
        while not done:
            state, reward, terminated, truncated, _ = env.step(policy[state])
            total += discount * reward
            discount *= config.gamma
            done = terminated or truncated
        returns.append(total)
    standard_error = np.std(returns) / np.sqrt(len(returns))
    assert abs(np.mean(returns) - expected) < 5.0 * standard_error + 1e-3


def test_env_is_deterministic_under_a_seed_and_passes_gymnasiums_checks():
    from gymnasium.utils.env_checker import check_env

    check_env(GridworldEnv(), skip_render_check=True)

    def rollout(seed):
        env = GridworldEnv()
        actions = np.random.default_rng(0).integers(0, 4, size=300)
        trace = [env.reset(seed=seed)[0]]
        for a in actions:
            state, reward, terminated, truncated, _ = env.step(a)
            trace.append((state, reward))
            if terminated or truncated:
                trace.append(env.reset()[0])
        return trace

    assert rollout(5) == rollout(5)
    assert rollout(5) != rollout(6)
    starts = {GridworldEnv().reset(seed=seed)[1]['cell'] for seed in range(200)}
    assert starts == {cell for cell in AIMA_POLICY}


def test_text_pictures_for_people():
    text = value_iteration.solve_and_print(GridworldConfig(living_reward=-0.04))
    lines = text.splitlines()
    assert ' 0.812  0.868  0.918 +1.000' in lines
    assert ' 0.762  #####  0.660 -1.000' in lines
    assert ' 0.705  0.655  0.611  0.388' in lines
    assert ' >  >  > +1' in lines and ' ^  <  <  <' in lines
    env = GridworldEnv(GridworldConfig(start=(1, 1)), render_mode='ansi')
    env.reset(seed=0)
    assert env.render().splitlines()[-1].split() == ['A', '.', '.', '.']


def test_bad_configurations_and_actions_are_explained():
    with pytest.raises(ValueError, match=r'wall \(5, 1\) .* \(4, 3\)'):
        GridworldConfig(walls=[(5, 1)])
    with pytest.raises(ValueError, match=r'both walls and terminals'):
        GridworldConfig(walls=[(4, 3)])
    with pytest.raises(ValueError, match=r'noise 1.5'):
        GridworldConfig(noise=1.5)
    with pytest.raises(ValueError, match=r'start \(4, 3\)'):
        GridworldConfig(start=(4, 3))
    with pytest.raises(ValueError, match=r'lr_schedule'):
        q_learning.QLearningConfig(lr_schedule='cosine')
    env = GridworldEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r'action 4 .*0=N'):
        env.step(4)
    env.reset(options={'cell': (3, 3)})
    done = False
    while not done:
        _, _, terminated, truncated, _ = env.step(1)
        done = terminated or truncated
    with pytest.raises(RuntimeError, match='reset'):
        env.step(0)


def test_policy_evaluation_refuses_a_policy_that_never_terminates():
    # No noise and gamma 1: pushing north into the top edge from (1, 3) goes on forever.
    world = make_gridworld(GridworldConfig(noise=0.0, gamma=1.0))
    policy = np.zeros(world.mdp.n_states, dtype=np.int64)
    with pytest.raises(ValueError, match=r'never reaches a terminal state'):
        policy_iteration.solve(world.mdp, initial_policy=policy)
