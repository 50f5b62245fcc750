"""Minari export and import: round trips, plain-Minari readers, foreign datasets, rewards."""

import json
import logging

import gymnasium as gym
import minari
from minari.data_collector import EpisodeBuffer
import numpy as np
import pytest

from ilrl_ros.cli import main
from ilrl_ros.core.data import DatasetError, Demonstrations
from ilrl_ros.core.minari_io import episode_runs, export_minari, import_minari
from ilrl_ros.core.spec import load_spec

DATASET_ID = 'ilrl/track_follow-expert-v0'


@pytest.fixture(autouse=True)
def no_minari_home(monkeypatch, tmp_path):
    # Nothing may fall back to ~/.minari: an unset root would point into tmp_path instead.
    monkeypatch.setenv('MINARI_DATASETS_PATH', str(tmp_path / 'minari_default'))


@pytest.fixture(scope='module')
def track():
    return load_spec('track_follow')


def demonstrations(spec, lengths=(6, 1, 9, 4), ids=(4, 7, 11, 2), reward='random', seed=0):
    """Episodes of the given lengths and ids, with actions inside the task bounds."""
    rng = np.random.default_rng(seed)
    n = sum(lengths)
    obs = rng.normal(size=(n, spec.observation.size)).astype(np.float32)
    actions = rng.uniform(spec.action.low, spec.action.high,
                          size=(n, spec.action.size)).astype(np.float32)
    rewards = rng.normal(size=n) if reward == 'random' else np.full(n, np.nan)
    return Demonstrations(observations=obs, actions=actions,
                          episode=np.repeat(np.array(ids), lengths),
                          stamp_ns=1_000_000_000 + np.arange(n, dtype=np.int64) * 50_000_000,
                          reward=rewards, spec_json=spec.to_json(),
                          info={'bag': 'bags/demo', 'action_topic': 'cmd_vel'})


def without_last_rows(data):
    """The rows an export keeps: all but the last of each episode (single rows vanish)."""
    keep = np.ones(len(data), dtype=bool)
    for _, _, end in episode_runs(data.episode):
        keep[end - 1] = False
    return keep


def test_round_trip_keeps_every_row_but_each_episodes_last(tmp_path, track, caplog):
    data = demonstrations(track)
    with caplog.at_level(logging.WARNING):
        done = export_minari(data, DATASET_ID, root=tmp_path)
    assert done.path == tmp_path / DATASET_ID
    assert (done.episodes, done.steps, done.skipped_episodes) == (3, 5 + 8 + 3, (7,))
    assert 'single row' in caplog.text
    back = import_minari(DATASET_ID, root=tmp_path)
    keep = without_last_rows(data)
    assert len(back) == keep.sum() == 16
    np.testing.assert_array_equal(back.observations, data.observations[keep])
    np.testing.assert_array_equal(back.actions, data.actions[keep])
    np.testing.assert_array_equal(back.episode, data.episode[keep])
    np.testing.assert_array_equal(back.stamp_ns, data.stamp_ns[keep])
    np.testing.assert_array_equal(back.reward, data.reward[keep])
    assert back.spec_json == data.spec_json and back.spec.name == 'track_follow'
    assert back.info['bag'] == 'bags/demo' and back.info['minari_dataset'] == DATASET_ID
    # The folder works as well as the id, and saving gives a dataset `ilrl train` reads.
    again = import_minari(done.path)
    np.testing.assert_array_equal(again.observations, back.observations)
    Demonstrations.load(back.save(tmp_path / 'back.npz'))


