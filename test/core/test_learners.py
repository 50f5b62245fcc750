"""Off-policy learners apart from their loops; mixed sampling; replay buffers from datasets."""

import math
import re

import gymnasium as gym
from hypothesis import given, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.dqn import DiscretizedActions
from ilrl_ros.core.algorithms.sac import SACConfig
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.data import DatasetError, Demonstrations
from ilrl_ros.core.rl.buffers import buffer_from_dataset, ReplayBuffer, sample_mixed
from ilrl_ros.core.rl.evaluation import evaluate_policy
from ilrl_ros.core.rl.learners import make_learner, OFF_POLICY
from ilrl_ros.core.rl.torch_settings import seed_everything
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env

BOX = gym.spaces.Box(np.array([-2.0, -1.0], dtype=np.float32),
                     np.array([2.0, 3.0], dtype=np.float32))
SMALL = {'hidden': (16,), 'batch_size': 8, 'learning_starts': 10}


def snapshot(module: torch.nn.Module) -> list:
    return [p.detach().clone() for p in module.parameters()]


def same(module: torch.nn.Module, before: list) -> bool:
    return all(torch.equal(p, q) for p, q in zip(module.parameters(), before))


def filled_buffer(learner, rng, n: int = 32) -> ReplayBuffer:
    """A buffer of n random transitions (3-value observations, actions in task units)."""
    buffer = learner.make_buffer(n)
    actions = rng.uniform(BOX.low, BOX.high, (n, 2)).astype(np.float32)
    buffer.add(rng.normal(size=(n, 3)), learner.to_buffer(actions), rng.normal(size=n),
               rng.normal(size=(n, 3)), (rng.random(n) < 0.1).astype(np.float32))
    return buffer


# ---------------------------------------------------------------- learners

@pytest.mark.parametrize('algorithm', OFF_POLICY)
def test_an_update_moves_the_policy_and_reports_finite_metrics(algorithm):
    rng = seed_everything(0)
    learner = make_learner(algorithm, 3, BOX, SMALL)
    buffer = filled_buffer(learner, rng)
    before = snapshot(learner.policy)
    # Two steps: TD3's actor moves on every second one (policy_delay 2).
    metrics = [learner.update(buffer.sample(8, rng)) for _ in range(2)]
    assert learner.updates == 2
    assert not same(learner.policy, before)
    for step in metrics:
        assert step and all(isinstance(v, float) and math.isfinite(v) for v in step.values())


def test_td3_moves_its_actor_and_targets_every_policy_delay_critic_steps():
    rng = seed_everything(0)
    learner = make_learner('td3', 3, BOX, {**SMALL, 'policy_delay': 3})
    buffer = filled_buffer(learner, rng)
    actor, targets = snapshot(learner.actor), snapshot(learner.target_critics)
    for _ in range(2):
        assert 'actor_loss' not in learner.update(buffer.sample(8, rng))
    assert same(learner.actor, actor) and same(learner.target_critics, targets)
    assert 'actor_loss' in learner.update(buffer.sample(8, rng))
    assert not same(learner.actor, actor) and not same(learner.target_critics, targets)


def test_dqn_target_follows_every_target_update_interval_environment_steps():
    rng = seed_everything(0)
    learner = make_learner('dqn', 3, BOX, {**SMALL, 'target_update_interval': 5, 'tau': 1.0})
    buffer = filled_buffer(learner, rng)
    initial = snapshot(learner.q)
    learner.set_progress(4)
    learner.update(buffer.sample(8, rng))
    assert same(learner.target, initial) and not same(learner.q, initial)
    online = snapshot(learner.q)
    learner.set_progress(5)  # a target update is due before this gradient step
    learner.update(buffer.sample(8, rng))
    assert same(learner.target, online)
    learner.set_progress(9)
    learner.update(buffer.sample(8, rng))
    assert same(learner.target, online)


def test_acting_is_uniform_in_the_warm_up_then_follows_the_policy():
    seed_everything(0)
    learner = make_learner('sac', 3, BOX, SMALL)
    obs = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    action = learner.act(obs, explore=True, rng=np.random.default_rng(1))
    uniform = np.random.default_rng(1).uniform(-1.0, 1.0, 2)
    np.testing.assert_allclose(action, BOX.low + (uniform + 1.0) * (BOX.high - BOX.low) / 2,
                               rtol=1e-6)
    learner.set_progress(10)
    explored = learner.act(obs, explore=True, rng=np.random.default_rng(1))
    assert np.all(explored >= BOX.low) and np.all(explored <= BOX.high)
    greedy = learner.act(obs)
    with torch.inference_mode():
        np.testing.assert_array_equal(greedy, learner.policy(torch.as_tensor(obs)[None])[0])
    with pytest.raises(ValueError, match='needs rng'):
        learner.act(obs, explore=True)


