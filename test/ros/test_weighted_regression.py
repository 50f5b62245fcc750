"""RWR and AWR: returns, weights and advantages by hand; weighted BC follows the weights."""

import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms import awr, rwr
from ilrl_ros.core.algorithms.awr import AWRConfig, awr_weights, td_lambda_returns
from ilrl_ros.core.algorithms.bc import BCConfig, check_weights, mean_one, train
from ilrl_ros.core.algorithms.rwr import RWRConfig, rwr_weights
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rollouts import aggregate, rollout
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.weighted import effective_sample_size, returns_to_go
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_testing import REPO



@pytest.fixture(scope='module')
def spec_json():
    return load_spec('track_follow').to_json()


def tiny(spec_json, reward):
    """Two episodes: rows 0-2 (rewards 1, 2, 3) and rows 3-4 (rewards 10, -1)."""
    n = len(reward)
    return Demonstrations(observations=np.arange(n * 3, dtype=np.float32).reshape(n, 3),
                          actions=np.zeros((n, 2), np.float32),
                          episode=np.array([0, 0, 0, 1, 1]), stamp_ns=np.arange(n),
                          reward=np.asarray(reward, dtype=np.float64), spec_json=spec_json)


def test_returns_to_go_by_hand(spec_json):
    data = tiny(spec_json, [1.0, 2.0, 3.0, 10.0, -1.0])
    # gamma = 0.5. Episode 0: R2 = 3, R1 = 2 + 0.5 * 3 = 3.5, R0 = 1 + 0.5 * 3.5 = 2.75.
    # Episode 1: R4 = -1, R3 = 10 + 0.5 * -1 = 9.5 (nothing flows across episodes).
    np.testing.assert_allclose(returns_to_go(data.reward, data.episode, 0.5),
                               [2.75, 3.5, 3.0, 9.5, -1.0])


def test_rwr_weights_by_hand(spec_json):
    returns = np.array([2.75, 3.5, 3.0, 9.5, -1.0])
    # beta = 2: exp((R - 9.5) / 2) = exp(-3.375), exp(-3), exp(-3.25), 1, exp(-5.25).
    np.testing.assert_allclose(rwr_weights(returns, 2.0),
                               [0.034218118, 0.049787068, 0.038774208, 1.0, 0.005247518],
                               rtol=1e-7)
    # Subtracting the max keeps huge returns finite; ratios are exp(delta R / beta).
    np.testing.assert_allclose(rwr_weights(np.array([1000.0, 999.0]), 1.0),
                               [1.0, math.exp(-1.0)])
    with pytest.raises(ValueError, match='beta must be > 0'):
        rwr_weights(returns, 0.0)
    # (sum w)^2 / sum w^2: equal weights count fully; one dominant weight counts once.
    assert effective_sample_size(np.ones(4)) == pytest.approx(4.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)


def test_td_lambda_returns_by_hand():
    reward = np.array([1.0, 2.0, 3.0])
    values = np.array([0.5, 1.0, 2.0])
    episode = np.array([0, 0, 1])
    # gamma 0.9, lambda 0.5. Each episode's last row bootstraps nothing: R1 = 2, R2 = 3.
    # R0 = 1 + 0.9 * ((1 - 0.5) * V(s1) + 0.5 * R1) = 1 + 0.9 * (0.5 + 1.0) = 2.35.
    np.testing.assert_allclose(td_lambda_returns(reward, values, episode, 0.9, 0.5),
                               [2.35, 2.0, 3.0])
    # lambda = 1: the Monte Carlo return 1 + 0.9 * 2 = 2.8; lambda = 0: 1 + 0.9 * 1.0 = 1.9.
    np.testing.assert_allclose(td_lambda_returns(reward, values, episode, 0.9, 1.0),
                               [2.8, 2.0, 3.0])
    np.testing.assert_allclose(td_lambda_returns(reward, values, episode, 0.9, 0.0),
                               [1.9, 2.0, 3.0])


def test_awr_weights_by_hand():
    # beta 0.5, w_max 20: exp(0) = 1, exp(2) = 7.389056, exp(-4) = 0.018316, exp(20) -> 20.
    np.testing.assert_allclose(awr_weights(np.array([0.0, 1.0, -2.0, 10.0]), 0.5, 20.0),
                               [1.0, 7.389056099, 0.018315639, 20.0], rtol=1e-8)
    assert awr_weights(np.array([1e6]), 1.0, 20.0)[0] == 20.0  # no overflow on the way


def test_sample_weights_are_checked():
    np.testing.assert_allclose(mean_one(np.array([1.0, 3.0, 0.0, 0.0])), [1.0, 3.0, 0.0, 0.0])
    np.testing.assert_allclose(mean_one(np.array([2.0, 6.0])), [0.5, 1.5])
    with pytest.raises(ValueError, match=r'expected one weight per dataset row \(3,\)'):
        check_weights(np.ones(2), 3)
    with pytest.raises(ValueError, match='1 of 3 are not finite'):
        check_weights([1.0, np.nan, 1.0], 3)
    with pytest.raises(ValueError, match='1 of 3 are negative'):
        check_weights([1.0, -0.5, 1.0], 3)
    with pytest.raises(ValueError, match='all 3 are zero'):
        check_weights(np.zeros(3), 3)


def test_rows_without_reward_are_refused_with_the_reason(spec_json):
    data = tiny(spec_json, [1.0, np.nan, 3.0, np.nan, 0.0])
    for module, config in ((rwr, RWRConfig()), (awr, AWRConfig())):
        with pytest.raises(ValueError, match=r'2 of 5 dataset rows have no reward.*reward '
                           r'topic'):
            module.train(data, config)


