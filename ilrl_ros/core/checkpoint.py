"""Checkpoints: safetensors weights plus a JSON manifest, in one folder.

``manifest.json`` holds the format version, the algorithm, the network description, the
task spec, normalisation and training provenance, and the SHA-256 of the weights file.
Loading never unpickles: the network is rebuilt from the description and the tensors are
read with safetensors. A checkpoint whose task contract differs from the running task's is
refused with the first difference.

A checkpoint folder may be corrupt or hostile, and the policy node loads one while it drives
the robot, so loading is bounded and total: only regular files inside the folder are read
(never a FIFO, a device, or a link leading out of the folder), each up to a size limit, JSON
up to a nesting depth; the network description is checked before it is built, and the
tensors in the weights file against that network before they are read. Whatever is wrong,
the error is a ``CheckpointError`` naming the checkpoint, the file and what was expected.
"""

import dataclasses
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
import re
import shutil
import stat
import tempfile
import time

import numpy as np
from safetensors.torch import load as load_safetensors, save_file
import torch

from ilrl_ros.core.networks import build_policy
from ilrl_ros.core.spec import contract_mismatch, SpecError, spec_from_json, TaskSpec

FORMAT_VERSION = 1
MANIFEST, WEIGHTS = 'manifest.json', 'weights.safetensors'

# What a checkpoint may make the loader read. A file over its limit, or JSON nested deeper,
# is refused before it is parsed.
MAX_MANIFEST_BYTES = 4 << 20
MAX_WEIGHTS_BYTES = 256 << 20
MAX_HEADER_BYTES = 1 << 20
"""The JSON header of the safetensors weights file."""
MAX_JSON_DEPTH = 64
# Verification runs the network on the mean observation and on mean +/- these many standard
# deviations of the checkpoint's own normalisation statistics (besides zeros and +/-1).
PROBE_STDS = (1.0, 3.0)

# safetensors' name of each dtype a network's tensors may have, and its size in bytes.
DTYPES = {torch.float64: ('F64', 8), torch.float32: ('F32', 4), torch.float16: ('F16', 2),
          torch.bfloat16: ('BF16', 2), torch.int64: ('I64', 8), torch.int32: ('I32', 4),
          torch.int16: ('I16', 2), torch.int8: ('I8', 1), torch.uint8: ('U8', 1),
          torch.bool: ('BOOL', 1)}


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the running task."""


def _bytes(count: int) -> str:
    return f'{count >> 20} MiB' if count >= 1 << 20 and not count % (1 << 20) else \
        f'{count} bytes'


def _shown(value, limit: int = 200) -> str:
    text = str(value)
    return text if len(text) <= limit else text[:limit - 20] + f'... ({len(text)} characters)'


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def _jsonable(value):
    """JSON for what configs hold besides plain types: NumPy values, nested dataclasses."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if dataclasses.is_dataclass(value):
        return dataclasses.asdict(value)
    return str(value)


def save_checkpoint(path, policy: torch.nn.Module, *, algorithm: str, spec: TaskSpec,
                    config: dict, provenance: dict) -> Path:
    """Write a checkpoint folder atomically (a reader never sees half a checkpoint)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f'.{path.name}.', dir=path.parent))
    try:
        tensors = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS))
        manifest = {
            'format_version': FORMAT_VERSION,
            'algorithm': algorithm,
            'network': policy.description(),
            'task_spec': spec.raw,
            'observation_labels': spec.observation.labels(),
            'action_fields': list(spec.action.fields),
            'config': config,
            'provenance': {'created_unix': time.time(), **provenance},
            'weights_sha256': _sha256(tmp / WEIGHTS),
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True,
                                               default=_jsonable) + '\n')
        if path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


@dataclass
class LoadedPolicy:
    """A verified checkpoint, ready to act: ``act(observation) -> action``."""

    path: Path
    manifest: dict
    spec: TaskSpec
    network: torch.nn.Module

    @property
    def name(self) -> str:
        return self.path.name

    def act(self, observation: np.ndarray) -> np.ndarray:
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != (self.network.obs_dim,):
            raise ValueError(f'observation has shape {obs.shape}; the policy expects '
                             f'({self.network.obs_dim},)')
        with torch.inference_mode():
            out = self.network(torch.from_numpy(obs).unsqueeze(0))[0]
        return out.numpy().astype(np.float64)

    @property
    def recurrent(self) -> bool:
        """Whether the network keeps a memory between ``act`` calls (``networks/memory.py``)."""
        return bool(getattr(self.network, 'recurrent', False))

    def reset(self) -> None:
        """Clear the network's memory, as an episode starts (a no-op for a memoryless one)."""
        if hasattr(self.network, 'reset'):
            self.network.reset()