def test_td3_explores_with_clipped_gaussian_noise_of_its_std():
    seed_everything(0)
    learner = make_learner('td3', 3, BOX, {**SMALL, 'action_noise': 0.3})
    learner.set_progress(10)
    obs = np.zeros(3, dtype=np.float32)
    mean = learner.choose(obs)
    noise = np.random.default_rng(2).normal(0.0, 0.3, 2)
    np.testing.assert_allclose(learner.choose(obs, True, np.random.default_rng(2)),
                               np.clip(mean + noise, -1.0, 1.0), rtol=1e-6)


def test_dqn_is_epsilon_greedy_on_its_schedule():
    seed_everything(0)
    learner = make_learner('dqn', 3, gym.spaces.Discrete(4), {
        **SMALL, 'total_steps': 100, 'exploration_fraction': 0.5,
        'exploration_final_eps': 0.0})
    obs = np.zeros(3, dtype=np.float32)
    learner.set_progress(25)
    assert learner.epsilon == pytest.approx(0.5)
    learner.set_progress(50)
    assert learner.epsilon == 0.0
    greedy = learner.act(obs)
    assert np.array_equal(learner.act(obs, True, np.random.default_rng(0)), greedy)
    with torch.inference_mode():
        assert greedy.tolist() == learner.policy(torch.as_tensor(obs)[None])[0].tolist()


def test_actions_convert_between_the_task_and_the_buffer():
    seed_everything(0)
    sac = make_learner('sac', 3, BOX, SMALL)
    normalized = np.random.default_rng(0).uniform(-1, 1, (5, 2)).astype(np.float32)
    np.testing.assert_allclose(sac.to_buffer(sac.to_env(normalized)), normalized, atol=1e-6)
    assert sac.to_buffer([[9.0, -9.0]]).tolist() == [[1.0, -1.0]]
    with pytest.raises(ValueError, match='expected'):
        sac.to_buffer(np.zeros((5, 3)))
    dqn = make_learner('dqn', 3, BOX, SMALL, bins=3)
    assert dqn.to_buffer(dqn.action_table).tolist() == list(range(9))
    assert dqn.to_buffer([[1.9, 0.9], [-0.1, -0.8]]).tolist() == [7, 3]
    assert dqn.to_env([7]).tolist() == [[2.0, 1.0]]


def test_make_learner_builds_from_a_gymnasium_space_and_a_config():
    seed_everything(0)
    assert type(make_learner('ddpg', 3, BOX, SMALL)).__name__ == 'DDPGLearner'
    dqn = make_learner('dqn', 3, BOX, SMALL, bins=3)
    wrapped = DiscretizedActions(gym.make('Pendulum-v1'), bins=3)
    assert dqn.n_actions == 9 and dqn.policy.action_table.shape == (9, 2)
    assert make_learner('dqn', 3, wrapped.env.action_space, SMALL, bins=3).action_table \
        .tolist() == wrapped.action_table.tolist()
    counted = make_learner('dqn', 3, gym.spaces.Discrete(3, start=1), SMALL)
    assert counted.action_table.tolist() == [[1.0], [2.0], [3.0]]
    config = SACConfig(hidden=(8,))
    sac = make_learner('sac', 3, BOX, config)
    assert sac.config is config and sac.policy.hidden == (8,)
    assert make_learner('sac', 3, BOX).config == SACConfig()
    with pytest.raises(ValueError, match='off-policy'):
        make_learner('ppo', 3, BOX)
    with pytest.raises(ValueError, match='1-D Box'):
        make_learner('td3', 3, gym.spaces.Discrete(3))
    with pytest.raises(ValueError, match='finite action bounds'):
        make_learner('sac', 3, gym.spaces.Box(-np.inf, np.inf, (2,)))
    with pytest.raises(ValueError, match='takes a TD3Config'):
        make_learner('td3', 3, BOX, config)
    with pytest.raises(ValueError, match='no setting'):
        make_learner('sac', 3, BOX, {'policy_delay': 2})


