"""Tabular MaxEnt IRL: soft values, visitation frequencies and gradients by hand, recovery."""

import math

from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.algorithms import maxent_irl
from ilrl_ros.core.algorithms.maxent_irl import ColouredGridConfig, IRLProblem, \
    MaxEntIRLConfig
from ilrl_ros.core.train_log import TrainingLog

PHI = (1 + math.sqrt(5)) / 2
"""The golden ratio."""


def stay_or_exit(gamma=0.5) -> IRLProblem:
    """State 0 (feature 1): action 0 stays, action 1 takes the exit, state 1 (terminal)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = 1.0
    P[1, :, 1] = 1.0
    return IRLProblem(P=P, features=np.array([[1.0], [0.0]]), terminal=np.array([False, True]),
                      start=np.array([1.0, 0.0]), gamma=gamma)


def two_rooms() -> IRLProblem:
    """States A and B (features one-hot), no exit: action 0 stays, action 1 switches."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[1, 0, 1] = P[0, 1, 1] = P[1, 1, 0] = 1.0
    return IRLProblem(P=P, features=np.eye(2), terminal=np.array([False, False]),
                      start=np.array([1.0, 0.0]), gamma=0.5)


def test_stay_or_exit_by_hand_at_theta_zero():
    # r(0) = 0, gamma = 1/2: Q(0, stay) = V/2, Q(0, exit) = 0 (the exit is worth 0), so
    # V = log(e^(V/2) + 1). With x = e^(V/2): x^2 = x + 1, x = golden ratio phi = 1.618034,
    # V = 2 ln phi = 0.962424. pi(stay) = e^(V/2 - V) = 1/phi = 0.618034, pi(exit) = e^-V =
    # 1/phi^2 = 0.381966. Discounted visits of state 0: D = sum_t (gamma pi(stay))^t
    # = 1 / (1 - 1/(2 phi)) = 1 + 1/sqrt(5) = 1.447214, so mu_theta = 1.447214.
    # A demonstrator that always stays has mu_E = 1 / (1 - 1/2) = 2: the gradient is
    # 2 - 1.447214 = 0.552786, and L(0) = 0 . 2 - V(0) = -0.962424.
    problem = stay_or_exit()
    soft = maxent_irl.soft_value_iteration(problem, [0.0])
    assert soft.values == pytest.approx([2 * math.log(PHI), 0.0], abs=1e-9)
    assert soft.q[0] == pytest.approx([math.log(PHI), 0.0], abs=1e-9)
    assert soft.policy[0] == pytest.approx([1 / PHI, 1 / PHI ** 2], abs=1e-9)
    visits = maxent_irl.state_visitation(problem, soft.policy)
    assert visits == pytest.approx([1 + 1 / math.sqrt(5), 0.0], abs=1e-9)
    assert maxent_irl.gradient(problem, [0.0], [2.0]) == pytest.approx([0.552786], abs=1e-6)
    assert maxent_irl.dual(problem, [0.0], [2.0]) == pytest.approx(-0.962424, abs=1e-6)


def test_stay_or_exit_by_hand_at_theta_log_two_and_its_recovery():
    # r(0) = ln 2: V = ln 2 + log(e^(V/2) + 1), i.e. with x = e^(V/2), x^2 = 2x + 2,
    # x = 1 + sqrt(3). pi(stay) = 2/x = sqrt(3) - 1 = 0.732051, pi(exit) = 2/x^2 = 2 - sqrt(3).
    # D = 1 / (1 - (sqrt(3) - 1)/2) = 1 + 1/sqrt(3) = 1.577350.
    problem = stay_or_exit()
    theta = [math.log(2)]
    soft = maxent_irl.soft_value_iteration(problem, theta)
    assert soft.values[0] == pytest.approx(2 * math.log(1 + math.sqrt(3)), abs=1e-9)
    assert soft.policy[0] == pytest.approx([math.sqrt(3) - 1, 2 - math.sqrt(3)], abs=1e-9)
    mu = maxent_irl.feature_expectations(problem, soft.policy)
    assert mu == pytest.approx([1 + 1 / math.sqrt(3)], abs=1e-9)
    # Given these feature counts, MaxEnt IRL from theta = 0 finds ln 2 = 0.693147 back
    # (L-BFGS exactly, Adam to its decayed step size).
    result = maxent_irl.maxent_irl(problem, mu)
    assert result.converged and result.theta == pytest.approx([math.log(2)], abs=1e-5)
    adam = maxent_irl.maxent_irl(problem, mu, MaxEntIRLConfig(optimizer='adam', iterations=300,
                                                              lr=0.1, lr_final=1e-3))
    assert adam.theta == pytest.approx([math.log(2)], abs=1e-2)