_FILE_KINDS = ((stat.S_ISDIR, 'a folder'), (stat.S_ISFIFO, 'a FIFO (named pipe)'),
               (stat.S_ISCHR, 'a character device'), (stat.S_ISBLK, 'a block device'),
               (stat.S_ISSOCK, 'a socket'))


def _kind(mode: int) -> str:
    return next((name for test, name in _FILE_KINDS if test(mode)), 'not a regular file')


def _folder(path: Path) -> Path:
    """The checkpoint folder, links resolved; refuse anything but an existing folder."""
    try:
        folder = Path(os.path.realpath(path, strict=True))
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {path}: no such file or folder') from None
    except OSError as error:
        raise CheckpointError(f'checkpoint {path}: cannot be opened as a folder '
                              f'({error.strerror or error})') from None
    if not stat.S_ISDIR(mode):
        got = 'a file' if stat.S_ISREG(mode) else _kind(mode)
        raise CheckpointError(f'checkpoint {path}: expected a folder holding {MANIFEST} and '
                              f'{WEIGHTS}, got {got}')
    return folder


def _read_file(checkpoint: Path, folder: Path, name: str, limit: int) -> bytes:
    """Read ``name`` in ``folder`` if it is a regular file inside it of at most ``limit`` bytes.

    Its type and size are checked before it is opened (opening a FIFO for reading would wait
    for a writer; a device may never end), and again on the open descriptor, which is opened
    without following links and without blocking, in case the file was replaced in between.
    """
    where = folder / name
    try:
        target = Path(os.path.realpath(where, strict=True))
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} is missing') from None
    except OSError as error:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} cannot be followed to a file '
                              f'({error.strerror or error}); expected a regular file') from None
    if not target.is_relative_to(folder):
        raise CheckpointError(f'checkpoint {checkpoint}: {name} is a link to {target}, outside '
                              f'the checkpoint folder; only files inside it are read')
    refusal = f'checkpoint {checkpoint}: {name} is {{}}; expected a regular file of at most ' \
              f'{_bytes(limit)}'
    flags = os.O_RDONLY | getattr(os, 'O_NONBLOCK', 0) | getattr(os, 'O_NOFOLLOW', 0) \
        | getattr(os, 'O_CLOEXEC', 0)
    try:
        info = os.stat(target)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(refusal.format(_kind(info.st_mode)))
        if info.st_size > limit:
            raise CheckpointError(refusal.format(f'{info.st_size} bytes long'))
        fd = os.open(target, flags)
    except OSError as error:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} cannot be read '
                              f'({error.strerror or error})') from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CheckpointError(refusal.format(_kind(info.st_mode)))
        chunks, total = [], 0
        while total <= limit:
            chunk = os.read(fd, min(max(info.st_size, 1 << 12) + 1, limit + 1 - total, 1 << 24))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as error:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} cannot be read '
                              f'({error.strerror or error})') from None
    finally:
        os.close(fd)
    if total > limit:
        raise CheckpointError(refusal.format(f'longer than {_bytes(limit)}'))
    return b''.join(chunks)


# A JSON string, possibly unterminated (so that matching never backtracks); what is left
# outside strings holds the structure.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
# +1 for each byte that opens an array or object, -1 for each that closes one.
_NESTING_STEP = np.zeros(256, dtype=np.int32)
_NESTING_STEP[[ord('['), ord('{')]] = 1
_NESTING_STEP[[ord(']'), ord('}')]] = -1


def json_depth(text: str, limit: int = MAX_JSON_DEPTH) -> int:
    """How deep arrays and objects nest in JSON ``text``, if deeper than ``limit``.

    Returns the depth (or a lower bound over ``limit``), or a number no larger than ``limit``
    where the text nests no deeper. Found without parsing, in time linear in the text, and
    stopping early once over ``limit``: Python's parser recurses once per level, so text
    nested deep enough raises RecursionError, or takes the interpreter's stack, before it
    could be refused.
    """
    if text.count('[') + text.count('{') <= limit:
        return limit  # at most this deep, whatever the order
    codes = np.frombuffer(_JSON_STRING.sub('', text).encode('utf-8', 'replace'),
                          dtype=np.uint8)
    depth, deepest, block = 0, 0, 1 << 20
    for start in range(0, len(codes), block):
        levels = depth + np.cumsum(_NESTING_STEP[codes[start:start + block]])
        if len(levels):
            deepest, depth = max(deepest, int(levels.max())), int(levels[-1])
        if deepest > limit:
            break
    return deepest