def test_a_hand_written_sac_loop_swings_the_pendulum_and_checkpoints(tmp_path):
    spec = load_spec('pendulum')
    rng = seed_everything(0)
    env = make_env(spec)
    learner = make_learner('sac', env.observation_space.shape[0], env.action_space, {
        'hidden': (64, 64), 'batch_size': 128, 'lr': 1e-3, 'learning_starts': 200})
    buffer = learner.make_buffer(3000)
    obs, _ = env.reset(seed=0)
    for step in range(3000):
        learner.set_progress(step)
        action = learner.act(obs, explore=True, rng=rng)
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(obs[None], learner.to_buffer(action[None]), [reward], next_obs[None],
                   [float(terminated)])
        obs = env.reset()[0] if terminated or truncated else next_obs
        if step >= 200:
            learner.update(buffer.sample(128, rng))
    assert learner.updates == 2800
    trained = evaluate_policy(lambda: make_env(spec), learner, episodes=3).mean_return
    uniform = evaluate_policy(lambda: make_env(spec), lambda o: rng.uniform(-2, 2, 1),
                              episodes=3).mean_return
    # Uniform torques score about -1400 here; seed 0 reaches about -500.
    assert trained > uniform + 400, (trained, uniform)
    path = save_checkpoint(tmp_path / 'sac', learner.policy, algorithm='sac', spec=spec,
                           config={}, provenance={})
    np.testing.assert_allclose(load_checkpoint(path, spec).act(obs), learner.act(obs),
                               rtol=1e-6)


# ---------------------------------------------------------------- mixed sampling

def constant_buffer(value: float, n: int = 50) -> ReplayBuffer:
    """A buffer of n transitions whose observations and rewards all equal ``value``."""
    return ReplayBuffer.from_arrays(np.full((n, 2), value), np.zeros((n, 1)),
                                    np.full(n, value), np.full((n, 2), value), np.zeros(n))


@pytest.mark.parametrize('fraction, demo_rows', [(0.5, 32), (0.25, 16), (0.0, 0),
                                                 (1.0, 64), (0.3, 19)])
def test_mixed_minibatches_take_the_demo_fraction_from_the_demonstrations(fraction,
                                                                          demo_rows):
    batch = sample_mixed(constant_buffer(0.0), constant_buffer(1.0), 64, fraction,
                         np.random.default_rng(0))
    assert batch.rewards.tolist() == [0.0] * (64 - demo_rows) + [1.0] * demo_rows
    assert batch.obs.shape == (64, 2) and batch.next_obs[:, 0].tolist() == batch.rewards.tolist()


def test_mixed_sampling_falls_back_to_the_buffer_that_has_data():
    rng = np.random.default_rng(0)
    empty = ReplayBuffer(2, (1,), 10)
    assert sample_mixed(constant_buffer(0.0), empty, 16, 0.5, rng).rewards.sum() == 0.0
    assert sample_mixed(empty, constant_buffer(1.0), 16, 0.5, rng).rewards.sum() == 16.0
    with pytest.raises(ValueError, match='both empty'):
        sample_mixed(empty, empty, 16, 0.5, rng)
    with pytest.raises(ValueError, match=r'\[0, 1\]'):
        sample_mixed(constant_buffer(0.0), constant_buffer(1.0), 16, 1.5, rng)
    indices = ReplayBuffer.from_arrays(np.zeros((4, 2)), np.arange(4), np.zeros(4),
                                       np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match='to_buffer'):
        sample_mixed(constant_buffer(0.0), indices, 16, 0.5, rng)


# ---------------------------------------------------------------- buffers from datasets

# Three episodes of 3, 2 and 2 rows; observation and reward tell the row.
EPISODE = np.array([4, 4, 4, 7, 7, 9, 9])


def dataset_arrays(**changes) -> dict:
    rows = np.arange(7, dtype=np.float32)
    arrays = {'observations': np.stack([rows, -rows], axis=1),
              'actions': (rows / 4.0 - 0.5)[:, None], 'reward': rows * 10.0,
              'episode': EPISODE.copy()}
    arrays.update(changes)
    return {k: v for k, v in arrays.items() if v is not None}


