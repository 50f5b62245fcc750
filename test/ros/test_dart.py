"""DART: the noise covariance estimate by hand; noisy execution with clean expert labels."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ilrl_ros.core.algorithms.bc import BCConfig
from ilrl_ros.core.algorithms.dart import (
    DARTConfig,
    learner_actions,
    noise_covariance,
    run,
)
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rollouts import noise_factor, rollout
from ilrl_ros.core.spec import load_spec, parse_spec, resolve_spec_path
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_testing import REPO



def test_noise_covariance_by_hand():
    expert = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    # Errors e = learner - expert: (1, 0), (0, 2), (1, 2).
    learner = np.array([[1.0, 1.0], [0.0, 3.0], [1.0, 3.0]])
    # sum e e^T = [[1,0],[0,0]] + [[0,0],[0,4]] + [[1,2],[2,4]] = [[2,2],[2,8]]; / 3 rows.
    np.testing.assert_allclose(noise_covariance(learner, expert),
                               [[2 / 3, 2 / 3], [2 / 3, 8 / 3]], rtol=1e-12)
    # Trace 10/3; alpha = 1 with horizon 1 scales by 1 / (10/3) = 0.3: trace becomes 1.
    np.testing.assert_allclose(noise_covariance(learner, expert, alpha=1.0),
                               [[0.2, 0.2], [0.2, 0.8]], rtol=1e-12)
    # Laskey et al.'s alpha / (T tr Sigma) with T = 10: scale 1 / (10 * 10/3) = 0.03.
    np.testing.assert_allclose(noise_covariance(learner, expert, alpha=1.0, horizon=10),
                               [[0.02, 0.02], [0.02, 0.08]], rtol=1e-12)
    with pytest.raises(ValueError, match='zero error'):
        noise_covariance(expert, expert, alpha=1.0)
    with pytest.raises(ValueError, match='equal non-empty'):
        noise_covariance(learner[:2], expert)


def test_noise_factor_reproduces_the_covariance():
    cov = np.array([[0.04, 0.01], [0.01, 0.25]])
    factor = noise_factor(cov, 2)
    np.testing.assert_allclose(factor @ factor.T, cov, atol=1e-12)
    np.testing.assert_allclose(noise_factor([0.1, 0.5], 2), np.diag([0.1, 0.5]))
    np.testing.assert_allclose(noise_factor(0.3, 2), np.diag([0.3, 0.3]))
    assert noise_factor(None, 2) is None and noise_factor(0.0, 2) is None
    with pytest.raises(ValueError, match='positive semi-definite'):
        noise_factor([[1.0, 0.0], [0.0, -1.0]], 2)
    with pytest.raises(ValueError, match='symmetric'):
        noise_factor([[1.0, 0.5], [0.0, 1.0]], 2)
    with pytest.raises(ValueError, match='expected 2'):
        noise_factor([0.1, 0.2, 0.3], 2)


def test_labels_are_the_clean_expert_action_while_the_executed_action_is_noisy():
    # Wide action bounds, so that no clip cuts the noise and executed - label is the noise.
    raw = yaml.safe_load(resolve_spec_path('track_follow').read_text())
    raw['action']['low'], raw['action']['high'] = [-2.0, -20.0], [2.0, 20.0]
    spec = parse_spec(raw)
    env, expert = make_env(spec), make_expert(spec)
    cov = np.array([[0.02 ** 2, 0.0], [0.0, 0.4 ** 2]])
    result = rollout(env, expert, episodes=1, noise=cov, seed=3, max_episode_steps=400)
    data = result.data
    assert len(data) == 400 and result.from_expert.all()
    # Replay the executed actions from the same start: at every visited state a fresh
    # expert's action is exactly the recorded label.
    replay_env, fresh = make_env(spec), make_expert(spec)
    obs, _ = replay_env.reset(seed=3)
    for t in range(len(data)):
        np.testing.assert_array_equal(obs.astype(np.float32), data.observations[t])
        np.testing.assert_allclose(fresh.act(replay_env.current_readings()), data.actions[t],
                                   rtol=1e-6, atol=1e-6)
        obs, *_ = replay_env.step(result.executed[t])
    # The executed actions differ from the labels by the injected noise: its sample
    # covariance is near the one asked for (400 draws: about 4 % error on a std).
    noise = result.executed - data.actions
    np.testing.assert_allclose(noise.std(axis=0), [0.02, 0.4], rtol=0.15)
    assert abs(noise.mean(axis=0)[1]) < 0.1 and abs(np.corrcoef(noise.T)[0, 1]) < 0.15
    # Without noise the expert executes its own label.
    clean = rollout(env, expert, steps=50, seed=3)
    np.testing.assert_allclose(clean.executed, clean.data.actions, atol=1e-6)
    # With the task's own bounds, executed actions stay inside them.
    task = load_spec('track_follow')
    noisy = rollout(make_env(task), make_expert(task), steps=100, noise=[0.1, 2.0], seed=3)
    assert np.all(noisy.executed >= task.action.low) and np.all(noisy.executed <= task.action.high)


def test_dart_sets_the_next_noise_to_the_learners_error_on_the_new_states():
    spec = load_spec('track_follow')
    config = DARTConfig(rounds=2, steps_per_round=150, eval_episodes=0,
                        initial_noise=[0.01, 0.2],
                        bc=BCConfig(steps=60, hidden=(16,), log_every=30))
    result = run(spec, config)
    first, second = result.rounds
    np.testing.assert_allclose(first['noise'], np.diag([0.01 ** 2, 0.2 ** 2]), atol=1e-12)
    assert [first['dataset_size'], second['dataset_size']] == [150, 300]
    # Round 2's noise is the covariance of (policy after round 1 - expert) on round 1's rows.
    expected = noise_covariance(learner_actions(result.policies[0],
                                                result.data.observations[:150]),
                                result.data.actions[:150])
    np.testing.assert_allclose(second['noise'], expected, rtol=1e-5, atol=1e-12)
    assert np.trace(expected) > 0
    assert result.next_noise.shape == (2, 2)


def test_collect_with_dart_from_the_command_line(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, '-m', 'ilrl_ros.cli', 'collect', '--task', 'track_follow', '--dart',
         '--rounds', '2', '--episodes', '1', '--max-episode-steps', '50', '--bc-steps', '20',
         '--noise-std', '0.01,0.1', '--policy-out', str(tmp_path / 'policy'), '-o',
         str(tmp_path / 'dart.npz')], cwd=REPO, env=env, capture_output=True, text=True,
        timeout=120)
    assert done.returncode == 0, done.stderr
    assert 'DART round 2/2' in done.stdout and 'next noise std' in done.stdout
    data = Demonstrations.load(tmp_path / 'dart.npz')
    assert len(data) == 100 and data.num_episodes == 2 and np.all(np.isfinite(data.reward))
    assert json.loads((tmp_path / 'policy' / 'manifest.json').read_text())['algorithm'] == 'dart'