def _parse_json(checkpoint: Path, name: str, data: bytes):
    try:
        text = data.decode('utf-8')
    except UnicodeDecodeError as error:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} is not valid JSON (not UTF-8 '
                              f'text: {error})') from None
    depth = json_depth(text)
    if depth > MAX_JSON_DEPTH:
        raise CheckpointError(f'checkpoint {checkpoint}: {name} nests JSON {depth} levels deep; '
                              f'at most {MAX_JSON_DEPTH} levels are read')
    try:
        return json.loads(text)
    except (ValueError, RecursionError) as error:
        # JSONDecodeError, or an integer of more than 4300 digits.
        raise CheckpointError(f'checkpoint {checkpoint}: {name} is not valid JSON '
                              f'({_shown(error)})') from None


def _read_manifest(path: Path, folder: Path) -> dict:
    manifest = _parse_json(path, MANIFEST, _read_file(path, folder, MANIFEST,
                                                      MAX_MANIFEST_BYTES))
    if not isinstance(manifest, dict):
        raise CheckpointError(f'checkpoint {path}: {MANIFEST} must hold a JSON object')
    version = manifest.get('format_version')
    if isinstance(version, bool) or version != FORMAT_VERSION:
        raise CheckpointError(f'checkpoint {path}: format_version {_shown(repr(version))}; '
                              f'this ilrl_ros reads format {FORMAT_VERSION}')
    for key in ('algorithm', 'network', 'task_spec', 'weights_sha256'):
        if key not in manifest:
            raise CheckpointError(f'checkpoint {path}: {MANIFEST} lacks {key!r}')
    for key, kind, what in (('algorithm', str, 'a name'), ('network', dict, 'a JSON object'),
                            ('task_spec', dict, 'a JSON object'),
                            ('weights_sha256', str, 'a hexadecimal SHA-256')):
        if not isinstance(manifest[key], kind):
            raise CheckpointError(f'checkpoint {path}: {key} in {MANIFEST} must be {what}, got '
                                  f'{_shown(repr(manifest[key]))}')
    return manifest


def _refusing(path, call):
    """``call()``, with any exception other than CheckpointError turned into one.

    A checkpoint can be broken in more ways than the checks above foresee; whatever it
    makes the loader raise is a refusal of that checkpoint, never an error of another type.
    """
    try:
        return call()
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(f'checkpoint {path}: cannot be loaded ({type(error).__name__}: '
                              f'{_shown(error)})') from error


def read_manifest(path) -> dict:
    """Read and check a checkpoint's manifest without loading the weights."""
    return _refusing(path, lambda: _read_manifest(Path(path), _folder(Path(path))))


def _safetensors_header(path: Path, data: bytes) -> dict:
    """The header of the safetensors file ``data``, checked for form.

    Returns ``entries``, name -> (dtype, shape, data_offsets) of each tensor, and
    ``data_bytes``, how many bytes follow the header.
    """
    invalid = f'checkpoint {path}: {WEIGHTS} is not a valid safetensors file'
    if len(data) < 8:
        raise CheckpointError(f'{invalid}: it holds {len(data)} bytes, fewer than the 8 of its '
                              f'header length')
    size = int.from_bytes(data[:8], 'little')
    if size > min(MAX_HEADER_BYTES, len(data) - 8):
        raise CheckpointError(f'{invalid}: its header length is {size} bytes; the file holds '
                              f'{len(data) - 8} after it and a header may have at most '
                              f'{_bytes(MAX_HEADER_BYTES)}')
    header = _parse_json(path, f'the header of {WEIGHTS}', data[8:8 + size])
    if not isinstance(header, dict):
        raise CheckpointError(f'{invalid}: its header is not a JSON object')
    header.pop('__metadata__', None)
    entries = {}
    for name, entry in header.items():
        try:
            dtype, shape, offsets = entry['dtype'], entry['shape'], entry['data_offsets']
            valid = isinstance(dtype, str) and isinstance(shape, list) and all(
                type(v) is int and v >= 0 for v in shape) and isinstance(offsets, list) \
                and len(offsets) == 2 and all(type(v) is int and v >= 0 for v in offsets)
        except (TypeError, KeyError):
            valid = False
        if not valid:
            raise CheckpointError(f'{invalid}: tensor {_shown(repr(name))} has no valid dtype, '
                                  f'shape and data_offsets ({_shown(entry)})')
        entries[name] = (dtype, tuple(shape), tuple(offsets))
    return {'entries': entries, 'data_bytes': len(data) - 8 - size}