def test_plain_minari_reads_the_export(tmp_path, monkeypatch, track):
    data = demonstrations(track)
    export_minari(data, DATASET_ID, root=tmp_path)
    monkeypatch.setenv('MINARI_DATASETS_PATH', str(tmp_path))
    assert DATASET_ID in minari.list_local_datasets()
    dataset = minari.load_dataset(DATASET_ID)
    assert dataset.total_episodes == 3 and dataset.total_steps == 16
    size = track.observation.size
    assert dataset.observation_space == gym.spaces.Box(-np.inf, np.inf, (size,), np.float32)
    np.testing.assert_allclose(dataset.action_space.low, track.action.low, rtol=1e-6)
    np.testing.assert_allclose(dataset.action_space.high, track.action.high, rtol=1e-6)
    rows = {4: data.observations[0:6], 11: data.observations[7:16], 2: data.observations[16:]}
    for episode, ilrl_id in zip(dataset.iterate_episodes(), (4, 11, 2)):
        steps = len(episode)
        assert episode.observations.shape == (steps + 1, size)
        assert episode.actions.shape == (steps, 2)
        assert episode.rewards.shape == episode.terminations.shape == (steps,)
        np.testing.assert_array_equal(episode.observations, rows[ilrl_id])
        assert not episode.terminations.any()
        assert episode.truncations.tolist() == [False] * (steps - 1) + [True]
        assert episode.infos['stamp_ns'].shape == (steps + 1,)
    metadata = dataset.storage.metadata
    assert json.loads(metadata['ilrl_task_spec']) == track.raw
    assert metadata['ilrl_observation_labels'] == track.observation.labels()
    assert metadata['ilrl_action_fields'] == ['linear.x', 'angular.z']
    assert metadata['ilrl_rewards_available'] is True
    assert 'N - 1 transitions' in metadata['description']
    # Minari's own sampling works on it too.
    assert len(dataset.sample_episodes(2)) == 2


def pendulum_rollouts(episodes=2, steps=25, seed=3):
    """Episodes of gymnasium's Pendulum-v1 under random torques, as Minari episode buffers."""
    env = gym.make('Pendulum-v1')
    env.action_space.seed(seed)
    buffers = []
    for index in range(episodes):
        obs, _ = env.reset(seed=seed + index)
        observations, actions, rewards = [obs], [], []
        for _ in range(steps):
            action = env.action_space.sample()
            obs, reward, terminated, _, _ = env.step(action)
            observations.append(obs)
            actions.append(action)
            rewards.append(float(reward))
        buffers.append(EpisodeBuffer(
            id=index, seed=seed + index, observations=np.array(observations),
            actions=np.array(actions), rewards=rewards, terminations=[False] * steps,
            truncations=[False] * (steps - 1) + [True]))
    env.close()
    return buffers


def test_a_dataset_made_with_minari_imports_against_the_pendulum_task(tmp_path, track):
    buffers = pendulum_rollouts()
    with pytest.warns(UserWarning):  # Minari asks for an author, a code link, ...
        minari.create_dataset_from_buffers('gym/pendulum/random-v0', buffers, env='Pendulum-v1')
    root = tmp_path / 'minari_default'
    with pytest.raises(DatasetError, match=r'no ilrl task spec.*observation of 3 and an '
                                           r'action of 1 values'):
        import_minari('gym/pendulum/random-v0')
    with pytest.raises(DatasetError, match=r"observations of 3 and actions of 1 values; task "
                       rf"'track_follow' expects observations of {track.observation.size}"):
        import_minari('gym/pendulum/random-v0', root=root, spec=track)

    pendulum = load_spec('pendulum')
    data = import_minari('gym/pendulum/random-v0', root=root, spec=pendulum)
    assert len(data) == 50 and data.episode.tolist() == [0] * 25 + [1] * 25
    np.testing.assert_array_equal(data.observations[:25], buffers[0].observations[:25])
    np.testing.assert_array_equal(data.actions[25:], buffers[1].actions)
    np.testing.assert_array_equal(data.reward[:25], buffers[0].rewards)
    # No stamps in a gymnasium dataset: the step times the task's 20 Hz control period.
    assert data.stamp_ns[:3].tolist() == [0, 50_000_000, 100_000_000]
    assert data.spec.name == 'pendulum'


def test_our_export_refuses_a_task_it_was_not_made_for(tmp_path, track):
    export_minari(demonstrations(track), DATASET_ID, root=tmp_path)
    with pytest.raises(DatasetError, match="exported for task 'track_follow'.*'pendulum'"):
        import_minari(DATASET_ID, root=tmp_path, spec=load_spec('pendulum'))
    assert len(import_minari(DATASET_ID, root=tmp_path, spec=track)) == 16


def test_bags_without_rewards_export_zeros_flagged_and_import_as_nan(tmp_path, monkeypatch,
                                                                     track):
    data = demonstrations(track, reward='none')
    assert export_minari(data, DATASET_ID, root=tmp_path).rewards_available is False
    monkeypatch.setenv('MINARI_DATASETS_PATH', str(tmp_path))
    dataset = minari.load_dataset(DATASET_ID)
    assert dataset.storage.metadata['ilrl_rewards_available'] is False
    assert all(np.all(e.rewards == 0.0) for e in dataset.iterate_episodes())
    assert 'no reward' in dataset.storage.metadata['description']
    assert np.all(np.isnan(import_minari(DATASET_ID).reward))