def test_two_rooms_by_hand():
    # theta = 0: both actions are worth the same, V = log 2 + V/2 in both rooms, V = 2 ln 2,
    # pi uniform. From A: t = 0 in A, every later step in A or B with 1/2 each, so
    # D(A) = 1 + sum_t>=1 (1/2)^t / 2 = 1.5, D(B) = 0.5. A demonstrator that stays in A has
    # mu_E = (2, 0): the gradient is (0.5, -0.5).
    problem = two_rooms()
    soft = maxent_irl.soft_value_iteration(problem, [0.0, 0.0])
    assert soft.values == pytest.approx([2 * math.log(2)] * 2, abs=1e-9)
    assert soft.policy == pytest.approx(np.full((2, 2), 0.5), abs=1e-9)
    assert maxent_irl.state_visitation(problem, soft.policy) == pytest.approx([1.5, 0.5],
                                                                               abs=1e-9)
    assert maxent_irl.gradient(problem, [0.0, 0.0], [2.0, 0.0]) == pytest.approx(
        [0.5, -0.5], abs=1e-9)


def test_soft_values_solve_the_soft_bellman_equation_and_visits_the_linear_system():
    problem = maxent_irl.make_coloured_grid(ColouredGridConfig(size=4, colours=3, seed=2)).problem
    theta = np.array([0.7, -1.2, 0.3])
    soft = maxent_irl.soft_value_iteration(problem, theta)
    r = problem.rewards(theta)
    live = ~problem.terminal
    q = r[:, None] + problem.gamma * problem.P @ soft.values
    assert soft.values[live] == pytest.approx(maxent_irl.logsumexp(q)[live], abs=1e-9)
    assert soft.policy.sum(axis=1) == pytest.approx(np.ones(problem.n_states), abs=1e-12)
    # D = p0 + gamma P_pi^T D over the non-terminal states, solved directly.
    step = problem.gamma * np.einsum('sa,sat->st', soft.policy, problem.P)
    step[:, problem.terminal] = 0.0
    step[problem.terminal] = 0.0
    direct = np.linalg.solve(np.eye(problem.n_states) - step.T, problem.start)
    assert maxent_irl.state_visitation(problem, soft.policy) == pytest.approx(direct, abs=1e-8)


def test_gradient_matches_finite_differences_of_the_dual():
    problem = maxent_irl.make_coloured_grid(
        ColouredGridConfig(size=4, colours=3, noise=0.2, seed=5)).problem
    theta = np.array([0.4, -0.8, 1.1])
    mu_e = np.array([1.5, 0.7, 2.0])
    h = 1e-5
    numeric = [(maxent_irl.dual(problem, theta + h * e, mu_e)
                - maxent_irl.dual(problem, theta - h * e, mu_e)) / (2 * h) for e in np.eye(3)]
    assert maxent_irl.gradient(problem, theta, mu_e) == pytest.approx(numeric, abs=1e-6)


