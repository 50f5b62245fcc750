"""Checkpoint loading under hostile input: each probe of issue 8, then fuzzing.

The loader may only refuse, with a ``CheckpointError`` that names the checkpoint, or return a
policy whose actions are finite; it must never hang, raise another error, or read outside
the folder. Inputs generated per run (per target):

- arbitrary JSON documents as the manifest: 200;
- arbitrary bytes as the manifest: 100;
- mutations of a valid manifest (keys dropped, values replaced by random JSON, nesting up to
  100 000 deep, huge numbers, wrong types): 300;
- mutations of its network description, the weights and their SHA-256 left valid: 200;
- mutations of the weights file (random bytes, cut short, extended, bytes overwritten,
  header rewritten), with the SHA-256 in the manifest updated so that the loader reads it: 300;
- the manifest, the weights and the folder replaced by folders, FIFOs, sockets, and links
  inside, outside, dangling or looping: 100;
- JSON texts through the nesting-depth scan, against their parsed depth: 200.

That is 1400 generated inputs per run.
"""

import contextlib
import copy
import hashlib
import json
import math
import os
from pathlib import Path
import shutil
import signal
import socket
import stat
import tempfile
import time

from hypothesis import event, given, settings, strategies as st
import numpy as np
import pytest
import torch

from ilrl_ros.core import checkpoint as checkpoint_module
from ilrl_ros.core.checkpoint import (
    CheckpointError,
    json_depth,
    load_checkpoint,
    MANIFEST,
    MAX_JSON_DEPTH,
    MAX_MANIFEST_BYTES,
    MAX_WEIGHTS_BYTES,
    probe_observations,
    read_manifest,
    save_checkpoint,
    WEIGHTS,
)
from ilrl_ros.core.data import Normalizer
from ilrl_ros.core.networks import LinearFeedbackPolicy, MAX_NETWORK_VALUES, MLPPolicy
from ilrl_ros.core.spec import load_spec

from fuzzing import at, paths_of

SPEC = load_spec('pendulum')


class Hung(BaseException):
    """Raised by the alarm in ``deadline``: a BaseException, so the loader cannot absorb it."""


@contextlib.contextmanager
def deadline(seconds: float = 10.0):
    """Fail, instead of hanging the suite, if the block blocks (a FIFO opened for reading)."""
    def expire(signum, frame):
        raise Hung(f'still loading after {seconds} s')

    # The suite's own per-test timeout (pytest-timeout) uses the same timer: it is put back,
    # less the time this block took, afterwards.
    previous = signal.signal(signal.SIGALRM, expire)
    outer, _ = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if outer:
            signal.setitimer(signal.ITIMER_REAL,
                             max(outer - (time.monotonic() - started), 0.001))


def mlp_policy(obs_std=1.0, obs_mean=(0.1, -0.2, 0.3), seed=0):
    torch.manual_seed(seed)
    policy = MLPPolicy(3, 1, hidden=(16, 16), head='gaussian')
    policy.set_normalization(
        Normalizer(mean=np.array(obs_mean), std=np.full(3, obs_std)),
        Normalizer(mean=np.zeros(1), std=np.full(1, 2.0)))
    return policy.eval()


def save(path, policy):
    return save_checkpoint(path, policy, algorithm='bc', spec=SPEC, config={'steps': 1},
                           provenance={'test': True})


@pytest.fixture(scope='module')
def templates(tmp_path_factory):
    """Valid checkpoints to corrupt: an MLP with normalisation, an LQR gain (infinite bounds)."""
    folder = tmp_path_factory.mktemp('templates')
    lqr = LinearFeedbackPolicy(3, 1, state_map='pendulum', gain=[[10.0, 2.0]])
    return {'mlp': save(folder / 'mlp', mlp_policy()), 'lqr': save(folder / 'lqr', lqr)}


