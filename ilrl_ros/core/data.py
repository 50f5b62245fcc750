"""Demonstration datasets and normalisation statistics.

A dataset is an ``.npz`` file of plain arrays (never pickled) plus the task spec it was
recorded under, so a dataset recorded for one task cannot be trained into a policy for
another by mistake.
"""

from dataclasses import dataclass, field
import json
from pathlib import Path

import numpy as np

from ilrl_ros.core.spec import spec_from_json, TaskSpec

DATASET_FORMAT = 1


class DatasetError(ValueError):
    """A dataset file is missing, malformed, or does not fit the task."""


@dataclass(frozen=True)
class Demonstrations:
    """Observation/action pairs from demonstrations, one row per control step.

    ``episode`` numbers the trajectory each row belongs to (rows of one episode are
    contiguous and in time order); ``reward`` is NaN where the bag carried no reward.
    """

    observations: np.ndarray
    actions: np.ndarray
    episode: np.ndarray
    stamp_ns: np.ndarray
    reward: np.ndarray
    spec_json: str
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        n = len(self.observations)
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise DatasetError(f'observations and actions must be 2-D, got shapes '
                               f'{self.observations.shape} and {self.actions.shape}')
        for name in ('actions', 'episode', 'stamp_ns', 'reward'):
            if len(getattr(self, name)) != n:
                raise DatasetError(f'{name} has {len(getattr(self, name))} rows, '
                                   f'observations has {n}')
        if not (np.all(np.isfinite(self.observations)) and np.all(np.isfinite(self.actions))):
            raise DatasetError('observations and actions must be finite')

    def __len__(self) -> int:
        return len(self.observations)

    @property
    def spec(self) -> TaskSpec:
        return spec_from_json(self.spec_json, origin='dataset')

    @property
    def num_episodes(self) -> int:
        return len(np.unique(self.episode))

    def save(self, path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + '.tmp.npz')
        np.savez_compressed(
            tmp, observations=self.observations.astype(np.float32),
            actions=self.actions.astype(np.float32), episode=self.episode.astype(np.int64),
            stamp_ns=self.stamp_ns.astype(np.int64), reward=self.reward.astype(np.float64),
            spec_json=np.array(self.spec_json), info_json=np.array(json.dumps(self.info)),
            format=np.array(DATASET_FORMAT))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path) -> 'Demonstrations':
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f'dataset {path}: no such file (expected an .npz written by '
                               f'`ilrl convert`)')
        try:
            with np.load(path, allow_pickle=False) as arrays:
                content = {k: arrays[k] for k in arrays.files}
        except (ValueError, OSError) as error:
            raise DatasetError(f'dataset {path}: not a readable .npz file: {error}') from None
        missing = {'observations', 'actions', 'episode', 'stamp_ns', 'reward', 'spec_json',
                   'format'} - set(content)
        if missing:
            raise DatasetError(f'dataset {path}: missing arrays {sorted(missing)}')
        if int(content['format']) != DATASET_FORMAT:
            raise DatasetError(f'dataset {path}: format {int(content["format"])}, this '
                               f'version reads format {DATASET_FORMAT}')
        return cls(observations=content['observations'], actions=content['actions'],
                   episode=content['episode'], stamp_ns=content['stamp_ns'],
                   reward=content['reward'], spec_json=str(content['spec_json']),
                   info=json.loads(str(content.get('info_json', '{}'))))


@dataclass(frozen=True)
class Normalizer:
    """Per-dimension affine normalisation: (x - mean) / std, with a floor on std."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray, min_std: float = 1e-3) -> 'Normalizer':
        x = np.asarray(x, dtype=np.float64)
        return cls(mean=x.mean(axis=0), std=np.maximum(x.std(axis=0), min_std))

    @classmethod
    def identity(cls, size: int) -> 'Normalizer':
        return cls(mean=np.zeros(size), std=np.ones(size))

    def to_dict(self) -> dict:
        return {'mean': self.mean.tolist(), 'std': self.std.tolist()}

    @classmethod
    def from_dict(cls, data: dict) -> 'Normalizer':
        return cls(mean=np.asarray(data['mean'], dtype=np.float64),
                   std=np.asarray(data['std'], dtype=np.float64))