def test_exact_feature_counts_give_the_true_weights_back():
    world = ColouredGridConfig(size=4, colours=3, weights=(-1.0, 0.4, 0.8), seed=1)
    log = TrainingLog()
    report = maxent_irl.run(world, MaxEntIRLConfig(), log=log)
    assert report.result.converged
    assert report.result.theta == pytest.approx([-1.0, 0.4, 0.8], abs=1e-3)
    assert report.optimal_states == 15 and report.same_action_states == 15
    assert report.soft_policy_distance < 1e-3
    assert log.series('train/gradient_max')[1][-1] < 1e-5
    text = maxent_irl.report_text(report)
    assert 'signs: 3 of 3 match' in text
    assert 'optimal for the true reward in 15 of 15 states' in text
    lines = text.splitlines()
    grid = lines.index('colours        demonstrator   learned')
    assert lines[grid + 1] == '. R B X        v > ^ X        v > ^ X'  # the top row


def test_sampled_demonstrations_recover_the_signs_and_an_optimal_policy():
    # 300 walks of at most 60 steps: the weights come back within about 0.2 (the test
    # allows 0.5), so every sign matches with a wide margin.
    world = ColouredGridConfig(size=4, colours=3, weights=(-1.0, 0.6, 1.0), seed=4)
    report = maxent_irl.run(world, MaxEntIRLConfig(demos=300, demo_steps=60))
    assert len(report.demos.states) == 300
    assert all(maxent_irl.signs_match(report.world.true_weights, report.result.theta))
    assert np.abs(report.result.theta - [-1.0, 0.6, 1.0]).max() < 0.5
    assert report.optimal_states >= 13


def test_an_optimal_demonstrator_with_l2_gives_the_signs():
    world = ColouredGridConfig(size=4, colours=3, weights=(-1.0, 0.5, 1.0), seed=1)
    report = maxent_irl.run(world, MaxEntIRLConfig(demonstrator='optimal', l2=0.01))
    assert all(maxent_irl.signs_match(report.world.true_weights, report.result.theta))


def test_demonstration_features_and_starts_by_hand():
    problem = two_rooms()
    demos = maxent_irl.Demonstrations(states=[np.array([0, 0, 1]), np.array([1])],
                                      exited=np.array([False, False]))
    # (1 + 0.5) A + 0.25 B, and B: mean (0.75, 0.625).
    assert maxent_irl.demonstration_features(problem, demos) == pytest.approx([0.75, 0.625])
    assert maxent_irl.empirical_start(problem, demos) == pytest.approx([0.5, 0.5])
    rng = np.random.default_rng(0)
    stay = np.array([[1.0, 0.0], [1.0, 0.0]])
    walks = maxent_irl.sample_demonstrations(problem, stay, 3, 4, rng)
    assert [list(s) for s in walks.states] == [[0] * 4] * 3
    leave = maxent_irl.sample_demonstrations(stay_or_exit(), np.array([[0.0, 1.0]] * 2), 2, 5,
                                             rng)
    assert [list(s) for s in leave.states] == [[0], [0]] and leave.exited.all()


def test_the_grid_has_every_colour_its_floor_and_the_exit():
    world = maxent_irl.make_coloured_grid(ColouredGridConfig(size=5, colours=4, seed=3))
    problem = world.problem
    assert problem.features.shape == (25, 4)
    assert problem.features.sum(axis=0).min() >= 1
    assert np.count_nonzero(problem.features.sum(axis=1) == 0) >= 2  # floor and the exit
    assert problem.terminal[world.grid.state((5, 5))]
    assert len(world.true_weights) == 4
    assert (world.true_weights > 0).any() and (world.true_weights < 0).any()


def _problem(S=3, A=2, K=2, **change):
    rng = np.random.default_rng(0)
    P = rng.random((S, A, S))
    arrays = dict(P=P / P.sum(axis=2, keepdims=True), features=rng.random((S, K)),
                  terminal=np.zeros(S, dtype=bool), start=np.full(S, 1.0 / S), gamma=0.9)
    arrays.update(change)
    return IRLProblem(**arrays)


