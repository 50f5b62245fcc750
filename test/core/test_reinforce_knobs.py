"""REINFORCE's knobs: full return or reward-to-go, the baselines, the entropy decay, an offset.

Known answers computed by hand on 3-step episodes, properties of the offset (a baseline per
time step removes it exactly when episodes have one length), refused knob values, and
short runs with each knob.
"""

import math

import gymnasium as gym
from hypothesis import given, settings, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms import reinforce
from ilrl_ros.core.algorithms.reinforce import REINFORCEConfig


# The returns by hand.

def test_full_return_and_reward_to_go_of_a_three_step_episode_by_hand():
    # Rewards 1, 2, 3, gamma 0.5. Reward-to-go: G_2 = 3, G_1 = 2 + 0.5 * 3 = 3.5,
    # G_0 = 1 + 0.5 * 3.5 = 2.75. The full return is G_0 = 2.75 at every step.
    rewards, done = np.array([[1.0], [2.0], [3.0]]), np.array([[0.0], [0.0], [1.0]])
    to_go = reinforce.step_returns('reward_to_go', rewards, done, 0.5)
    full = reinforce.step_returns('full', rewards, done, 0.5)
    np.testing.assert_allclose(to_go[:, 0], [2.75, 3.5, 3.0])
    np.testing.assert_allclose(full[:, 0], [2.75, 2.75, 2.75])
    # gamma 1: reward-to-go 6, 5, 3; full 6 everywhere.
    np.testing.assert_allclose(reinforce.step_returns('reward_to_go', rewards, done, 1.0)[:, 0],
                               [6.0, 5.0, 3.0])
    np.testing.assert_allclose(reinforce.batch_full_return(rewards, done, 1.0)[:, 0], [6.0] * 3)


def test_full_return_restarts_at_every_episode_end_by_hand():
    # Env 0 runs episodes [1, 2 | 3]; env 1 one episode [1, 1, 1]; gamma 0.5.
    # Env 0: first episode 1 + 0.5 * 2 = 2 on both its steps, then 3. Env 1: 1.75 thrice.
    rewards = np.array([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]])
    done = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]])
    np.testing.assert_allclose(reinforce.batch_full_return(rewards, done, 0.5),
                               [[2.0, 1.75], [2.0, 1.75], [3.0, 1.75]])
    np.testing.assert_array_equal(reinforce.episode_step_index(done), [[0, 0], [1, 1], [0, 2]])
    with pytest.raises(ValueError, match='returns'):
        reinforce.step_returns('monte_carlo', rewards, done, 0.5)


def test_an_offset_adds_a_known_amount_to_the_returns_by_hand():
    # Offset 10 on rewards 1, 2, 3, gamma 0.5: rewards 11, 12, 13.
    # Reward-to-go: 13, 12 + 6.5 = 18.5, 11 + 9.25 = 20.25; i.e. the old returns plus
    # 10 (1 - 0.5^(3 - t)) / (1 - 0.5) = 17.5, 15, 10. Full return: 20.25 at every step.
    # A step outside the episodes (mask 0) stays 0 and adds nothing.
    rewards = np.array([[1.0], [2.0], [3.0], [5.0]])
    done = np.array([[0.0], [0.0], [1.0], [0.0]])
    mask = np.array([[1.0], [1.0], [1.0], [0.0]])
    seen = reinforce.offset_rewards(rewards, mask, 10.0)
    np.testing.assert_allclose(seen[:, 0], [11.0, 12.0, 13.0, 0.0])
    np.testing.assert_allclose(reinforce.step_returns('reward_to_go', seen, done, 0.5)[:3, 0],
                               [20.25, 18.5, 13.0])
    np.testing.assert_allclose(reinforce.step_returns('full', seen, done, 0.5)[:3, 0],
                               [20.25] * 3)