def _check_tensors_fit(path: Path, data: bytes, network: torch.nn.Module) -> None:
    """Check the weights file's header against the network before any tensor is read."""
    header = _safetensors_header(path, data)
    entries, state = header['entries'], network.state_dict()
    unfit = f'checkpoint {path}: the weights do not fit the network description in {MANIFEST}'
    missing = sorted(set(state) - set(entries))
    unexpected = sorted(set(entries) - set(state))
    if missing or unexpected:
        raise CheckpointError(_shown(
            f'{unfit}: {WEIGHTS} lacks {missing} and holds unexpected {unexpected}', 600))
    spans = []
    for name, tensor in state.items():
        dtype, shape, (begin, end) = entries[name]
        want_dtype, item_bytes = DTYPES.get(tensor.dtype, (str(tensor.dtype), 0))
        if (dtype, shape) != (want_dtype, tuple(tensor.shape)):
            raise CheckpointError(
                f'{unfit}: {WEIGHTS} holds {name!r} as {_shown(dtype, 20)} '
                f'{_shown(list(shape), 80)}; the network needs {want_dtype} '
                f'{list(tensor.shape)}')
        if end - begin != tensor.numel() * item_bytes:
            raise CheckpointError(
                f'checkpoint {path}: {WEIGHTS} is not a valid safetensors file: {name!r} spans '
                f'bytes {begin} to {end}, but {want_dtype} {list(tensor.shape)} takes '
                f'{tensor.numel() * item_bytes}')
        spans.append((begin, end))
    covered, contiguous = 0, True
    for begin, end in sorted(spans):
        if begin != covered:
            contiguous = False
            break
        covered = end
    invalid = f'checkpoint {path}: {WEIGHTS} is not a valid safetensors file'
    if not contiguous:
        raise CheckpointError(f'{invalid}: the data_offsets of its tensors overlap or leave '
                              f'gaps')
    if covered != header['data_bytes']:
        raise CheckpointError(f'{invalid}: its header places {covered} bytes of tensors after '
                              f'it, but the file holds {header["data_bytes"]}; it was cut short '
                              f'or extended')


def _normalisation(state: dict, obs_dim: int):
    """The checkpoint's own observation mean and std, if its network stores them."""
    for mean_key, std_key, var_key in (('obs_mean', 'obs_std', 'obs_var'),
                                       ('input_mean', 'input_std', None)):
        for key, mean in state.items():
            if not key.endswith(mean_key) or not mean.is_floating_point():
                continue
            prefix = key[:-len(mean_key)]
            std = state.get(prefix + std_key)
            if std is None and var_key and prefix + var_key in state:
                std = state[prefix + var_key].clamp(min=0).sqrt()
            if std is not None and mean.shape == std.shape and mean.ndim == 1 \
                    and mean.shape[0] >= obs_dim:
                return (mean[:obs_dim].double().numpy(), std[:obs_dim].double().numpy())
    return None


def probe_observations(network: torch.nn.Module) -> list:
    """(label, observation) pairs a sound network must map to finite actions.

    Zeros and +/-1 everywhere, and, where the network stores normalisation statistics, its
    mean, mean +/- k std, and a draw from them: a std near zero, or weights that overflow
    away from zero, give non-finite actions on these though not on a zero observation.
    """
    obs_dim = network.obs_dim
    probes = [('a zero observation', np.zeros(obs_dim)),
              ('an observation of all 1', np.ones(obs_dim)),
              ('an observation of all -1', -np.ones(obs_dim))]
    stats = _normalisation(network.state_dict(), obs_dim)
    if stats is not None:
        mean, std = stats
        draw = np.random.default_rng(0).standard_normal(obs_dim)
        probes.append(('its mean observation', mean))
        for k in PROBE_STDS:
            probes += [(f'its mean + {k:g} std observation', mean + k * std),
                       (f'its mean - {k:g} std observation', mean - k * std)]
        probes.append(('an observation drawn from its mean and std', mean + draw * std))
    observations = np.stack([obs for _, obs in probes])
    # Statistics too large for float32 give no observation to try.
    usable = np.all(np.abs(observations) <= np.finfo(np.float32).max, axis=1)
    return [(label, obs.astype(np.float32)) for (label, obs), ok in zip(probes, usable) if ok]