@contextlib.contextmanager
def copy_of(template: Path):
    """A fresh copy of a checkpoint folder, removed afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / 'ckpt'
        shutil.copytree(template, folder)
        yield folder


def edit_manifest(path: Path, change) -> None:
    manifest = json.loads((path / MANIFEST).read_text())
    change(manifest)
    (path / MANIFEST).write_text(json.dumps(manifest))


def set_weights(path: Path, data: bytes) -> None:
    """Write the weights file and the SHA-256 that matches it, so the loader goes on to read it."""
    (path / WEIGHTS).write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    edit_manifest(path, lambda m: m.update(weights_sha256=digest))


def refusal(path: Path, spec=SPEC) -> str:
    with deadline(), pytest.raises(CheckpointError) as caught:
        load_checkpoint(path, expected_spec=spec)
    text = str(caught.value)
    assert text.startswith(f'checkpoint {path}'), text
    return text


def load_or_refuse(path: Path, spec=SPEC) -> str:
    """The only outcomes allowed: a refusal naming the checkpoint, or finite actions."""
    try:
        with deadline():
            loaded = load_checkpoint(path, expected_spec=spec)
    except CheckpointError as error:
        assert str(error).startswith(f'checkpoint {path}'), str(error)
        return 'refused'
    for _, obs in probe_observations(loaded.network):
        action = loaded.act(obs)
        assert action.shape == (1,) and np.all(np.isfinite(action))
    assert np.all(np.isfinite(loaded.act(np.zeros(3))))
    return 'loaded'


# ----------------------------------------------------------------------- the probes

def test_a_manifest_that_is_a_folder(templates):
    with copy_of(templates['mlp']) as path:
        (path / MANIFEST).unlink()
        (path / MANIFEST).mkdir()
        assert refusal(path).endswith(f'{MANIFEST} is a folder; expected a regular file of at '
                                      f'most 4 MiB')
        with pytest.raises(CheckpointError, match=f'{MANIFEST} is a folder'):
            read_manifest(path)


def test_symlink_loops(templates):
    with copy_of(templates['mlp']) as path:
        (path / MANIFEST).unlink()
        os.symlink(MANIFEST, path / MANIFEST)
        assert 'manifest.json cannot be followed to a file (Too many levels of symbolic ' \
               'links)' in refusal(path)
        (path / MANIFEST).unlink()
        os.symlink('other', path / MANIFEST)
        os.symlink(MANIFEST, path / 'other')
        assert 'cannot be followed' in refusal(path)
        loop = path.parent / 'loop'
        os.symlink(loop, loop)
        with pytest.raises(CheckpointError, match='cannot be opened as a folder'):
            load_checkpoint(loop)


def test_a_network_that_is_not_a_description(templates):
    with copy_of(templates['mlp']) as path:
        edit_manifest(path, lambda m: m.update(network=['mlp']))
        assert refusal(path).endswith(f"network in {MANIFEST} must be a JSON object, got "
                                      f"['mlp']")


def test_hidden_sizes_that_are_not_numbers(templates):
    with copy_of(templates['mlp']) as path:
        edit_manifest(path, lambda m: m['network'].update(hidden=[None]))
        assert refusal(path).endswith('network hidden width must be a whole number from 1 to '
                                      '65536, got None')


@pytest.mark.parametrize('where', ['manifest', 'config', 'task_spec', 'network'])
def test_json_nested_100000_deep(templates, where):
    deep = '[' * 100_000 + ']' * 100_000
    with copy_of(templates['mlp']) as path:
        if where == 'manifest':
            text = deep
        else:
            manifest = json.loads((path / MANIFEST).read_text())
            manifest[where] = '__deep__'
            text = json.dumps(manifest).replace('"__deep__"', deep)
        (path / MANIFEST).write_text(text)
        levels = 100_000 if where == 'manifest' else 100_001  # inside the manifest's object
        assert f'{MANIFEST} nests JSON {levels} levels deep; at most {MAX_JSON_DEPTH} levels ' \
               'are read' in refusal(path)


@pytest.mark.parametrize('name', [MANIFEST, WEIGHTS])
def test_a_fifo_is_refused_without_opening_it(templates, name):
    with copy_of(templates['mlp']) as path:
        (path / name).unlink()
        os.mkfifo(path / name)
        # Opening it for reading would wait for a writer: `deadline` fails the test if it does.
        assert refusal(path).endswith(f'{name} is a FIFO (named pipe); expected a regular '
                                      'file of at most '
                                      f'{"4 MiB" if name == MANIFEST else "256 MiB"}')


def test_a_manifest_linked_to_dev_zero(templates):
    with copy_of(templates['mlp']) as path:
        (path / MANIFEST).unlink()
        os.symlink('/dev/zero', path / MANIFEST)
        assert refusal(path).endswith(f'{MANIFEST} is a link to /dev/zero, outside the '
                                      'checkpoint folder; only files inside it are read')


@pytest.mark.parametrize('name', [MANIFEST, WEIGHTS])
def test_links_leaving_the_folder_are_refused(templates, name):
    with copy_of(templates['mlp']) as path:
        outside = path.parent / f'outside-{name}'
        (path / name).rename(outside)
        os.symlink(outside, path / name)
        assert refusal(path).endswith(f'{name} is a link to {outside}, outside the '
                                      'checkpoint folder; only files inside it are read')
        (path / name).unlink()
        os.symlink(os.path.join('..', outside.name), path / name)
        assert 'outside the checkpoint folder' in refusal(path)


def test_links_within_the_folder_and_a_linked_folder_load(templates):
    with copy_of(templates['mlp']) as path:
        (path / 'stored').mkdir()
        for name in (MANIFEST, WEIGHTS):
            (path / name).rename(path / 'stored' / name)
            os.symlink(os.path.join('stored', name), path / name)
        assert load_or_refuse(path) == 'loaded'
        latest = path.parent / 'latest'
        os.symlink(path, latest)
        assert load_checkpoint(latest, expected_spec=SPEC).name == 'latest'


def test_sockets_and_devices_are_not_read(templates):
    with copy_of(templates['mlp']) as path:
        (path / WEIGHTS).unlink()
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(path / WEIGHTS))
            assert refusal(path).endswith(f'{WEIGHTS} is a socket; expected a regular file '
                                          'of at most 256 MiB')
        (path / WEIGHTS).unlink()
        try:
            os.mknod(path / WEIGHTS, stat.S_IFCHR | 0o600, os.makedev(1, 5))  # as /dev/zero
        except OSError:
            pytest.skip('this machine may not create device files')
        assert f'{WEIGHTS} is a character device' in refusal(path)


def test_a_network_that_gives_nan_on_every_nonzero_input(tmp_path):
    # Normalising by 1e-45 sends any observation but the mean (zero) past float32's range:
    # a zero observation, all the loader tried before, gives finite actions.
    policy = mlp_policy(obs_std=1e-45, obs_mean=(0.0, 0.0, 0.0))
    with torch.no_grad():
        assert torch.isfinite(policy(torch.zeros(1, 3))).all()
        assert torch.isnan(policy(torch.full((1, 3), 1e-3))).all()
    text = refusal(save(tmp_path / 'tiny_std', policy))
    assert 'the network outputs non-finite actions ([nan]) on an observation of all 1 ' \
           '([1.0, 1.0, 1.0]); its weights or normalisation are broken' in text


def test_probes_come_from_the_checkpoints_own_normalisation():
    labels = dict(probe_observations(mlp_policy(obs_std=2.0)))
    mean = np.array([0.1, -0.2, 0.3], dtype=np.float32)
    np.testing.assert_allclose(labels['its mean observation'], mean)
    np.testing.assert_allclose(labels['its mean + 3 std observation'], mean + 6.0, rtol=1e-6)
    np.testing.assert_allclose(labels['its mean - 1 std observation'], mean - 2.0, rtol=1e-6)
    assert 'an observation drawn from its mean and std' in labels
    assert 'a zero observation' in labels and 'an observation of all -1' in labels


def test_nan_in_a_tensor_the_actions_do_not_read(tmp_path):
    policy = mlp_policy()
    with torch.no_grad():
        policy.log_std_head.bias[0] = math.nan  # the deterministic action never reads it
    path = save(tmp_path / 'nan', policy)
    assert refusal(path).endswith(f"{WEIGHTS} holds non-finite values in 'log_std_head.bias'; "
                                  'its training diverged or the file is corrupt')


def test_infinite_action_bounds_are_not_refused(templates):
    loaded = load_checkpoint(templates['lqr'], expected_spec=SPEC)
    assert torch.isinf(loaded.network.high).all()
    assert load_or_refuse(templates['lqr']) == 'loaded'


def test_oversized_files_are_refused_before_they_are_read(templates, monkeypatch):
    read = []

    def counted(fd, size):
        read.append(size)
        return os_read(fd, size)

    os_read = os.read
    monkeypatch.setattr(checkpoint_module.os, 'read', counted)
    with copy_of(templates['mlp']) as path:
        os.truncate(path / WEIGHTS, MAX_WEIGHTS_BYTES + 1)  # sparse: takes no disk
        assert refusal(path).endswith(f'{WEIGHTS} is {MAX_WEIGHTS_BYTES + 1} bytes long; '
                                      'expected a regular file of at most 256 MiB')
        os.truncate(path / MANIFEST, MAX_MANIFEST_BYTES + 1)
        assert f'{MANIFEST} is {MAX_MANIFEST_BYTES + 1} bytes long' in refusal(path)
    assert 0 < sum(read) < 1 << 16  # the first manifest, not a byte of the large files


@pytest.mark.parametrize('change, reason', [
    ({'hidden': [65536] * 64}, f'would hold up to 541174923306 numbers; at most '
                               f'{MAX_NETWORK_VALUES} are built'),
    ({'hidden': [10 ** 12]}, 'hidden width must be a whole number from 1 to 65536'),
    ({'hidden': [8] * 1000}, 'hidden must be a list of 0 to 64 layer widths'),
    ({'obs_dim': 10 ** 4000}, 'obs_dim must be a whole number from 1 to 131072, got 1000'),
    ({'obs_dim': 3.0}, 'obs_dim must be a whole number from 1 to 131072, got 3.0'),
    ({'act_dim': True}, 'act_dim must be a whole number from 1 to 256, got True'),
    ({'activation': 'os.system'}, 'activation must be one of relu, tanh, elu'),
    ({'type': 'pickle'}, 'type must be one of actor_critic, conv'),
    ({'type': ['mlp']}, 'type must be one of actor_critic, conv'),
    ({'head': None}, 'head must be one of deterministic, gaussian; got None'),
])
def test_descriptions_that_cannot_or_must_not_be_built(templates, change, reason):
    with copy_of(templates['mlp']) as path:
        edit_manifest(path, lambda m: m['network'].update(change))
        text = refusal(path)
        assert f'the network in {MANIFEST} cannot be built: ' in text and reason in text


def test_a_planner_that_would_plan_for_minutes(templates):
    with copy_of(templates['mlp']) as path:
        edit_manifest(path, lambda m: m.update(network={
            'type': 'mpc', 'obs_dim': 3, 'act_dim': 1, 'reward': 'pendulum',
            'ensemble_size': 5, 'hidden': [8], 'activation': 'elu',
            'planner': {'horizon': 1000, 'num_candidates': 100_000, 'iterations': 100}}))
        assert 'planner would take 10000000000 model steps per action' in refusal(path)


def header_of(data: bytes) -> tuple:
    size = int.from_bytes(data[:8], 'little')
    return json.loads(data[8:8 + size]), data[8 + size:]


def with_header(header: dict, rest: bytes) -> bytes:
    text = json.dumps(header).encode()
    return len(text).to_bytes(8, 'little') + text + rest


def first_tensor(header: dict) -> str:
    return sorted(k for k in header if k != '__metadata__')[0]


def test_safetensors_headers_are_checked_before_tensors_are_read(templates, monkeypatch):
    def no_tensors(data):
        raise AssertionError('tensors must not be read from a file whose header does not fit')

    monkeypatch.setattr(checkpoint_module, 'load_safetensors', no_tensors)
    with copy_of(templates['mlp']) as path:
        data = (path / WEIGHTS).read_bytes()
        header, rest = header_of(data)
        name = first_tensor(header)
        invalid = f'{WEIGHTS} is not a valid safetensors file'

        set_weights(path, (1 << 62).to_bytes(8, 'little') + data[8:])
        assert f'{invalid}: its header length is {1 << 62} bytes' in refusal(path)
        set_weights(path, data[:5])
        assert f'{invalid}: it holds 5 bytes, fewer than the 8' in refusal(path)
        set_weights(path, data[:-4])
        assert 'bytes of tensors after it, but the file holds' in refusal(path)
        set_weights(path, data + b'\0' * 64)
        assert 'it was cut short or extended' in refusal(path)

        bad = copy.deepcopy(header)
        bad[name]['dtype'] = 'F64'
        set_weights(path, with_header(bad, rest))
        assert f'the weights do not fit the network description in {MANIFEST}: {WEIGHTS} ' \
               f'holds {name!r} as F64' in refusal(path)
        bad = copy.deepcopy(header)
        bad[name]['shape'] = [10 ** 9, 10 ** 9]
        set_weights(path, with_header(bad, rest))
        assert 'the network needs F32' in refusal(path)
        bad = copy.deepcopy(header)
        bad['extra'] = bad.pop(name)
        set_weights(path, with_header(bad, rest))
        assert f"lacks [{name!r}] and holds unexpected ['extra']" in refusal(path)
        bad = copy.deepcopy(header)
        begin, end = bad[name]['data_offsets']
        bad[name]['data_offsets'] = [begin + 4, end + 4]
        set_weights(path, with_header(bad, rest))
        assert 'overlap or leave gaps' in refusal(path)
        bad = copy.deepcopy(header)
        bad[name]['data_offsets'] = [begin, end + 4]
        set_weights(path, with_header(bad, rest))
        assert f'{name!r} spans bytes {begin} to {end + 4}' in refusal(path)
        bad = copy.deepcopy(header)
        bad[name] = {'dtype': 'F32', 'shape': [-1]}
        set_weights(path, with_header(bad, rest))
        assert 'has no valid dtype, shape and data_offsets' in refusal(path)


def test_any_unexpected_error_is_a_refusal(templates, monkeypatch):
    def broken(description):
        return 1 / 0

    monkeypatch.setattr(checkpoint_module, 'build_policy', broken)
    text = refusal(templates['mlp'])
    assert text.endswith('cannot be loaded (ZeroDivisionError: division by zero)')
    with pytest.raises(CheckpointError, match='cannot be loaded .TypeError'):
        load_checkpoint(None)


# ------------------------------------------------------------------------------- fuzzing

scalars = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([0, 1, -1, 3, 8, 2 ** 31, 2 ** 63, 10 ** 400, 1e308, math.inf, -math.inf,
                     math.nan, 1e-45, '', 'mlp', 'relu', 'gaussian', 'pendulum', 'F32']),
    st.integers(), st.floats(), st.text(max_size=10))
json_values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=5),
                               st.dictionaries(st.text(max_size=8), children, max_size=5)),
    max_leaves=20)
DEEP = '"__deep__"'


def write_json(path: Path, value, depth: int = 0) -> None:
    """Write ``value`` as the manifest, with every "__deep__" string nested ``depth`` deep."""
    text = json.dumps(value)
    (path / MANIFEST).write_text(text.replace(DEEP, '[' * depth + '0' + ']' * depth))


# 200 examples.
@settings(max_examples=200)
@given(value=json_values)
def test_fuzz_arbitrary_json_as_the_manifest(templates, value):
    with copy_of(templates['mlp']) as path:
        write_json(path, value)
        event(load_or_refuse(path))


# 100 examples.
@settings(max_examples=100)
@given(data=st.binary(max_size=2000))
def test_fuzz_arbitrary_bytes_as_the_manifest(templates, data):
    with copy_of(templates['mlp']) as path:
        (path / MANIFEST).write_bytes(data)
        assert load_or_refuse(path) == 'refused'


REPLACEMENTS = st.one_of(json_values, st.just('__deep__'), st.sampled_from(
    [10 ** 4000, -(10 ** 4000), 2 ** 64, 1e308, -1e308, math.inf, math.nan, 0, -1, [], {},
     [None], ['mlp'], {'type': 'mlp'}, 'x' * 10_000]))


@st.composite
def mutations(draw, document, paths_from=()):
    """``document`` with one to four values (under ``paths_from``) dropped or replaced."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        paths = [p for p in paths_of(document) if p[:len(paths_from)] == tuple(paths_from)]
        if not paths:
            break
        path = draw(st.sampled_from(sorted(paths, key=repr)))
        parent, key = at(document, path[:-1]), path[-1]
        if draw(st.booleans()) and isinstance(parent, dict):
            del parent[key]
        else:
            # A copy: sampled_from hands out the same object every time, and a later
            # mutation must not change it for the examples after this one.
            parent[key] = copy.deepcopy(draw(REPLACEMENTS))
    return document


