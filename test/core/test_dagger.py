"""DAgger: beta schedules, the per-step mixture, exact dataset growth, and DAgger vs BC."""

import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.bc import BCConfig, train
from ilrl_ros.core.algorithms.dagger import (
    beta_for_round,
    collection_seed,
    DAggerConfig,
    format_rounds,
    run,
)
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rollouts import aggregate, rollout
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env, make_expert



@pytest.fixture(scope='module')
def spec():
    return load_spec('track_follow')


class CountingExpert:
    """The task's expert, counting the states it is asked to label."""

    def __init__(self, spec):
        self.expert = make_expert(spec)
        self.calls = 0

    def act(self, readings):
        self.calls += 1
        return self.expert.act(readings)


class SlowStraight:
    """A learner that creeps straight ahead, whatever it sees."""

    def act(self, obs):
        return np.array([0.05, 0.0])


def test_beta_schedules():
    assert [beta_for_round('ross', i) for i in (1, 2, 3, 4)] == [1.0, 0.0, 0.0, 0.0]
    # p^(i-1) with p = 0.5: 1, 0.5, 0.25, 0.125.
    assert [beta_for_round('exponential', i, 0.5) for i in (1, 2, 3, 4)] == [
        1.0, 0.5, 0.25, 0.125]
    assert beta_for_round('exponential', 3, 0.9) == pytest.approx(0.81)
    with pytest.raises(ValueError, match='count from 1'):
        beta_for_round('ross', 0)
    with pytest.raises(ValueError, match='p in'):
        beta_for_round('exponential', 2, 1.5)
    with pytest.raises(ValueError, match="'linear' is not known"):
        beta_for_round('linear', 1)


def test_the_mixture_executes_the_expert_with_probability_beta(spec):
    env = make_env(spec)
    result = rollout(env, make_expert(spec), SlowStraight(), steps=2000, beta=0.3, seed=5)
    # 2000 draws of a Bernoulli(0.3): standard deviation sqrt(0.3 * 0.7 / 2000) = 0.010.
    fraction = result.from_expert.mean()
    assert abs(fraction - 0.3) < 0.04
    assert result.summary()['expert_fraction'] == pytest.approx(fraction)
    # The expert's steps execute its label; the learner's steps execute the learner.
    np.testing.assert_allclose(result.executed[result.from_expert],
                               result.data.actions[result.from_expert], atol=1e-6)
    np.testing.assert_array_equal(result.executed[~result.from_expert],
                                  np.tile([0.05, 0.0], ((~result.from_expert).sum(), 1)))
    # A fixed seed repeats the same draws and the same run.
    again = rollout(make_env(spec), make_expert(spec), SlowStraight(), steps=2000, beta=0.3,
                    seed=5)
    np.testing.assert_array_equal(again.from_expert, result.from_expert)
    np.testing.assert_array_equal(again.data.observations, result.data.observations)
    assert rollout(env, make_expert(spec), SlowStraight(), steps=50, beta=0.0,
                   seed=5).from_expert.sum() == 0
    with pytest.raises(ValueError, match='no learner'):
        rollout(env, make_expert(spec), None, steps=10, beta=0.5)


def test_rollout_records_one_labelled_row_per_visited_state(spec):
    expert = CountingExpert(spec)
    result = rollout(make_env(spec), expert, SlowStraight(), episodes=2, beta=0.5, seed=1,
                     max_episode_steps=60, episode_start=7)
    assert expert.calls == len(result.data) == sum(e.steps for e in result.episodes) == 120
    assert [e.episode for e in result.episodes] == [7, 8]
    assert np.array_equal(np.unique(result.data.episode), [7, 8])
    assert all(e.outcome == 'cut' for e in result.episodes)
    assert np.all(np.isfinite(result.data.reward)) and np.all(np.diff(result.data.stamp_ns) > 0)


def test_aggregate_keeps_episodes_apart(spec):
    def dataset(episode, value):
        n = len(episode)
        return Demonstrations(np.full((n, 38), value, np.float32), np.zeros((n, 2), np.float32),
                              np.array(episode), np.arange(n), np.zeros(n), spec.to_json(),
                              {'part': value})
    joined = aggregate([dataset([0, 0, 1], 1.0), dataset([0, 1, 1], 2.0), dataset([5], 3.0)])
    np.testing.assert_array_equal(joined.episode, [0, 0, 1, 2, 3, 3, 4])
    np.testing.assert_array_equal(joined.observations[:, 0], [1, 1, 1, 2, 2, 2, 3])
    assert [p['part'] for p in joined.info['aggregated']] == [1.0, 2.0, 3.0]
    # Aggregating an aggregate keeps the list of parts flat.
    again = aggregate([joined, dataset([0], 4.0)])
    assert [p['rows'] for p in again.info['aggregated']] == [3, 3, 1, 1]
    assert again.num_episodes == 6
    pendulum = load_spec('pendulum')
    other = Demonstrations(np.zeros((1, 3), np.float32), np.zeros((1, 1), np.float32),
                           np.array([0]), np.arange(1), np.zeros(1), pendulum.to_json())
    with pytest.raises(ValueError, match='different task contract'):
        aggregate([joined, other])