def save_dataset(path, arrays: dict):
    return Demonstrations(observations=arrays['observations'], actions=arrays['actions'],
                          episode=arrays['episode'], stamp_ns=np.arange(7) * 10**8,
                          reward=arrays['reward'],
                          spec_json=load_spec('pendulum').to_json()).save(path)


def test_a_dataset_becomes_transitions_to_the_next_row_of_each_episode(tmp_path):
    path = save_dataset(tmp_path / 'demos.npz', dataset_arrays())
    buffer = buffer_from_dataset(path)
    # The last rows of the episodes (2, 4, 6) have no next observation and are dropped.
    assert len(buffer) == 4
    assert buffer.obs[:4, 0].tolist() == [0, 1, 3, 5]
    assert buffer.next_obs[:4, 0].tolist() == [1, 2, 4, 6]
    assert buffer.rewards[:4].tolist() == [0, 10, 30, 50]
    assert buffer.terminated[:4].tolist() == [0, 0, 0, 0]
    assert buffer.actions[:4, 0].tolist() == [-0.5, -0.25, 0.25, 0.75]


def test_a_terminal_last_row_is_kept_as_a_terminated_transition(tmp_path):
    path = save_dataset(tmp_path / 'demos.npz', dataset_arrays())
    buffer = buffer_from_dataset(path, terminal_episodes=[7])
    assert buffer.obs[:len(buffer), 0].tolist() == [0, 1, 3, 4, 5]
    assert buffer.terminated[:len(buffer)].tolist() == [0, 0, 0, 1, 0]
    flagged = buffer_from_dataset(dataset_arrays(terminated=np.array([0, 0, 1, 0, 0, 0, 1])))
    assert flagged.obs[:len(flagged), 0].tolist() == [0, 1, 2, 3, 5, 6]
    assert flagged.terminated[:len(flagged)].tolist() == [0, 0, 1, 0, 0, 1]


def test_a_learner_converts_the_dataset_actions_it_stores():
    seed_everything(0)
    space = gym.spaces.Box(-2.0, 2.0, (1,))
    sac = make_learner('sac', 2, space, SMALL)
    buffer = buffer_from_dataset(dataset_arrays(), convert_actions=sac.to_buffer, obs_dim=2)
    np.testing.assert_allclose(buffer.actions[:4, 0], [-0.25, -0.125, 0.125, 0.375])
    dqn = make_learner('dqn', 2, space, SMALL, bins=5)
    indices = buffer_from_dataset(dataset_arrays(), convert_actions=dqn.to_buffer)
    assert indices.actions.dtype == np.int64 and indices.actions[:4].tolist() == [1, 2, 2, 3]
    batch = sample_mixed(sac.make_buffer(10), buffer, 8, 0.5, np.random.default_rng(0))
    assert batch.actions.shape == (8, 1)


@pytest.mark.parametrize('changes, match', [
    ({'reward': None}, "no 'reward' array"),
    ({'episode': None}, "no 'episode' array"),
    ({'reward': np.r_[np.zeros(6), np.nan]}, r'reward is missing \(NaN\) in 1 of 7 rows'),
    ({'actions': np.zeros((5, 1))}, 'actions has 5 rows, observations has 7'),
    ({'observations': np.zeros(7)}, r'observations has shape \(7,\)'),
    ({'observations': np.full((7, 2), np.inf)}, 'observations holds non-finite'),
    ({'episode': np.array([0, 0, 1, 1, 0, 0, 0])}, 'contiguous'),
    ({'episode': np.full(7, 0.5)}, 'episode must hold integers'),
    ({'terminated': np.array([1, 0, 0, 0, 0, 0, 0])}, 'row 0, which is not the last'),
    ({'actions': np.array(['a'] * 7)}, 'actions must hold numbers'),
])
def test_a_dataset_that_cannot_give_transitions_is_refused(changes, match):
    with pytest.raises(DatasetError, match=match):
        buffer_from_dataset(dataset_arrays(**changes))


