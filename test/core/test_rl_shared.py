"""The shared RL pieces (core/rl/): replay buffer, evaluation, config base, torch settings."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.a2c import A2CConfig
from ilrl_ros.core.algorithms.ppo import PPOConfig
from ilrl_ros.core.algorithms.reinforce import REINFORCEConfig
from ilrl_ros.core.rl.buffers import ReplayBuffer
from ilrl_ros.core.rl.configs import config_dict
from ilrl_ros.core.rl.evaluation import as_learner, evaluate_policy, Evaluation
from ilrl_ros.core.rl.torch_settings import torch_settings


def test_replay_buffer_adds_every_environment_of_a_step_in_order_and_wraps():
    buffer = ReplayBuffer(obs_dim=1, act_shape=(), capacity=4, act_dtype=np.int64)
    obs = np.array([[0.0], [1.0], [2.0]])
    buffer.add(obs, [0, 1, 2], [0.0, 1.0, 2.0], obs + 10, [False, True, False])
    assert len(buffer) == 3
    assert buffer.actions.tolist() == [0, 1, 2, 0]
    assert buffer.terminated.tolist() == [0.0, 1.0, 0.0, 0.0]
    # Three more: one fills the last row, two wrap around to the front.
    buffer.add(obs + 3, [3, 4, 5], [3.0, 4.0, 5.0], obs + 13, [False, False, True])
    assert len(buffer) == 4
    assert buffer.actions.tolist() == [4, 5, 2, 3]
    assert buffer.obs[:, 0].tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buffer.next_obs[:, 0].tolist() == [14.0, 15.0, 12.0, 13.0]
    assert buffer.rewards.tolist() == [4.0, 5.0, 2.0, 3.0]
    assert buffer.terminated.tolist() == [0.0, 1.0, 0.0, 0.0]
    # A batch larger than the buffer: rows 0..5 go to positions 2, 3, 0, 1, 2, 3, so the
    # last four stay, where adding them one by one would have put them.
    big = np.arange(6, dtype=np.float64)[:, None]
    buffer.add(big, np.arange(6), big[:, 0], big, np.zeros(6))
    assert buffer.actions.tolist() == [2, 3, 4, 5]
    buffer.add(big[:1] + 100, [100], [0.0], big[:1], [0.0])
    assert buffer.actions.tolist() == [100, 3, 4, 5]


def test_evaluation_of_a_constant_policy_by_hand():
    # CartPole pushing right every step falls over in a number of steps set by the seed;
    # each step scores 1, so the return is the length.
    evaluation = evaluate_policy(lambda: gym.make('CartPole-v1'), lambda obs: 1, episodes=3,
                                 seed=5)
    assert isinstance(evaluation, Evaluation) and len(evaluation) == 3
    assert evaluation.seeds == [5, 6, 7]
    assert evaluation.returns == [float(n) for n in evaluation.lengths]
    assert evaluation.mean_return == pytest.approx(np.mean(evaluation.lengths))
    assert evaluation.success_rate == 0.0
    assert evaluation.summary()['episodes'] == 3
    assert [e['seed'] for e in evaluation.as_dict()['per_episode']] == [5, 6, 7]
    again = evaluate_policy(gym.make('CartPole-v1'), lambda obs: 1, episodes=3, seed=5)
    assert again.returns == evaluation.returns
    cut = evaluate_policy(lambda: gym.make('CartPole-v1'), lambda obs: 1, episodes=1,
                          seed=5, max_episode_steps=3)
    assert cut.lengths == [3] and cut.episodes[0].outcome == 'cut'
    assert math.isnan(Evaluation().mean_return) and not Evaluation()


def test_as_learner_takes_an_act_method_a_network_or_a_function():
    network = torch.nn.Linear(2, 1)
    assert as_learner(network).act([0.0, 0.0]).shape == (1,)
    assert as_learner(lambda obs: 7).act(None) == 7
    with pytest.raises(TypeError, match='act'):
        as_learner(3)


def test_on_policy_configs_share_the_base_presets_and_validation():
    assert A2CConfig.for_env('CartPole-v1', seed=4).seed == 4
    with pytest.raises(ValueError, match='REINFORCE has no presets'):
        REINFORCEConfig.for_env('CartPole-v1')
    with pytest.raises(ValueError, match='PPOConfig.num_steps must be a positive integer'):
        PPOConfig(num_steps=0)
    with pytest.raises(ValueError, match=r'A2CConfig.gae_lambda must lie in \[0, 1\]'):
        A2CConfig(gae_lambda=2.0)
    with pytest.raises(ValueError, match='PPOConfig.activation'):
        PPOConfig(activation='swish')
    with pytest.raises(ValueError, match='REINFORCEConfig.torch_threads'):
        REINFORCEConfig(torch_threads=0)
    assert config_dict(PPOConfig())['hidden'] == [64, 64]


def test_torch_settings_restore_what_they_changed():
    threads, precision = torch.get_num_threads(), torch.get_float32_matmul_precision()
    with torch_settings(1, 'medium', flush_denormal=True):
        assert torch.get_num_threads() == 1
        assert torch.get_float32_matmul_precision() == 'medium'
    assert torch.get_num_threads() == threads
    assert torch.get_float32_matmul_precision() == precision
    with pytest.raises(ValueError, match='matmul_precision'):
        with torch_settings(1, 'fast'):
            pass
