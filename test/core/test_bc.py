"""Behavior cloning: losses by hand, the episode split, a linear problem, datasets and logs."""

import csv
import math

import numpy as np
import pytest
import torch

from ilrl_ros.core.algorithms.bc import (
    bc_loss,
    BCConfig,
    gaussian_nll,
    mse_loss,
    split_episodes,
    train,
)
from ilrl_ros.core.data import DatasetError, Demonstrations, Normalizer
from ilrl_ros.core.networks import MLPPolicy
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.train_log import TrainingLog

# A known linear expert a = W s + b, with actions of order 1.
W = np.array([[0.5, -0.3, 0.2],
              [0.1, 0.4, -0.2]])
B = np.array([0.1, -0.2])



@pytest.fixture(scope='module')
def spec_json():
    return load_spec('track_follow').to_json()


def demonstrations(spec_json, n=500, episodes=10, seed=0):
    rng = np.random.default_rng(seed)
    states = rng.uniform(-1.0, 1.0, size=(n, 3)).astype(np.float32)
    actions = (states @ W.T + B).astype(np.float32)
    return Demonstrations(observations=states, actions=actions,
                          episode=np.repeat(np.arange(episodes), n // episodes),
                          stamp_ns=np.arange(n, dtype=np.int64) * 100_000_000,
                          reward=np.full(n, np.nan), spec_json=spec_json)


def test_mse_loss_by_hand():
    # One sample, two dimensions: (1 - 0)^2 + (2 - 4)^2 = 1 + 4 = 5 (summed over dimensions).
    assert mse_loss(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0, 4.0]])).item() == 5.0
    # Two samples, one dimension: ((1 - 0)^2 + (3 - 1)^2) / 2 = 2.5 (averaged over the batch).
    assert mse_loss(torch.tensor([[1.0], [3.0]]), torch.tensor([[0.0], [1.0]])).item() == 2.5


def test_gaussian_nll_by_hand():
    half_log_2pi = 0.5 * math.log(2.0 * math.pi)  # 0.918939
    # One sample, two dimensions, mean (0, 1), std (1, 2), target (1, 1):
    # dim 0: z = 1 -> 0.5 * 1 + log 1 + c = 0.5 + c; dim 1: z = 0 -> 0 + log 2 + c.
    # Sum: 0.5 + log 2 + 2c = 0.5 + 0.693147 + 1.837877 = 3.031024
    value = gaussian_nll(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, math.log(2.0)]]),
                         torch.tensor([[1.0, 1.0]]))
    assert value.item() == pytest.approx(0.5 + math.log(2.0) + 2 * half_log_2pi, abs=1e-6)
    assert value.item() == pytest.approx(3.031024, abs=1e-6)
    # Two samples, one dimension, N(0, 1), targets 1 and 3: (0.5 + 4.5) / 2 + c = 3.418939
    value = gaussian_nll(torch.zeros(2, 1), torch.zeros(2, 1), torch.tensor([[1.0], [3.0]]))
    assert value.item() == pytest.approx(2.5 + half_log_2pi, abs=1e-6)


def test_bc_loss_works_in_normalised_action_units():
    policy = MLPPolicy(3, 1, hidden=(4,), head='deterministic')
    policy.set_normalization(Normalizer.identity(3), Normalizer(mean=np.array([10.0]),
                                                                std=np.array([2.0])))
    obs = torch.zeros(1, 3)
    with torch.no_grad():
        mean, _ = policy.normalized_distribution(obs)
        # Target 14 is (14 - 10) / 2 = 2 normalised units.
        expected = (mean - 2.0).pow(2).sum()
        assert bc_loss(policy, obs, torch.tensor([[14.0]])).item() == pytest.approx(
            expected.item(), rel=1e-6)


def test_split_episodes_keeps_episodes_whole():
    lengths = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3]
    episode = np.repeat(np.arange(10), lengths)
    train_mask, val_mask = split_episodes(episode, 0.2, np.random.default_rng(0))
    assert np.array_equal(train_mask, ~val_mask)
    for e in range(10):
        in_val = val_mask[episode == e]
        assert in_val.all() or not in_val.any(), f'episode {e} is split'
    # 20 % of 10 episodes is 2 whole episodes.
    assert len(np.unique(episode[val_mask])) == 2
    # Fewer than 3 episodes: all of them train, none is held out.
    train_mask, val_mask = split_episodes(np.array([0, 0, 1, 1]), 0.5,
                                          np.random.default_rng(0))
    assert train_mask.all() and not val_mask.any()


@pytest.mark.parametrize('head', ['deterministic', 'gaussian'])
def test_bc_learns_a_linear_expert(spec_json, head):
    data = demonstrations(spec_json)
    seen = []
    result = train(data, BCConfig(head=head, steps=800, lr=3e-3, hidden=(32, 32),
                                  log_every=200),
                   progress=lambda step, total, metrics: seen.append((step, total)))
    assert seen == [(200, 800), (400, 800), (600, 800), (800, 800)]
    assert result.config['head'] == head and result.config['hidden'] == [32, 32]
    if head == 'deterministic':
        # Mean squared error in normalised units (actions have a std of about 0.35).
        assert result.train_loss < 0.01 and result.val_loss < 0.01
    else:
        # A good fit drives the predicted std down: the NLL goes well below 0.
        assert result.train_loss < -3.0 and result.val_loss < -3.0
    states = np.random.default_rng(1).uniform(-0.9, 0.9, size=(200, 3)).astype(np.float32)
    with torch.no_grad():
        actions = result.policy(torch.from_numpy(states)).numpy()
    np.testing.assert_allclose(actions, states @ W.T + B, rtol=0, atol=0.05)


