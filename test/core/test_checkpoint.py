"""Checkpoints: round trip, manifest contents, and every refusal with its reason."""

import hashlib
import json
import pickle
import shutil

import numpy as np
import pytest
import torch

from ilrl_ros.core.checkpoint import (
    CheckpointError,
    FORMAT_VERSION,
    load_checkpoint,
    MANIFEST,
    read_manifest,
    save_checkpoint,
    WEIGHTS,
)
from ilrl_ros.core.data import Normalizer
from ilrl_ros.core.networks import MLPPolicy
from ilrl_ros.core.spec import load_spec, parse_spec


@pytest.fixture(scope='module')
def pendulum():
    return load_spec('pendulum')


@pytest.fixture(scope='module')
def track():
    return load_spec('track_follow')


def small_policy(obs_dim=3, act_dim=1, hidden=(8, 8), head='deterministic', seed=0):
    torch.manual_seed(seed)
    policy = MLPPolicy(obs_dim, act_dim, hidden=hidden, head=head)
    # Non-trivial normalisation, so the round trip is seen to carry it.
    policy.set_normalization(
        Normalizer(mean=np.linspace(0.1, 0.3, obs_dim), std=np.linspace(1.0, 3.0, obs_dim)),
        Normalizer(mean=np.full(act_dim, 0.5), std=np.full(act_dim, 2.0)))
    return policy.eval()


def save(path, policy, spec):
    return save_checkpoint(path, policy, algorithm='bc', spec=spec, config={'steps': 1},
                           provenance={'dataset': 'none'})