def _verify_outputs(path: Path, network: torch.nn.Module) -> None:
    """Refuse a network that acts non-finitely, or holds NaN or an infinite weight.

    The network runs on ``probe_observations`` and must give finite actions of its size.
    """
    probes = probe_observations(network)
    with torch.inference_mode():
        actions = network(torch.from_numpy(np.stack([obs for _, obs in probes])))
    if hasattr(network, 'reset'):
        network.reset()  # forget any plan made for the probes (MPC's warm start)
    actions = actions.detach().double().numpy()
    if actions.shape != (len(probes), network.act_dim):
        raise CheckpointError(f'checkpoint {path}: the network gives actions of shape '
                              f'{list(actions.shape[1:])}, expected [{network.act_dim}]')
    finite = np.all(np.isfinite(actions), axis=1)
    if not finite.all():
        label, obs = probes[int(np.argmin(finite))]
        raise CheckpointError(
            f'checkpoint {path}: the network outputs non-finite actions '
            f'({_shown(actions[int(np.argmin(finite))].tolist(), 80)}) on {label} '
            f'({_shown(obs.tolist(), 80)}); its weights or normalisation are broken')
    state = {name: tensor for name, tensor in network.state_dict().items()
             if tensor.is_floating_point()}
    # One check over all of a small network's numbers is faster than one per tensor; a large
    # one is not copied to do it.
    if not state or sum(t.numel() for t in state.values()) <= 1 << 20 and bool(
            torch.isfinite(torch.cat([t.reshape(-1) for t in state.values()])).all()):
        return
    parameters = {name for name, _ in network.named_parameters()}
    for name, tensor in state.items():
        # Action bounds may be infinite; nothing may be NaN, no weight infinite.
        if not bool(torch.isfinite(tensor).all()) and (
                name in parameters or bool(torch.isnan(tensor).any())):
            raise CheckpointError(f'checkpoint {path}: {WEIGHTS} holds non-finite values in '
                                  f'{name!r}; its training diverged or the file is corrupt')


def _load(path: Path, expected_spec: TaskSpec) -> LoadedPolicy:
    folder = _folder(path)
    manifest = _read_manifest(path, folder)
    try:
        spec = spec_from_json(json.dumps(manifest['task_spec']), origin=f'checkpoint {path}')
    except SpecError as error:
        raise CheckpointError(str(error)) from None
    if expected_spec is not None:
        difference = contract_mismatch(expected_spec.contract(), spec.contract())
        if difference:
            raise CheckpointError(
                f'checkpoint {path} was trained for task {spec.name!r} and does not fit the '
                f'running task {expected_spec.name!r}: {difference}')
    weights = _read_file(path, folder, WEIGHTS, MAX_WEIGHTS_BYTES)
    if hashlib.sha256(weights).hexdigest() != manifest['weights_sha256']:
        raise CheckpointError(f'checkpoint {path}: {WEIGHTS} does not match the SHA-256 in '
                              f'{MANIFEST}; the file is corrupt or was replaced')
    try:
        network = build_policy(manifest['network'])
    except ValueError as error:
        raise CheckpointError(f'checkpoint {path}: the network in {MANIFEST} cannot be built: '
                              f'{error}') from None
    _check_tensors_fit(path, weights, network)
    try:
        network.load_state_dict(load_safetensors(weights), strict=True)
    except Exception as error:
        raise CheckpointError(f'checkpoint {path}: the weights do not fit the network '
                              f'description: {_shown(error)}') from None
    if network.obs_dim != spec.observation.size or network.act_dim != spec.action.size:
        raise CheckpointError(
            f'checkpoint {path}: network maps {network.obs_dim} -> {network.act_dim} but its '
            f'task has {spec.observation.size} observations and {spec.action.size} actions')
    layout = tuple(tuple(int(v) for v in part) for part in getattr(network, 'image_layout', ()))
    if layout and layout != tuple(spec.observation.image_layout()):
        raise CheckpointError(
            f'checkpoint {path}: the network reads images at [start, height, width] '
            f'{[list(p) for p in layout]} but its task lays them out at '
            f'{[list(p) for p in spec.observation.image_layout()]}')
    network.eval()
    _verify_outputs(path, network)
    return LoadedPolicy(path=path, manifest=manifest, spec=spec, network=network)


def load_checkpoint(path, expected_spec: TaskSpec = None) -> LoadedPolicy:
    """Load and verify a checkpoint; refuse it if it does not fit ``expected_spec``.

    Every failure, of whatever kind, is a ``CheckpointError`` that says what was wrong.
    """
    return _refusing(path, lambda: _load(Path(path), expected_spec))