# 300 examples.
@settings(max_examples=300)
@given(data=st.data(), kind=st.sampled_from(['mlp', 'lqr']),
       depth=st.sampled_from([2, 60, 70, 100_000]))
def test_fuzz_mutated_manifests(templates, data, kind, depth):
    with copy_of(templates[kind]) as path:
        manifest = json.loads((path / MANIFEST).read_text())
        mutated = data.draw(mutations(manifest))
        write_json(path, mutated, depth)
        event(f'{kind}: {load_or_refuse(path)}')


# 200 examples.
@settings(max_examples=200)
@given(data=st.data(), kind=st.sampled_from(['mlp', 'lqr']))
def test_fuzz_mutated_network_descriptions(templates, data, kind):
    with copy_of(templates[kind]) as path:
        manifest = json.loads((path / MANIFEST).read_text())
        mutated = data.draw(mutations(manifest, paths_from=('network',)))
        write_json(path, mutated, depth=70)
        event(f'{kind}: {load_or_refuse(path)}')


@st.composite
def corrupt_weights(draw, data: bytes):
    """A weights file made from ``data``: replaced, cut, extended, overwritten or re-headed."""
    how = draw(st.sampled_from(['random', 'cut', 'extend', 'overwrite', 'header']))
    event(f'weights: {how}')
    if how == 'random':
        return draw(st.binary(max_size=4096))
    if how == 'cut':
        return data[:draw(st.integers(0, len(data) - 1))]
    if how == 'extend':
        return data + draw(st.binary(min_size=1, max_size=256))
    if how == 'overwrite':
        start = draw(st.integers(0, len(data) - 1))
        patch = draw(st.binary(min_size=1, max_size=16))
        return (data[:start] + patch + data[start + len(patch):])[:len(data)]
    header, rest = header_of(data)
    mutated = draw(mutations(header))
    return with_header(mutated, rest)