def edit_manifest(path, change):
    manifest = json.loads((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


@pytest.fixture
def saved(tmp_path, pendulum):
    policy = small_policy(head='gaussian')
    return save(tmp_path / 'ckpt', policy, pendulum), policy


def test_round_trip_gives_identical_actions(saved, pendulum):
    path, policy = saved
    loaded = load_checkpoint(path, expected_spec=pendulum)
    assert loaded.name == 'ckpt'
    observations = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    for obs in observations:
        # One row at a time on both sides: a batch may round differently from a single row.
        with torch.no_grad():
            want = policy(torch.from_numpy(obs)[None])[0].numpy()
        np.testing.assert_array_equal(loaded.act(obs), want)
    with torch.no_grad():
        batch = torch.from_numpy(observations)
        torch.testing.assert_close(loaded.network(batch), policy(batch), rtol=0, atol=0)
    for name, tensor in policy.state_dict().items():
        torch.testing.assert_close(loaded.network.state_dict()[name], tensor, rtol=0, atol=0)
    assert loaded.spec.contract() == pendulum.contract()
    with pytest.raises(ValueError, match=r'shape \(4,\); the policy expects \(3,\)'):
        loaded.act(np.zeros(4))


def test_manifest_contents(saved, pendulum):
    path, policy = saved
    assert sorted(p.name for p in path.iterdir()) == [MANIFEST, WEIGHTS]
    manifest = read_manifest(path)
    assert manifest['format_version'] == FORMAT_VERSION == 1
    assert manifest['algorithm'] == 'bc'
    assert manifest['network'] == policy.description() == {
        'type': 'mlp', 'obs_dim': 3, 'act_dim': 1, 'hidden': [8, 8], 'activation': 'relu',
        'head': 'gaussian'}
    assert manifest['task_spec'] == pendulum.raw
    assert manifest['observation_labels'] == pendulum.observation.labels()
    assert manifest['action_fields'] == ['pendulum_joint']
    assert manifest['config'] == {'steps': 1}
    assert manifest['provenance']['dataset'] == 'none'
    digest = hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
    assert manifest['weights_sha256'] == digest


def test_saving_again_replaces_the_checkpoint(saved, pendulum):
    path, _ = saved
    other = small_policy(seed=1)
    save(path, other, pendulum)
    loaded = load_checkpoint(path)
    assert loaded.network.head == 'deterministic'
    assert [p.name for p in path.parent.iterdir()] == ['ckpt']  # no temporary folders left


def test_loading_never_unpickles(saved, monkeypatch):
    path, policy = saved

    def refuse(*args, **kwargs):
        raise AssertionError('a checkpoint must load without unpickling')

    monkeypatch.setattr(pickle, 'load', refuse)
    monkeypatch.setattr(pickle, 'loads', refuse)
    monkeypatch.setattr(pickle, 'Unpickler', refuse)
    monkeypatch.setattr(torch, 'load', refuse)
    loaded = load_checkpoint(path)
    with torch.no_grad():
        expected = policy(torch.zeros(1, 3)).numpy()[0]
    np.testing.assert_array_equal(loaded.act(np.zeros(3)), expected)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match='no such file or folder'):
        load_checkpoint(tmp_path / 'absent')


def test_a_file_instead_of_a_folder(tmp_path):
    (tmp_path / 'policy.pt').write_bytes(b'\x80\x04not a checkpoint')
    with pytest.raises(CheckpointError, match='expected a folder .* got a file'):
        load_checkpoint(tmp_path / 'policy.pt')


def test_manifest_missing_or_not_json(saved):
    path, _ = saved
    (path / MANIFEST).write_text('{"format_version": 1,')
    with pytest.raises(CheckpointError, match=f'{MANIFEST} is not valid JSON'):
        load_checkpoint(path)
    (path / MANIFEST).write_text('[1, 2]')
    with pytest.raises(CheckpointError, match='must hold a JSON object'):
        load_checkpoint(path)
    (path / MANIFEST).unlink()
    with pytest.raises(CheckpointError, match=f'{MANIFEST} is missing'):
        load_checkpoint(path)


def test_wrong_format_version(saved):
    path, _ = saved
    edit_manifest(path, lambda m: m.update(format_version=99))
    with pytest.raises(CheckpointError, match='format_version 99; this ilrl_ros reads format 1'):
        load_checkpoint(path)


def test_manifest_lacking_a_key(saved):
    path, _ = saved
    edit_manifest(path, lambda m: m.pop('network'))
    with pytest.raises(CheckpointError, match="lacks 'network'"):
        load_checkpoint(path)


def test_flipped_weight_bytes_fail_the_checksum(saved):
    path, _ = saved
    data = bytearray((path / WEIGHTS).read_bytes())
    data[-3] ^= 0xFF
    (path / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match='does not match the SHA-256'):
        load_checkpoint(path)


def test_missing_weights(saved):
    path, _ = saved
    (path / WEIGHTS).unlink()
    with pytest.raises(CheckpointError, match=f'{WEIGHTS} is missing'):
        load_checkpoint(path)


def test_another_networks_weights_do_not_fit(tmp_path, saved, pendulum):
    path, _ = saved
    other = save(tmp_path / 'other', small_policy(hidden=(16,)), pendulum)
    shutil.copyfile(other / WEIGHTS, path / WEIGHTS)
    # A matching checksum, so only the shapes can tell.
    digest = hashlib.sha256((path / WEIGHTS).read_bytes()).hexdigest()
    edit_manifest(path, lambda m: m.update(weights_sha256=digest))
    with pytest.raises(CheckpointError, match='the weights do not fit the network description'):
        load_checkpoint(path)


def test_network_that_does_not_match_its_task(tmp_path, pendulum):
    path = save(tmp_path / 'wide', small_policy(obs_dim=5), pendulum)
    with pytest.raises(CheckpointError, match='network maps 5 -> 1 but its task has 3 '
                                              'observations and 1 actions'):
        load_checkpoint(path)


def test_checkpoint_for_another_task_is_refused(saved, track):
    path, _ = saved
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, expected_spec=track)
    text = str(caught.value)
    assert "trained for task 'pendulum'" in text
    assert "running task 'track_follow'" in text
    # The contracts' keys are compared in sorted order; action.fields differs first.
    assert text.endswith('action.fields has 1 entries, expected 2')


def test_a_changed_reward_weight_still_fits(saved, pendulum):
    path, _ = saved
    raw = dict(pendulum.raw, reward=[dict(pendulum.raw['reward'][0], weight=2.0)])
    assert load_checkpoint(path, expected_spec=parse_spec(raw)).name == 'ckpt'
    raw = dict(pendulum.raw, control_rate_hz=50.0)
    with pytest.raises(CheckpointError, match='control_rate_hz is 20.0, expected 50.0'):
        load_checkpoint(path, expected_spec=parse_spec(raw))


def test_corrupt_stored_spec(saved):
    path, _ = saved
    edit_manifest(path, lambda m: m['task_spec'].update(control_rate_hz=-1))
    with pytest.raises(CheckpointError, match='control_rate_hz: expected a number > 0'):
        load_checkpoint(path)


def test_non_finite_weights_are_refused(tmp_path, pendulum):
    policy = small_policy()
    with torch.no_grad():
        policy.mean_head.bias[0] = float('nan')
    path = save(tmp_path / 'nan', policy, pendulum)
    with pytest.raises(CheckpointError, match='outputs non-finite actions'):
        load_checkpoint(path)