def test_train_refuses_too_little_data(spec_json):
    with pytest.raises(ValueError, match='at least 2 samples'):
        train(demonstrations(spec_json, n=1, episodes=1), BCConfig(steps=1))


def test_demonstrations_round_trip(tmp_path, spec_json):
    data = Demonstrations(
        observations=np.arange(12, dtype=np.float32).reshape(4, 3),
        actions=np.array([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6], [0.7, 0.8]], dtype=np.float32),
        episode=np.array([0, 0, 1, 1]), stamp_ns=np.array([1, 2, 3, 4]) * 10 ** 8,
        reward=np.array([1.0, np.nan, -0.5, 2.0]), spec_json=spec_json,
        info={'source': 'unit test'})
    path = data.save(tmp_path / 'sub' / 'demos.npz')
    assert path.is_file()
    assert [p.name for p in path.parent.iterdir()] == ['demos.npz']
    loaded = Demonstrations.load(path)
    for name in ('observations', 'actions', 'episode', 'stamp_ns'):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(data, name))
    np.testing.assert_array_equal(loaded.reward, data.reward)  # NaN where no reward
    assert loaded.spec_json == spec_json and loaded.info == {'source': 'unit test'}
    assert len(loaded) == 4 and loaded.num_episodes == 2
    assert loaded.spec.name == 'track_follow'


def test_demonstrations_refuse_bad_arrays(spec_json):
    good = dict(observations=np.zeros((5, 3), np.float32), actions=np.zeros((5, 2), np.float32),
                episode=np.zeros(5, int), stamp_ns=np.arange(5), reward=np.zeros(5),
                spec_json=spec_json)
    with pytest.raises(DatasetError, match='actions has 4 rows, observations has 5'):
        Demonstrations(**dict(good, actions=np.zeros((4, 2), np.float32)))
    with pytest.raises(DatasetError, match='episode has 6 rows, observations has 5'):
        Demonstrations(**dict(good, episode=np.zeros(6, int)))
    observations = good['observations'].copy()
    observations[2, 1] = np.nan
    with pytest.raises(DatasetError, match='must be finite'):
        Demonstrations(**dict(good, observations=observations))
    with pytest.raises(DatasetError, match='must be 2-D'):
        Demonstrations(**dict(good, actions=np.zeros(5, np.float32)))


def test_dataset_files_are_checked(tmp_path, spec_json):
    with pytest.raises(DatasetError, match='no such file'):
        Demonstrations.load(tmp_path / 'absent.npz')
    path = demonstrations(spec_json, n=10, episodes=2).save(tmp_path / 'demos.npz')
    with np.load(path) as arrays:
        content = {k: arrays[k] for k in arrays.files}
    np.savez(tmp_path / 'future.npz', **dict(content, format=np.array(2)))
    with pytest.raises(DatasetError, match='format 2, this version reads format 1'):
        Demonstrations.load(tmp_path / 'future.npz')
    del content['actions']
    np.savez(tmp_path / 'partial.npz', **content)
    with pytest.raises(DatasetError, match=r"missing arrays \['actions'\]"):
        Demonstrations.load(tmp_path / 'partial.npz')
    (tmp_path / 'text.npz').write_text('not a zip file')
    with pytest.raises(DatasetError, match='not a readable .npz file'):
        Demonstrations.load(tmp_path / 'text.npz')


def test_normalizer_by_hand():
    # Column 0: mean 2, std sqrt(((1-2)^2 + (3-2)^2) / 2) = 1; column 1 is constant: floor.
    norm = Normalizer.fit(np.array([[1.0, 5.0], [3.0, 5.0]]))
    np.testing.assert_array_equal(norm.mean, [2.0, 5.0])
    np.testing.assert_array_equal(norm.std, [1.0, 1e-3])
    again = Normalizer.from_dict(norm.to_dict())
    np.testing.assert_array_equal(again.mean, norm.mean)
    np.testing.assert_array_equal(again.std, norm.std)


def test_training_log_writes_csv_and_curves(tmp_path, spec_json):
    log_dir = tmp_path / 'logs'
    log = TrainingLog(log_dir)
    train(demonstrations(spec_json, n=100), BCConfig(steps=20, log_every=10, hidden=(8,)),
          log=log)
    log.close()
    with open(log_dir / 'metrics.csv', newline='') as f:
        rows = list(csv.DictReader(f))
    assert {(r['name'], r['step']) for r in rows} == {
        (name, step) for name in ('train/loss', 'train/lr', 'eval/val_loss',
                                       'eval/val_action_mse')
        for step in ('10', '20')}
    assert all(math.isfinite(float(r['value'])) for r in rows)
    png = (log_dir / 'curves.png').read_bytes()
    assert png.startswith(b'\x89PNG') and len(png) > 1000


def test_training_log_in_memory_only():
    log = TrainingLog()
    log.scalar('train/loss', 2.0, 1)
    log.scalar('train/loss', 1.0, 2)
    assert log.series('train/loss') == ([1, 2], [2.0, 1.0])
    log.close()  # writes nothing, raises nothing