def test_batch_mean_and_time_mean_baselines_by_hand():
    # Two episodes of two steps: returns 3, 1 (t = 0, 1) and 5, 2 (t = 0, 1).
    # Batch mean: (3 + 1 + 5 + 2) / 4 = 2.75. Per time step: t=0 (3 + 5) / 2 = 4,
    # t=1 (1 + 2) / 2 = 1.5. A step index seen once is its own mean.
    returns = torch.tensor([3.0, 1.0, 5.0, 2.0])
    step_index = torch.tensor([0, 1, 0, 1])
    values = torch.zeros(4)
    assert reinforce.baseline_values('batch_mean', returns, values).tolist() == [2.75] * 4
    assert reinforce.baseline_values('time_mean', returns, values,
                                     step_index).tolist() == [4.0, 1.5, 4.0, 1.5]
    uneven = reinforce.baseline_values('time_mean', torch.tensor([3.0, 1.0, 5.0]), values[:3],
                                       torch.tensor([0, 1, 0]))
    assert uneven.tolist() == [4.0, 1.0, 4.0]
    with pytest.raises(ValueError, match='step index'):
        reinforce.baseline_values('time_mean', returns, values)


@settings(max_examples=40, deadline=None)
@given(rewards=st.lists(st.floats(-5, 5), min_size=12, max_size=12),
       offset=st.floats(-100, 100), gamma=st.sampled_from([0.5, 0.9, 1.0]))
def test_a_per_step_mean_removes_any_offset_when_episodes_have_one_length(rewards, offset,
                                                                          gamma):
    # Four episodes of three steps (one per column): G_t + offset * sum_k<3-t gamma^k has the
    # same per-step mean shift, so G - b does not move; a batch-wide mean removes it only
    # from the full return (every step gains the same amount).
    rewards = np.array(rewards).reshape(3, 4)
    done = np.zeros((3, 4))
    done[-1] = 1.0
    mask = np.ones((3, 4))
    step_index = torch.from_numpy(reinforce.episode_step_index(done).reshape(-1))

    def advantages(kind, baseline, c):
        returns = torch.as_tensor(reinforce.step_returns(
            kind, reinforce.offset_rewards(rewards, mask, c), done, gamma).reshape(-1))
        return returns - reinforce.baseline_values(baseline, returns, returns, step_index)

    tolerance = 1e-9 * (1 + abs(offset)) * 3
    for kind, baseline in (('reward_to_go', 'time_mean'), ('full', 'time_mean'),
                           ('full', 'batch_mean')):
        np.testing.assert_allclose(advantages(kind, baseline, offset),
                                   advantages(kind, baseline, 0.0), atol=tolerance)


def test_entropy_weight_schedules_by_hand():
    assert reinforce.entropy_coefficient('constant', 0.1, 0.0, 0.7) == 0.1
    assert reinforce.entropy_coefficient('linear', 0.1, 0.0, 0.5) == pytest.approx(0.05)
    assert reinforce.entropy_coefficient('linear', 0.1, 0.02, 1.0) == pytest.approx(0.02)
    # Geometric: 0.1 * (0.001 / 0.1)^0.5 = 0.01.
    assert reinforce.entropy_coefficient('exponential', 0.1, 0.001, 0.5) == pytest.approx(0.01)
    # Past total_steps (the last batch may overshoot) the end value holds.
    assert reinforce.entropy_coefficient('linear', 0.1, 0.0, 1.3) == pytest.approx(0.0)
    with pytest.raises(ValueError, match='ent_decay'):
        reinforce.entropy_coefficient('cosine', 0.1, 0.0, 0.5)


# Bad knob values are refused, naming the field.

@given(value=st.text(max_size=12).filter(lambda v: v not in reinforce.RETURNS))
def test_unknown_returns_are_refused(value):
    with pytest.raises(ValueError, match=r'REINFORCEConfig\.returns .* reward_to_go, full'):
        REINFORCEConfig(returns=value)


@given(value=st.text(max_size=12).filter(lambda v: v not in reinforce.ALL_BASELINES))
def test_unknown_baselines_are_refused(value):
    with pytest.raises(ValueError, match=r'REINFORCEConfig\.baseline .* time_mean'):
        REINFORCEConfig(baseline=value)


@given(value=st.text(max_size=12).filter(lambda v: v not in reinforce.ENT_DECAYS))
def test_unknown_entropy_decays_are_refused(value):
    with pytest.raises(ValueError, match=r'REINFORCEConfig\.ent_decay .* exponential'):
        REINFORCEConfig(ent_decay=value)


@given(field=st.sampled_from(['ent_coef', 'ent_coef_end', 'reward_offset']),
       value=st.sampled_from([math.nan, math.inf, -math.inf, '1', None, True]))