# 300 examples.
@settings(max_examples=300)
@given(data=st.data(), kind=st.sampled_from(['mlp', 'lqr']))
def test_fuzz_corrupt_weights(templates, data, kind):
    with copy_of(templates[kind]) as path:
        set_weights(path, data.draw(corrupt_weights((path / WEIGHTS).read_bytes())))
        event(f'{kind}: {load_or_refuse(path)}')


def replace(path: Path, name: str, how: str) -> None:
    """Replace the file ``name`` in checkpoint ``path`` by something that is not one."""
    target = path / name if name else path
    stored = path.parent / f'stored-{name or "folder"}'
    if target.exists():
        target.rename(stored)
    if how == 'folder':
        target.mkdir()
    elif how == 'fifo':
        os.mkfifo(target)
    elif how == 'socket':
        with socket.socket(socket.AF_UNIX) as server:
            server.bind(str(target))
    elif how == 'link inside':
        (path / 'moved').mkdir(exist_ok=True)
        shutil.move(stored, path / 'moved' / (name or 'folder'))
        os.symlink(os.path.join('moved', name or 'folder'), target)
    elif how == 'link outside':
        os.symlink(stored, target)
    elif how == 'link to a device':
        os.symlink('/dev/zero', target)
    elif how == 'dangling link':
        os.symlink(path.parent / 'nothing', target)
    elif how == 'link loop':
        os.symlink(target, target)
    elif how == 'empty file':
        target.touch()