@given(S=st.integers(1, 5), K=st.integers(1, 4), extra=st.integers(-3, 3).filter(bool))
def test_features_with_the_wrong_number_of_rows_are_refused(S, K, extra):
    features = np.ones((max(0, S + extra), K))
    with pytest.raises(ValueError, match=r'features have shape .*expected \[%d, K\]' % S):
        _problem(S=S, K=K, features=features)


@given(scale=st.floats(0.0, 3.0).filter(lambda v: abs(v - 1) > 1e-3),
       s=st.integers(0, 2), a=st.integers(0, 1))
def test_a_transition_table_that_is_not_stochastic_is_refused(scale, s, a):
    P = _problem().P.copy()
    P[s, a] *= scale
    with pytest.raises(ValueError, match='not stochastic'):
        _problem(P=P)
    P = _problem().P.copy()
    P[s, a, 0] = -0.5
    with pytest.raises(ValueError, match='not stochastic'):
        _problem(P=P)


@given(where=st.sampled_from(['P', 'features', 'start', 'theta', 'expert']),
       bad=st.sampled_from([np.nan, np.inf, -np.inf]), index=st.integers(0, 5))
def test_nan_and_infinity_are_refused_wherever_they_are(where, bad, index):
    problem = _problem()
    if where in ('theta', 'expert'):
        vector = np.zeros(2)
        vector[index % 2] = bad
        with pytest.raises(ValueError, match='NaN or infinite'):
            if where == 'theta':
                maxent_irl.soft_value_iteration(problem, vector)
            else:
                maxent_irl.maxent_irl(problem, vector)
        return
    array = {'P': problem.P, 'features': problem.features, 'start': problem.start}[where].copy()
    array.flat[index % array.size] = bad
    with pytest.raises(ValueError, match='NaN or infinite'):
        _problem(**{where: array})


@given(K=st.integers(1, 4), wrong=st.integers(0, 6))
def test_weights_of_the_wrong_length_are_refused(K, wrong):
    if wrong == K:
        wrong += 1
    with pytest.raises(ValueError, match=f'has {wrong} entries; expected {K}'):
        maxent_irl.gradient(_problem(K=K), np.zeros(wrong), np.zeros(K))


@given(gamma=st.one_of(st.floats(-2, 0), st.floats(1, 5)))
def test_gamma_outside_zero_one_is_refused(gamma):
    with pytest.raises(ValueError, match='gamma'):
        _problem(gamma=gamma)


def test_bad_start_terminal_demonstrations_and_settings_are_explained():
    with pytest.raises(ValueError, match='start distribution'):
        _problem(start=np.array([0.5, 0.5, 0.5]))
    with pytest.raises(ValueError, match='terminal mask'):
        _problem(terminal=np.zeros(3))
    with pytest.raises(ValueError, match=r'demonstration states .* expected 0 to 2'):
        maxent_irl.demonstration_features(_problem(), maxent_irl.Demonstrations(
            states=[np.array([0, 3])], exited=np.array([False])))
    with pytest.raises(ValueError, match='at least one demonstration'):
        maxent_irl.demonstration_features(_problem(), maxent_irl.Demonstrations(
            states=[], exited=np.array([], dtype=bool)))
    with pytest.raises(ValueError, match='demonstrator'):
        MaxEntIRLConfig(demonstrator='expert')
    with pytest.raises(ValueError, match='optimizer'):
        MaxEntIRLConfig(optimizer='sgd')
    with pytest.raises(ValueError, match='weights .* expected 3 finite numbers'):
        ColouredGridConfig(colours=3, weights=(1.0, 2.0))
    with pytest.raises(ValueError, match=r'exit \(7, 1\)'):
        ColouredGridConfig(size=6, exit=(7, 1))
    with pytest.raises(ValueError, match='floor'):
        ColouredGridConfig(floor=1.0)
    with pytest.raises(ValueError, match='colours'):
        ColouredGridConfig(size=2, colours=4)