def conflicting(spec_json, n=400):
    """The same states labelled twice: a = W s (rows 0..n-1) and a = -W s (rows n..2n-1)."""
    rng = np.random.default_rng(0)
    states = rng.uniform(-1.0, 1.0, size=(n, 3)).astype(np.float32)
    w = np.array([[0.5, -0.3, 0.2], [0.1, 0.4, -0.2]], dtype=np.float32)
    episode = np.tile(np.repeat(np.arange(10), n // 10), 2)
    return Demonstrations(np.concatenate([states, states]),
                          np.concatenate([states @ w.T, -states @ w.T]), episode,
                          np.arange(2 * n), np.zeros(2 * n), spec_json), states, w


def test_weighted_bc_learns_the_half_that_has_weight(spec_json):
    data, states, w = conflicting(spec_json)
    n = len(states)
    config = BCConfig(head='deterministic', steps=600, lr=3e-3, hidden=(32, 32),
                      log_every=300)
    for first, sign in ((1.0, 1.0), (0.0, -1.0)):
        weights = np.concatenate([np.full(n, first), np.full(n, 1.0 - first)])
        policy = train(data, config, weights=weights).policy
        with torch.no_grad():
            predicted = policy(torch.from_numpy(states)).numpy()
        np.testing.assert_allclose(predicted, sign * states @ w.T, atol=0.08)
    # Unweighted, the two labels average out to about zero.
    policy = train(data, config).policy
    with torch.no_grad():
        assert np.abs(policy(torch.from_numpy(states)).numpy()).max() < 0.15


def test_unit_weights_train_exactly_as_no_weights(spec_json):
    data, _, _ = conflicting(spec_json, n=100)
    config = BCConfig(steps=30, hidden=(8,), log_every=10)
    plain = train(data, config)
    ones = train(data, config, weights=np.ones(len(data)))
    assert plain.train_loss == ones.train_loss and plain.val_loss == ones.val_loss
    for a, b in zip(plain.policy.parameters(), ones.policy.parameters()):
        assert torch.equal(a, b)


def test_awr_prefers_the_expert_in_mixed_track_data():
    """Expert laps and noisy-driver laps (labelled with what the noisy driver did)."""
    spec = load_spec('track_follow')
    env, expert = make_env(spec), make_expert(spec)
    good = rollout(env, expert, episodes=2, seed=0, max_episode_steps=300)
    bad = rollout(env, expert, episodes=2, seed=0, max_episode_steps=300,
                  noise=[0.1, 2.0]).with_executed_labels()
    data = aggregate([good.data, bad])
    is_expert = np.arange(len(data)) < len(good.data)
    result = awr.train(data, AWRConfig(beta=0.5, value_rounds=3, value_steps=150,
                                       bc=BCConfig(steps=300, hidden=(32, 32),
                                                   log_every=150)))
    # The noisy driver's actions did worse than V expected; the expert's did better.
    assert result.advantages[is_expert].mean() > 0 > result.advantages[~is_expert].mean()
    assert result.weights[is_expert].mean() > 2 * result.weights[~is_expert].mean()
    assert np.all(result.weights <= 20.0)


def _ilrl(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.run([sys.executable, '-m', 'ilrl_ros.cli', *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


def test_collect_mixed_data_and_train_rwr_and_awr_from_the_command_line(tmp_path):
    data = str(tmp_path / 'mixed.npz')
    done = _ilrl('collect', '--task', 'track_follow', '--episodes', '1', '--max-episode-steps',
                 '60', '-o', data)
    assert done.returncode == 0, done.stderr
    done = _ilrl('collect', '--task', 'track_follow', '--episodes', '2', '--max-episode-steps',
                 '60', '--noise-std', '0.1,2.0', '--label', 'executed', '--append', '--seed',
                 '5', '-o', data)
    assert done.returncode == 0, done.stderr
    assert 'wrote' in done.stdout and '180 rows, 3 episodes' in done.stdout
    mixed = Demonstrations.load(data)
    assert np.all(np.isfinite(mixed.reward)) and mixed.num_episodes == 3
    for algorithm in ('rwr', 'awr'):
        done = _ilrl('train', algorithm, '--data', data, '-o', str(tmp_path / algorithm),
                     '--log-dir', str(tmp_path / f'{algorithm}_logs'), '--steps', '20',
                     '--hidden', '16', '--beta', '2')
        assert done.returncode == 0, done.stderr
        assert 'effective sample size' in done.stdout
        manifest = json.loads((tmp_path / algorithm / 'manifest.json').read_text())
        assert manifest['algorithm'] == algorithm and manifest['config']['beta'] == 2.0
        assert (tmp_path / f'{algorithm}_logs' / 'curves.png').stat().st_size > 1000
    # A dataset converted from a bag without the reward topic is refused with the reason.
    no_reward = Demonstrations(mixed.observations, mixed.actions, mixed.episode,
                               mixed.stamp_ns, np.full(len(mixed), np.nan), mixed.spec_json)
    no_reward.save(tmp_path / 'no_reward.npz')
    done = _ilrl('train', 'awr', '--data', str(tmp_path / 'no_reward.npz'), '-o',
                 str(tmp_path / 'never'))
    assert done.returncode == 2 and 'Traceback' not in done.stderr
    assert '180 of 180 dataset rows have no reward' in done.stderr
    assert not (tmp_path / 'never').exists()