KINDS_OF_FILE = ['folder', 'fifo', 'socket', 'link inside', 'link outside', 'link to a device',
                 'dangling link', 'link loop', 'empty file', 'unchanged']


# 100 examples.
@settings(max_examples=100)
@given(manifest=st.sampled_from(KINDS_OF_FILE), weights=st.sampled_from(KINDS_OF_FILE),
       folder=st.sampled_from(['unchanged', 'fifo', 'empty file', 'link loop',
                               'dangling link', 'link outside']))
def test_fuzz_files_replaced_by_other_things(templates, manifest, weights, folder):
    with copy_of(templates['mlp']) as path:
        for name, how in ((MANIFEST, manifest), (WEIGHTS, weights)):
            if how != 'unchanged':
                replace(path, name, how)
        target = path
        if folder == 'link outside':
            # A link to the checkpoint folder: the folder itself, not its files, is elsewhere.
            target = path.parent / 'linked'
            os.symlink(path, target)
        elif folder != 'unchanged':
            shutil.rmtree(path)
            replace(path, '', folder)
        outcome = load_or_refuse(target)
        allowed = {'unchanged', 'link inside'}
        if outcome == 'loaded':
            assert manifest in allowed and weights in allowed
        event(outcome)


def nesting(value) -> int:
    """How deep lists and dicts nest in ``value``, without recursion."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (list, dict)):
            depth += 1
            deepest = max(deepest, depth)
            stack.extend((child, depth) for child in
                         (node.values() if isinstance(node, dict) else node))
    return deepest


json_documents = st.recursive(
    st.one_of(st.none(), st.integers(), st.text(alphabet='[]{}"\\ab,:', max_size=6)),
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(alphabet='[]{}"\\ab', max_size=4), children, max_size=3)),
    max_leaves=40)


# 200 examples.
@settings(max_examples=200)
@given(value=json_documents, limit=st.integers(0, 6))
def test_fuzz_the_json_depth_scan_agrees_with_the_parser(value, limit):
    text = json.dumps(value)
    depth = nesting(value)
    found = json_depth(text, limit)
    if depth > limit:
        assert found == depth
    else:
        assert found <= limit