def test_refusals_name_the_dataset_file(tmp_path):
    without_reward = save_dataset(tmp_path / 'no_reward.npz',
                                  dataset_arrays(reward=np.full(7, np.nan)))
    with pytest.raises(DatasetError, match=re.escape(f'dataset {without_reward}: reward is '
                                                     f'missing')):
        buffer_from_dataset(without_reward)
    with pytest.raises(DatasetError, match='no such file'):
        buffer_from_dataset(tmp_path / 'absent.npz')
    (tmp_path / 'text.npz').write_text('not an archive')
    with pytest.raises(DatasetError, match='not a readable .npz'):
        buffer_from_dataset(tmp_path / 'text.npz')
    good = save_dataset(tmp_path / 'good.npz', dataset_arrays())
    with pytest.raises(DatasetError, match='observations have 2 values per row, the learner '
                                           'takes 3'):
        buffer_from_dataset(good, obs_dim=3)
    with pytest.raises(DatasetError, match=re.escape(f'dataset {good}: actions: ') + '.*expected'):
        buffer_from_dataset(good, convert_actions=make_learner('sac', 2, BOX, SMALL).to_buffer)


KEYS = ('observations', 'actions', 'reward', 'episode')


@st.composite
def broken_datasets(draw):
    """A valid dataset with one of its arrays dropped, resized, reshaped or poisoned."""
    arrays = dataset_arrays()
    key = draw(st.sampled_from(KEYS))
    kind = draw(st.sampled_from(('drop', 'rows', 'rank', 'poison')))
    value = arrays[key]
    if kind == 'drop':
        del arrays[key]
    elif kind == 'rows':
        rows = draw(st.integers(0, 12).filter(lambda n: n != len(value)))
        arrays[key] = np.resize(value, (rows, *value.shape[1:]))
    elif kind == 'rank':
        # observations must be 2-D, reward and episode 1-D (actions may be either).
        shapes = {'observations': (7,), 'actions': (7, 1, 1), 'reward': (7, 1),
                  'episode': (7, 1)}
        arrays[key] = np.zeros(shapes[key])
    else:
        poisoned = value.astype(np.float64)
        row = draw(st.integers(0, len(value) - 1))
        poisoned.flat[row * (poisoned.size // len(value))] = draw(
            st.sampled_from((np.nan, np.inf, -np.inf)))
        arrays[key] = poisoned
    return key, arrays


@given(broken_datasets())
def test_every_broken_array_is_refused_by_name(case):
    key, arrays = case
    with pytest.raises(DatasetError, match=key):
        buffer_from_dataset(arrays)


@given(st.lists(st.tuples(st.integers(1, 4), st.booleans()), min_size=1, max_size=6))
def test_each_episode_gives_its_steps_less_the_last_unless_it_terminated(episodes):
    lengths = [length for length, _ in episodes]
    episode = np.repeat(np.arange(len(episodes)) * 3, lengths)
    rows = np.arange(len(episode), dtype=np.float32)
    terminal = [3 * i for i, (_, ended) in enumerate(episodes) if ended]
    arrays = {'observations': rows[:, None], 'actions': rows[:, None], 'reward': rows,
              'episode': episode}
    expected = sum(lengths) - len(episodes) + len(terminal)
    if expected == 0:
        with pytest.raises(DatasetError, match='no transitions'):
            buffer_from_dataset(arrays, terminal_episodes=terminal)
        return
    buffer = buffer_from_dataset(arrays, terminal_episodes=terminal)
    n = len(buffer)
    assert n == expected
    obs, next_obs = buffer.obs[:n, 0], buffer.next_obs[:n, 0]
    done = buffer.terminated[:n] == 1.0
    assert np.array_equal(next_obs[~done], obs[~done] + 1)
    assert np.array_equal(episode[obs[~done].astype(int)], episode[next_obs[~done].astype(int)])
    assert sorted(episode[obs[done].astype(int)].tolist()) == terminal


@given(st.dictionaries(
    st.sampled_from((*KEYS, 'terminated')),
    st.one_of(
        st.integers(0, 9).flatmap(lambda n: st.lists(
            st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)),
            min_size=n, max_size=n)),
        st.tuples(st.integers(0, 9), st.integers(0, 3)).map(np.zeros),
        st.just('text')),
    max_size=5))
def test_any_arrays_give_a_consistent_buffer_or_a_dataset_error(arrays):
    try:
        buffer = buffer_from_dataset(arrays)
    except DatasetError as error:
        assert str(error).startswith('dataset (arrays in memory): ')
        return
    n = len(buffer)
    assert 0 < n <= len(np.asarray(arrays['observations']))
    for values in (buffer.obs, buffer.actions, buffer.rewards, buffer.next_obs):
        assert np.all(np.isfinite(values[:n]))
    assert set(buffer.terminated[:n].tolist()) <= {0.0, 1.0}