def test_the_dataset_grows_by_exactly_the_labelled_visited_states(spec):
    expert = CountingExpert(spec)
    labelled = []
    config = DAggerConfig(rounds=3, episodes_per_round=2, max_episode_steps=80,
                          eval_episodes=0, bc=BCConfig(steps=50, hidden=(16,), log_every=25))
    result = run(spec, config, progress=lambda i, n, m: labelled.append(expert.calls),
                 expert=expert)
    per_round = np.diff([0] + labelled)
    sizes = [r['dataset_size'] for r in result.rounds]
    assert [r['new_labels'] for r in result.rounds] == per_round.tolist()
    assert sizes == np.cumsum(per_round).tolist() and sizes[-1] == len(result.data)
    assert [r['beta'] for r in result.rounds] == [1.0, 0.0, 0.0]
    # Two episodes a round, kept apart: six in the aggregate.
    assert result.data.num_episodes == 6
    # Round 1 (beta = 1) is the expert alone: the same rows as an expert rollout.
    alone = rollout(make_env(spec), make_expert(spec), episodes=2,
                    seed=collection_seed(0, 1), max_episode_steps=80)
    np.testing.assert_array_equal(result.data.observations[:len(alone.data)],
                                  alone.data.observations)
    assert result.rounds[0]['expert_fraction'] == 1.0
    assert result.rounds[1]['expert_fraction'] == 0.0
    assert len(result.policies) == 3 and result.policy is result.policies[-1]
    assert '| 3 | 0 |' in format_rounds(result.rounds)


def test_two_rounds_of_dagger_beat_bc_on_as_many_expert_labels(spec):
    """DAgger with 2 x 300 labels against BC with 600 expert labels, on the same starts.

    BC's labels are one expert run from the start of DAgger's first round; DAgger has those
    first 300 plus 300 labels of the states its own policy visited. Both keep to the track
    here (it is noiseless); DAgger's policy stays nearer the centerline.
    """
    bc_config = BCConfig(steps=1000, hidden=(64, 64), log_every=500)
    result = run(spec, DAggerConfig(rounds=2, steps_per_round=300, eval_episodes=0,
                                    bc=bc_config))
    env = make_env(spec)
    expert_only = rollout(env, make_expert(spec), steps=600, seed=collection_seed(0, 1))
    bc = train(expert_only.data, bc_config).policy
    assert len(result.data) == len(expert_only.data) == 600
    bc_eval = evaluate_policy(env, bc, episodes=2, max_episode_steps=300).summary()
    dagger_eval = evaluate_policy(env, result.policy, episodes=2,
                                  max_episode_steps=300).summary()
    assert dagger_eval['collisions'] <= bc_eval['collisions']
    assert dagger_eval['mean_return'] >= 0.98 * bc_eval['mean_return']
    assert dagger_eval['mean_abs_lateral'] < bc_eval['mean_abs_lateral']


def test_warm_start_begins_from_the_previous_policy(spec):
    result = rollout(make_env(spec), make_expert(spec), steps=100, seed=0)
    config = BCConfig(steps=20, hidden=(16,), log_every=10)
    first = train(result.data, config).policy
    # With a zero learning rate the warm-started network is the previous one, normalisation
    # included.
    again = train(result.data, BCConfig(steps=5, hidden=(16,), lr=0.0, log_every=5),
                  init_policy=first).policy
    for name, tensor in first.state_dict().items():
        assert torch.equal(tensor, again.state_dict()[name]), name
    with pytest.raises(ValueError, match='init_policy does not fit'):
        train(result.data, BCConfig(steps=5, hidden=(8,)), init_policy=first)
    warm = run(spec, DAggerConfig(rounds=2, steps_per_round=60, eval_episodes=0,
                                  warm_start=True, bc=config))
    assert [r['dataset_size'] for r in warm.rounds] == [60, 120]
