"""Checkpoints: safetensors weights plus a JSON manifest, in one folder.

``manifest.json`` holds the format version, the algorithm, the network description, the
task spec, normalisation and training provenance, and the SHA-256 of the weights file.
Loading never unpickles: the network is rebuilt from the description and the tensors are
read with safetensors. A checkpoint whose task contract differs from the running task's is
refused with the first difference.
"""

import dataclasses
from dataclasses import dataclass
import hashlib
import json
import os
from pathlib import Path
import shutil
import tempfile
import time

import numpy as np
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
import torch

from ilrl_ros.core.policies import build_policy
from ilrl_ros.core.spec import contract_mismatch, SpecError, spec_from_json, TaskSpec

FORMAT_VERSION = 1
MANIFEST, WEIGHTS = 'manifest.json', 'weights.safetensors'


class CheckpointError(ValueError):
    """A checkpoint is missing, corrupt, or does not fit the running task."""


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


def read_manifest(path) -> dict:
    """Read and check a checkpoint's manifest without loading the weights."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f'checkpoint {path}: no such file or folder')
    if not path.is_dir():
        raise CheckpointError(f'checkpoint {path}: expected a folder holding {MANIFEST} and '
                              f'{WEIGHTS}, got a file')
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except FileNotFoundError:
        raise CheckpointError(f'checkpoint {path}: {MANIFEST} is missing') from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise CheckpointError(f'checkpoint {path}: {MANIFEST} is not valid JSON '
                              f'({error})') from None
    if not isinstance(manifest, dict):
        raise CheckpointError(f'checkpoint {path}: {MANIFEST} must hold a JSON object')
    version = manifest.get('format_version')
    if version != FORMAT_VERSION:
        raise CheckpointError(f'checkpoint {path}: format_version {version!r}; this ilrl_ros '
                              f'reads format {FORMAT_VERSION}')
    for key in ('algorithm', 'network', 'task_spec', 'weights_sha256'):
        if key not in manifest:
            raise CheckpointError(f'checkpoint {path}: {MANIFEST} lacks {key!r}')
    return manifest


def load_checkpoint(path, expected_spec: TaskSpec = None) -> LoadedPolicy:
    """Load and verify a checkpoint; refuse it if it does not fit ``expected_spec``."""
    path = Path(path)
    manifest = read_manifest(path)
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
    weights = path / WEIGHTS
    if not weights.is_file():
        raise CheckpointError(f'checkpoint {path}: {WEIGHTS} is missing')
    if _sha256(weights) != manifest['weights_sha256']:
        raise CheckpointError(f'checkpoint {path}: {WEIGHTS} does not match the SHA-256 in '
                              f'{MANIFEST}; the file is corrupt or was replaced')
    try:
        network = build_policy(manifest['network'])
        tensors = load_file(str(weights))
        network.load_state_dict(tensors, strict=True)
    except (ValueError, RuntimeError, SafetensorError, OSError) as error:
        raise CheckpointError(f'checkpoint {path}: the weights do not fit the network '
                              f'description: {error}') from None
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
    loaded = LoadedPolicy(path=path, manifest=manifest, spec=spec, network=network)
    probe = loaded.act(np.zeros(spec.observation.size, dtype=np.float32))
    if not np.all(np.isfinite(probe)):
        raise CheckpointError(f'checkpoint {path}: the network outputs non-finite actions '
                              f'({probe.tolist()}) on a zero observation')
    return loaded