def test_some_missing_rewards_are_refused_unless_stored_as_zero(tmp_path, track):
    data = demonstrations(track)
    reward = data.reward.copy()
    reward[[2, 9]] = np.nan   # episode 4, step 2; episode 11, step 2
    data = Demonstrations(data.observations, data.actions, data.episode, data.stamp_ns,
                          reward, data.spec_json)
    with pytest.raises(DatasetError, match=r'2 of 16 transitions have no reward.*\[4, 11\]'):
        export_minari(data, DATASET_ID, root=tmp_path)
    assert not (tmp_path / DATASET_ID).exists()
    done = export_minari(data, DATASET_ID, root=tmp_path, missing_rewards='zero')
    assert done.rewards_available == 'partial'
    back = import_minari(DATASET_ID, root=tmp_path)
    np.testing.assert_array_equal(back.reward, reward[without_last_rows(data)])
    assert np.isnan(back.reward).sum() == 2


def test_terminal_episodes_end_in_a_termination(tmp_path, monkeypatch, track):
    export_minari(demonstrations(track), DATASET_ID, root=tmp_path, terminal_episodes=[11])
    monkeypatch.setenv('MINARI_DATASETS_PATH', str(tmp_path))
    ends = [(e.terminations[-1], e.truncations[-1])
            for e in minari.load_dataset(DATASET_ID).iterate_episodes()]
    assert ends == [(False, True), (True, False), (False, True)]
    with pytest.raises(DatasetError, match=r'terminal episode\(s\) \[99\]'):
        export_minari(demonstrations(track), 'ilrl/other-v0', root=tmp_path,
                      terminal_episodes=[99])


def test_bad_ids_existing_datasets_and_broken_episodes_are_refused(tmp_path, track):
    data = demonstrations(track)
    with pytest.raises(DatasetError, match='malformed; expected namespace/name-vN'):
        export_minari(data, 'not a valid id!', root=tmp_path)
    export_minari(data, DATASET_ID, root=tmp_path)
    with pytest.raises(DatasetError, match='already exists'):
        export_minari(data, DATASET_ID, root=tmp_path)
    shorter = demonstrations(track, lengths=(3, 3), ids=(0, 1))
    assert export_minari(shorter, DATASET_ID, root=tmp_path, overwrite=True).steps == 4
    assert len(import_minari(DATASET_ID, root=tmp_path)) == 4
    with pytest.raises(DatasetError, match='no episode has two or more rows'):
        export_minari(demonstrations(track, lengths=(1, 1), ids=(0, 1)), 'ilrl/a-v0',
                      root=tmp_path)
    split = demonstrations(track, lengths=(3, 3, 3), ids=(0, 1, 0))
    with pytest.raises(DatasetError, match=r'episode\(s\) \[0\] appear in more than one'):
        export_minari(split, 'ilrl/b-v0', root=tmp_path)
    with pytest.raises(DatasetError, match='not found at'):
        import_minari('ilrl/missing-v0', root=tmp_path)


def test_the_command_line_exports_and_imports(tmp_path, capsys):
    data = demonstrations(load_spec('track_follow'))
    data.save(tmp_path / 'demos.npz')
    root = str(tmp_path / 'minari')
    assert main(['export', '--data', str(tmp_path / 'demos.npz'), '--minari-id', DATASET_ID,
                 '--root', root]) == 0
    assert '16 transitions' in capsys.readouterr().out
    assert main(['import', '--minari-id', DATASET_ID, '--root', root, '-o',
                 str(tmp_path / 'back.npz')]) == 0
    assert len(Demonstrations.load(tmp_path / 'back.npz')) == 16
    assert main(['export', '--data', str(tmp_path / 'demos.npz'), '--minari-id', DATASET_ID,
                 '--root', root]) == 2
    assert 'already exists' in capsys.readouterr().err
    for command in ('export', 'import'):
        with pytest.raises(SystemExit):
            main([command, '--help'])
        out = capsys.readouterr().out
        assert 'usage: ilrl' in out and 'Minari' in out and '--root' in out