def test_numbers_that_are_not_finite_are_refused(field, value):
    with pytest.raises(ValueError, match=rf'REINFORCEConfig\.{field} must be a finite number'):
        REINFORCEConfig(**{field: value})


@given(field=st.sampled_from(['ent_coef', 'ent_coef_end']),
       value=st.floats(max_value=-1e-12, allow_nan=False, allow_infinity=False))
def test_negative_entropy_weights_are_refused(field, value):
    with pytest.raises(ValueError, match=rf'REINFORCEConfig\.{field} must be >= 0'):
        REINFORCEConfig(**{field: value})


def test_an_exponential_decay_needs_two_positive_ends():
    with pytest.raises(ValueError, match='exponential needs ent_coef > 0 and ent_coef_end > 0'):
        REINFORCEConfig(ent_coef=0.01, ent_decay='exponential')
    REINFORCEConfig(ent_coef=0.01, ent_coef_end=1e-4, ent_decay='exponential')
    REINFORCEConfig(ent_coef=0.01, ent_decay='linear')  # to 0


@given(offset=st.floats(-1e6, 1e6), returns=st.sampled_from(reinforce.RETURNS),
       baseline=st.sampled_from(reinforce.ALL_BASELINES))
def test_good_knob_values_are_accepted(offset, returns, baseline):
    config = REINFORCEConfig(reward_offset=offset, returns=returns, baseline=baseline)
    assert (config.reward_offset, config.returns, config.baseline) == (offset, returns, baseline)


# Short runs.

def pendulum():
    return gym.make('Pendulum-v1')


def _rows(log, name):
    return [row['value'] for row in log.rows if row['name'] == name]


def test_the_offset_reaches_the_learner_not_the_logged_return():
    # One batch of two Pendulum-v1 episodes (200 steps each, whatever the policy). The
    # episodes are collected before any update, so every run sees the same ones, and the
    # logged return is the env's own (negative), not 200 * 1000 more. The learner sees the
    # offset: with no baseline the loss changes sign and grows about a hundredfold; the
    # per-step mean removes it (up to float32 rounding of returns near 1e5).
    def first(baseline, offset):
        config = REINFORCEConfig(total_steps=400, num_envs=2, baseline=baseline,
                                 reward_offset=offset, hidden=(16,), seed=3)
        result = reinforce.train(pendulum, config)
        assert result.config['reward_offset'] == offset
        return (_rows(result.log, 'rollout/ep_return')[0],
                _rows(result.log, 'train/policy_loss')[0])

    plain_return, plain_loss = first('none', 0.0)
    shifted_return, shifted_loss = first('none', 1000.0)
    assert plain_return == shifted_return < 0
    assert plain_loss < 0 < shifted_loss and shifted_loss > 20 * abs(plain_loss)
    per_step = [first('time_mean', offset) for offset in (0.0, 1000.0)]
    assert per_step[0][0] == per_step[1][0] == plain_return
    assert per_step[0][1] == pytest.approx(per_step[1][1], abs=1e-2)


def test_the_entropy_weight_decays_over_the_run():
    config = REINFORCEConfig(total_steps=1200, num_envs=2, hidden=(16,), ent_coef=0.1,
                             ent_decay='linear', ent_coef_end=0.0, baseline='batch_mean')
    weights = _rows(reinforce.train(pendulum, config).log, 'train/ent_coef')
    # Batches of 400 steps start at 0, 400 and 800 of 1200 steps.
    np.testing.assert_allclose(weights, [0.1, 0.1 * 2 / 3, 0.1 / 3], rtol=1e-6)


@pytest.mark.parametrize('knobs', [
    {'returns': 'full', 'baseline': 'none'},
    {'returns': 'full', 'baseline': 'value'},
    {'baseline': 'time_mean', 'reward_offset': -5.0},
    {'ent_coef': 0.01, 'ent_decay': 'exponential', 'ent_coef_end': 0.001},
])
def test_each_knob_trains_on_cartpole(knobs):
    config = REINFORCEConfig(total_steps=300, num_envs=2, hidden=(16,), **knobs)
    result = reinforce.train(lambda: gym.make('CartPole-v1'), config)
    assert result.env_steps >= 300
    assert all(math.isfinite(v) for v in _rows(result.log, 'train/policy_loss'))
    assert {k: result.config[k] for k in knobs} == knobs
