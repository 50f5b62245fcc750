"""Model-based control: CEM and random shooting, the dynamics ensemble, LQR, MPC and MBRL."""

import math

import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.lqr import (
    linearize,
    lqr_gain,
    LQRConfig,
    pendulum_lqr,
    pendulum_state_step,
)
from ilrl_ros.core.algorithms.mbrl import fit_dynamics, MBRLConfig, train, validation_loss
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.networks import (
    build_policy,
    DynamicsEnsemble,
    LinearFeedbackPolicy,
    MPCPolicy,
    PlannerConfig,
)
from ilrl_ros.core.networks.mpc import (
    cem,
    pendulum_reward,
    plan,
    random_shooting,
    trajectory_returns,
)
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env

DT = 0.05



@pytest.fixture(scope='module')
def spec():
    return load_spec('pendulum')


def pendulum_env(spec):
    return lambda: make_env(spec)


def true_pendulum_step(obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
    """Pendulum-v1's step on observations [cos, sin, theta_dot], in torch (g = 10)."""
    theta = torch.atan2(obs[..., 1], obs[..., 0])
    u = action[..., 0].clamp(-2.0, 2.0)
    speed = (obs[..., 2] + (15.0 * torch.sin(theta) + 3.0 * u) * DT).clamp(-8.0, 8.0)
    theta = theta + speed * DT
    return torch.stack([torch.cos(theta), torch.sin(theta), speed], dim=-1)


def quadratic_score(target: torch.Tensor):
    """Returns -|a - target|^2 of sequences [B, N, H, A], with target [B, H, A]."""
    return lambda actions: -((actions - target[:, None]) ** 2).sum(dim=(2, 3))


def act_fn(policy):
    return lambda obs: policy(torch.as_tensor(obs, dtype=torch.float32)[None])[0].numpy()


# --- planners ---------------------------------------------------------------------------

def test_cem_finds_the_minimum_of_a_quadratic():
    target = torch.tensor([[[0.5], [-1.2], [0.3]],
                           [[-0.7], [0.0], [1.5]]])  # [B=2, H=3, A=1], inside [-2, 2]
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    mean, best = cem(quadratic_score(target), torch.zeros(2, 3, 1), torch.ones(2, 3, 1), low,
                     high, num_candidates=100, iterations=12, elite_fraction=0.1,
                     smoothing=0.1, generator=torch.Generator().manual_seed(0))
    assert mean.shape == (2, 3, 1)
    assert torch.allclose(mean, target, atol=0.02)
    assert torch.all(best <= 0.0) and torch.all(best > -1e-3)


def test_cem_stops_at_the_bound_when_the_minimum_lies_outside():
    target = torch.tensor([[[3.0, -0.5]]])  # [B=1, H=1, A=2]; the first lies above high = 2
    low, high = torch.tensor([-2.0, -2.0]), torch.tensor([2.0, 2.0])
    mean, _ = cem(quadratic_score(target), torch.zeros(1, 1, 2), torch.ones(1, 1, 2), low,
                  high, num_candidates=100, iterations=12, elite_fraction=0.1, smoothing=0.1,
                  generator=torch.Generator().manual_seed(1))
    assert mean[0, 0].tolist() == pytest.approx([2.0, -0.5], abs=0.02)


def test_random_shooting_on_a_quadratic():
    target = torch.tensor([[[0.8, -0.4]], [[-1.5, 1.0]]])  # [B=2, H=1, A=2]
    low, high = torch.tensor([-2.0, -2.0]), torch.tensor([2.0, 2.0])
    best, best_return = random_shooting(quadratic_score(target), low, high, batch=2,
                                        horizon=1, num_candidates=4000,
                                        generator=torch.Generator().manual_seed(0))
    assert best.shape == (2, 1, 2)
    # 4000 uniform samples on a 4 x 4 square: the nearest lies within ~0.05 of any point.
    assert torch.allclose(best, target, atol=0.1)
    assert torch.allclose(best_return, quadratic_score(target)(best[:, None])[:, 0])


def test_trajectory_returns_by_hand():
    # x' = x + a, r = -(x^2 + a^2) on the state the action is taken in.
    def step(x, a):
        return x + a

    def reward(x, a):
        return -(x[..., 0] ** 2 + a[..., 0] ** 2)

    obs = torch.tensor([[1.0]])
    actions = torch.tensor([[[-0.5], [-0.5], [0.0]],
                            [[0.0], [0.0], [0.0]]])[None]  # [B=1, N=2, H=3, A=1]
    # First: states 1, 0.5, 0 -> -(1 + .25) - (.25 + .25) - 0 = -1.75. Second: -3.
    returns = trajectory_returns(step, reward, obs, actions, particles=1)
    assert returns.tolist() == [[-1.75, -3.0]]
    # Identical particles average to the same.
    assert trajectory_returns(step, reward, obs, actions, particles=4).tolist() == \
        [[-1.75, -3.0]]


def test_pendulum_reward_is_pendulum_v1s():
    # theta = pi/2, theta_dot = 2, u = 1: -(pi^2 / 4 + 0.4 + 0.001) = -2.868401
    obs = torch.tensor([[0.0, 1.0, 2.0]])
    assert pendulum_reward(obs, torch.tensor([[1.0]])).item() == \
        pytest.approx(-(math.pi ** 2 / 4 + 0.4 + 0.001), abs=1e-5)


def test_mpc_with_the_true_dynamics_swings_the_pendulum_up(spec):
    """The planner alone, with a perfect model, swings up from hanging and balances."""
    config = PlannerConfig(horizon=15, num_candidates=100, iterations=4)
    low, high = torch.tensor([-2.0]), torch.tensor([2.0])
    warm = {'mean': None}

    def act(obs):
        sequence = plan(torch.as_tensor(obs, dtype=torch.float32)[None], true_pendulum_step,
                        pendulum_reward, low, high, config,
                        torch.Generator().manual_seed(0), warm_mean=warm['mean'])
        warm['mean'] = torch.cat([sequence[:, 1:], torch.zeros(1, 1, 1)], dim=1)
        return sequence[0, 0].numpy()

    env = make_env(spec)
    obs, _ = env.reset(seed=0, options={'state': (math.pi, 0.0)})
    total, angles = 0.0, []
    for _ in range(200):
        obs, reward, _, _, _ = env.step(act(obs))
        total += reward
        angles.append(abs(math.atan2(obs[1], obs[0])))
    # From hanging at rest random torques score about -1700 and the energy-pumping expert
    # (SwingUpLQR) -372; this planner scores about -390.
    assert total > -500.0
    assert max(angles[-60:]) < 0.1  # upright for the last 3 s


# --- dynamics ensemble ------------------------------------------------------------------

def test_folded_predictor_equals_the_readable_step():
    model = DynamicsEnsemble(3, 1, ensemble_size=3, hidden=(16, 16))
    rng = np.random.default_rng(0)
    obs, act = rng.normal(size=(50, 3)), rng.normal(size=(50, 1))
    model.set_normalization(obs, act, obs + 0.1 * rng.normal(size=(50, 3)) + 0.5)
    x, a = torch.randn(3, 4, 5, 3), torch.randn(3, 4, 5, 1)
    with torch.no_grad():
        assert torch.allclose(model.step(x, a), model.predictor()(x, a), atol=1e-5)
        # One particle: the 4 x 6 = 24 rows split into 3 members of 8 rows each.
        x, a = torch.randn(1, 4, 6, 3), torch.randn(1, 4, 6, 1)
        assert torch.allclose(model.step(x, a), model.predictor()(x, a), atol=1e-5)


def test_ensemble_fits_a_known_linear_system():
    a_true = np.array([[1.0, 0.1], [-0.2, 0.95]])
    b_true = np.array([[0.0], [0.1]])
    rng = np.random.default_rng(0)
    obs = rng.uniform(-2.0, 2.0, size=(3000, 2))
    act = rng.uniform(-1.0, 1.0, size=(3000, 1))
    next_obs = obs @ a_true.T + act @ b_true.T
    torch.manual_seed(0)
    model = DynamicsEnsemble(2, 1, ensemble_size=3, hidden=(32, 32), activation='elu')
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    train_loss = fit_dynamics(model, obs[:2500], act[:2500], next_obs[:2500], steps=1500,
                              optimizer=optimizer, rng=rng, batch_size=128)
    held_out = validation_loss(model, obs[2500:], act[2500:], next_obs[2500:])
    # Normalised MSE: 1.0 would be predicting the mean delta.
    assert train_loss < 0.01 and held_out < 0.01
    with torch.no_grad():
        x = torch.as_tensor(obs[2500:], dtype=torch.float32).expand(3, -1, -1)
        u = torch.as_tensor(act[2500:], dtype=torch.float32).expand(3, -1, -1)
        predicted = model.step(x, u).numpy()
    deltas = next_obs[2500:] - obs[2500:]
    error = np.abs(predicted - next_obs[2500:]).max()
    assert error < 0.1 * np.abs(deltas).max()


# --- LQR --------------------------------------------------------------------------------

def scalar_riccati(a, b, q, r):
    """P and K of the scalar DARE P = q + a^2 P - (a b P)^2 / (r + b^2 P), by hand.

    Multiplying out gives b^2 P^2 + (r - q b^2 - a^2 r) P - q r = 0; P is the positive root.
    """
    c = r - q * b * b - a * a * r
    p = (-c + math.sqrt(c * c + 4.0 * b * b * q * r)) / (2.0 * b * b)
    return p, a * b * p / (r + b * b * p)


def test_lqr_gain_matches_the_scalar_formula():
    for a, b, q, r in ((1.2, 0.5, 1.0, 0.1), (0.9, 1.0, 2.0, 1.0), (2.0, 0.1, 1.0, 0.01)):
        p, k = scalar_riccati(a, b, q, r)
        gain, cost_to_go = lqr_gain([[a]], [[b]], [[q]], [[r]])
        assert gain[0, 0] == pytest.approx(k, rel=1e-8)
        assert cost_to_go[0, 0] == pytest.approx(p, rel=1e-8)
    # a = 1.2, b = 1, q = r = 1: P = (1.44 + sqrt(1.44^2 + 4)) / 2 = 1.952234 and
    # K = a b P / (r + b^2 P) = 1.2 * 1.952234 / 2.952234 = 0.793528.
    assert scalar_riccati(1.2, 1.0, 1.0, 1.0) == pytest.approx((1.952234, 0.793528), abs=1e-6)


def test_lqr_gain_of_a_two_state_system_by_hand():
    # An unstable state driven by u, and a stable one it cannot reach: the first is the
    # scalar case above; the second costs sum 0.5^(2t) = 1 / (1 - 0.25) and gets no gain.
    gain, cost_to_go = lqr_gain([[1.2, 0.0], [0.0, 0.5]], [[1.0], [0.0]], np.eye(2), [[1.0]])
    p11, k1 = scalar_riccati(1.2, 1.0, 1.0, 1.0)
    np.testing.assert_allclose(cost_to_go, [[p11, 0.0], [0.0, 4.0 / 3.0]], atol=1e-9)
    np.testing.assert_allclose(gain, [[k1, 0.0]], atol=1e-9)


def test_lqr_cost_to_go_is_the_closed_loop_cost_and_optimal():
    # Double integrator: the cost of running u = -Kx from x0 is x0' P x0, and any other gain
    # costs more.
    a, b = np.array([[1.0, 1.0], [0.0, 1.0]]), np.array([[0.0], [1.0]])
    q, r = np.eye(2), np.array([[1.0]])
    gain, cost_to_go = lqr_gain(a, b, q, r)
    assert np.all(np.abs(np.linalg.eigvals(a - b @ gain)) < 1.0)
    residual = q + a.T @ cost_to_go @ a - a.T @ cost_to_go @ b @ np.linalg.solve(
        r + b.T @ cost_to_go @ b, b.T @ cost_to_go @ a) - cost_to_go
    assert np.abs(residual).max() < 1e-9

    def closed_loop_cost(k, x0):
        x, total = np.array(x0, dtype=float), 0.0
        for _ in range(500):
            u = -k @ x
            total += x @ q @ x + u @ r @ u
            x = a @ x + b @ u
        return total

    x0 = np.array([1.0, -0.5])
    assert closed_loop_cost(gain, x0) == pytest.approx(x0 @ cost_to_go @ x0, rel=1e-9)
    for delta in ([0.05, 0.0], [0.0, -0.05]):
        assert closed_loop_cost(gain + np.array([delta]), x0) > x0 @ cost_to_go @ x0


def test_pendulum_linearisation_matches_the_jacobians_by_hand():
    # Semi-implicit Euler at the top: w' = w + (15 sin th + 3u) dt, th' = th + w' dt.
    a, b = linearize(pendulum_state_step, [0.0, 0.0], [0.0])
    np.testing.assert_allclose(a, [[1.0 + 15.0 * DT ** 2, DT], [15.0 * DT, 1.0]], atol=1e-8)
    np.testing.assert_allclose(b, [[3.0 * DT ** 2], [3.0 * DT]], atol=1e-8)


def test_lqr_policy_balances_the_pendulum(spec):
    policy = pendulum_lqr(spec).policy
    env = make_env(spec)
    for start in ((0.29, 0.0), (-0.29, 0.0), (0.2, 0.5), (-0.1, -0.8), (0.0, 0.0)):
        obs, _ = env.reset(seed=0, options={'state': start})
        angles = []
        for _ in range(100):
            obs, _, _, _, _ = env.step(act_fn(policy)(obs))
            angles.append(abs(math.atan2(obs[1], obs[0])))
        assert max(angles[60:]) < 0.05, f'start {start}: |theta| {max(angles[60:]):.3f}'


def test_linear_feedback_wraps_the_angle_error():
    # x0 = (3.0, 0), K = (1, 0); theta = -3.0 is 2 pi - 6 = 0.283 rad past x0, not -6 rad.
    policy = LinearFeedbackPolicy(3, 1, state_map='pendulum', gain=[[1.0, 0.0]],
                                  x0=[3.0, 0.0], u0=[0.0], low=[-2.0], high=[2.0])
    obs = torch.tensor([[math.cos(-3.0), math.sin(-3.0), 0.0]])
    assert policy(obs).item() == pytest.approx(-(2.0 * math.pi - 6.0), abs=1e-5)
    with pytest.raises(ValueError, match='state_map'):
        LinearFeedbackPolicy(3, 1, state_map='cartpole')
    with pytest.raises(ValueError, match='reads a 3-dimensional observation'):
        LinearFeedbackPolicy(4, 1, state_map='pendulum')


def test_lqr_config_must_fit_the_state():
    with pytest.raises(ValueError, match='LQRConfig.q has 3 weights'):
        pendulum_lqr(load_spec('pendulum'), LQRConfig(q=(1.0, 1.0, 1.0)))
    with pytest.raises(ValueError, match='pendulum_lqr needs'):
        pendulum_lqr(load_spec('track_follow'))


# --- MPC policy and model-based RL ------------------------------------------------------

SHORT_RUN = MBRLConfig(total_steps=2000, random_steps=1000, steps_per_iteration=1000,
                       num_envs=5, ensemble_size=3, hidden=(64, 64), batch_size=128,
                       first_fit_steps=500, fit_steps=200,
                       planner=PlannerConfig(horizon=15, num_candidates=60, iterations=3))


@pytest.fixture(scope='module')
def short_run(spec):
    # Pendulum-v1's dynamics are smooth enough that 1000 random steps fit a usable model.
    torch.set_num_threads(1)
    return train(pendulum_env(spec), SHORT_RUN, 'pendulum')


def test_short_mbrl_run_beats_a_random_policy(spec, short_run):
    assert short_run.env_steps == 2000
    assert short_run.model_val_loss < 0.05
    names = {row['name'] for row in short_run.log.rows}
    assert {'train/model_loss', 'eval/model_val_loss', 'rollout/episode_return',
            'rollout/plan_ms'} <= names
    short_run.policy.reset()
    learned = evaluate_policy(pendulum_env(spec), act_fn(short_run.policy),
                              episodes=3).mean_return
    rng = np.random.default_rng(0)
    random = evaluate_policy(pendulum_env(spec), lambda obs: rng.uniform(-2.0, 2.0, size=1),
                             episodes=3).mean_return
    # Random torques score about -1200 per episode; a swing-up about -150.
    assert learned > random + 500.0, (learned, random)
    assert learned > -500.0


def test_mpc_policy_plans_deterministically_and_in_bounds(short_run):
    policy = short_run.policy
    obs = torch.tensor([[1.0, 0.0, 0.0], [-1.0, 0.0, 0.5], [0.0, 1.0, -3.0]])
    policy.reset()
    first = policy(obs)
    policy.reset()
    assert torch.equal(policy(obs), first)
    assert first.shape == (3, 1)
    assert torch.all(first >= -2.0) and torch.all(first <= 2.0)
    # The policy node plans under inference mode; forgetting one row's plan (an episode
    # ended there) happens outside it.
    with torch.inference_mode():
        policy(obs)
    policy.reset(rows=[1])
    assert policy(obs).shape == (3, 1)
    policy.reset()


def test_mpc_policy_description_rebuilds_it(short_run):
    description = short_run.policy.description()
    assert description['type'] == 'mpc' and description['planner']['horizon'] == 15
    rebuilt = build_policy(description)
    assert isinstance(rebuilt, MPCPolicy)
    assert rebuilt.description() == description


def test_mpc_policy_refuses_settings_that_cannot_work():
    with pytest.raises(ValueError, match='reward'):
        MPCPolicy(3, 1, reward='cartpole')
    with pytest.raises(ValueError, match='reads 3 observations'):
        MPCPolicy(4, 1, reward='pendulum')
    with pytest.raises(ValueError, match='multiple of the ensemble size'):
        MPCPolicy(3, 1, ensemble_size=3, planner={'num_candidates': 100})
    with pytest.raises(ValueError, match='planner method'):
        MPCPolicy(3, 1, planner={'method': 'mppi'})
    with pytest.raises(ValueError, match='reward_fn must name'):
        train(lambda: None, SHORT_RUN, pendulum_reward)


def observations(n=20, seed=0):
    rng = np.random.default_rng(seed)
    theta = rng.uniform(-math.pi, math.pi, n)
    return np.stack([np.cos(theta), np.sin(theta), rng.uniform(-8.0, 8.0, n)], 1) \
        .astype(np.float32)


def test_linear_feedback_checkpoint_round_trip(tmp_path, spec):
    result = pendulum_lqr(spec)
    path = save_checkpoint(tmp_path / 'lqr', result.policy, algorithm='lqr', spec=spec,
                           config=result.config, provenance={'model': 'pendulum_step'})
    loaded = load_checkpoint(path, expected_spec=load_spec('pendulum'))
    assert loaded.manifest['network'] == {'type': 'linear_feedback', 'obs_dim': 3,
                                          'act_dim': 1, 'state_map': 'pendulum'}
    for obs in observations():
        action = loaded.act(obs)
        assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
        assert action[0] == pytest.approx(act_fn(result.policy)(obs)[0], abs=1e-6)


def test_mpc_checkpoint_round_trip(tmp_path, spec, short_run):
    path = save_checkpoint(tmp_path / 'mpc', short_run.policy, algorithm='mbrl', spec=spec,
                           config=short_run.config, provenance={'env_steps': 2000})
    loaded = load_checkpoint(path, expected_spec=load_spec('pendulum'))
    assert isinstance(loaded.network, MPCPolicy)
    # Loading probes the network once; both start from no warm start for the comparison.
    loaded.network.reset()
    short_run.policy.reset()
    for obs in observations(10):
        action = loaded.act(obs)
        assert action.shape == (1,) and -2.0 <= action[0] <= 2.0
        assert action[0] == pytest.approx(act_fn(short_run.policy)(obs)[0], abs=1e-6)
    short_run.policy.reset()
