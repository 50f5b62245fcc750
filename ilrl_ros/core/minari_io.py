"""Demonstrations to and from Minari, the Farama Foundation's offline-RL dataset format.

A Minari dataset (https://minari.farama.org) is a folder ``<root>/<namespace>/<name>-v<N>/data``
holding ``metadata.json`` and one HDF5 group per episode with ``observations`` (one more than
the steps: the observation after every action), ``actions``, ``rewards``, ``terminations``,
``truncations`` and ``infos``. ``export_minari`` writes one Minari episode per ilrl episode,
with the task spec in the dataset metadata; ``import_minari`` reads such a dataset, or any
Minari dataset with flat Box observations and Box actions, back into ``Demonstrations``.

Our rows pair an observation with the action taken from it; nothing is recorded after the
last action of an episode. An episode of N rows therefore exports as N - 1 transitions, the
N-th row's observation being the final observation and its action not exported. An import
gives one row per transition, so a round trip loses each episode's last row.
"""

from contextlib import contextmanager
from dataclasses import dataclass
import logging
import os
from pathlib import Path
import shutil
import warnings

import gymnasium as gym
import minari
from minari.data_collector import EpisodeBuffer
from minari.dataset.minari_dataset import parse_dataset_id
import numpy as np

from ilrl_ros.core.data import DatasetError, Demonstrations
from ilrl_ros.core.spec import contract_mismatch, spec_from_json, TaskSpec

logger = logging.getLogger(__name__)

#: Version of the ``ilrl_*`` keys this module writes into a Minari dataset's metadata.
MINARI_EXPORT_FORMAT = 1

LAST_ROW_NOTE = ('Each episode of N recorded rows is stored as N - 1 transitions: the N-th '
                 "row's observation is the final observation and its action is not stored, "
                 'because nothing was observed after it.')

MISSING_REWARDS = ('error', 'zero')


@dataclass(frozen=True)
class MinariExport:
    """What ``export_minari`` wrote."""

    path: Path
    """The dataset folder (``<root>/<dataset_id>``); ``minari.load_dataset`` opens it."""
    dataset_id: str
    """The Minari dataset id, ``namespace/name-vN``."""
    episodes: int
    """Episodes written."""
    steps: int
    """Transitions written (rows minus one per written episode)."""
    skipped_episodes: tuple
    """ilrl episode ids not written because they had a single row (no transition)."""
    rewards_available: object
    """True, False (all rewards were NaN, stored as 0) or 'partial' (some stored as 0)."""


def default_root() -> Path:
    """Minari's own choice of datasets folder: ``$MINARI_DATASETS_PATH`` or ~/.minari/datasets."""
    env = os.environ.get('MINARI_DATASETS_PATH')
    return Path(env) if env else Path.home() / '.minari' / 'datasets'


@contextmanager
def _datasets_root(root: Path):
    # Minari reads its root from the environment at each call; point it at ours meanwhile.
    before = os.environ.get('MINARI_DATASETS_PATH')
    os.environ['MINARI_DATASETS_PATH'] = str(root)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop('MINARI_DATASETS_PATH', None)
        else:
            os.environ['MINARI_DATASETS_PATH'] = before


def check_dataset_id(dataset_id: str) -> str:
    """Return ``dataset_id`` if Minari accepts it and it carries a version, else raise."""
    try:
        parse_dataset_id(dataset_id)
    except (ValueError, TypeError):
        raise DatasetError(f'Minari dataset id {dataset_id!r} is malformed; expected '
                           f'namespace/name-vN, e.g. ilrl/track_follow-expert-v0') from None
    return dataset_id


def episode_runs(episode: np.ndarray) -> list:
    """[(episode id, first row, end row)] for each contiguous run of one episode id."""
    episode = np.asarray(episode)
    if len(episode) == 0:
        return []
    starts = np.flatnonzero(np.r_[True, episode[1:] != episode[:-1]])
    ends = np.r_[starts[1:], len(episode)]
    runs = [(int(episode[s]), int(s), int(e)) for s, e in zip(starts, ends)]
    ids = [r[0] for r in runs]
    if len(set(ids)) != len(ids):
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        raise DatasetError(f'episode(s) {repeated} appear in more than one block of rows; a '
                           f'dataset keeps the rows of an episode together and in time order')
    return runs


def _description(data: Demonstrations, rewards_available, extra: str) -> str:
    rewards = {True: 'Rewards are those recorded on the reward topic.',
               False: 'The bag carried no reward: every reward is stored as 0 '
                      '(metadata ilrl_rewards_available is false).',
               'partial': 'Some steps had no recorded reward and store 0 (metadata '
                          'ilrl_rewards_available is "partial"; each episode lists them in '
                          'ilrl_reward_missing_steps).'}[rewards_available]
    return (f'{extra.strip()} ' if extra and extra.strip() else '') + (
        f'Demonstrations for the ilrl_ros task {data.spec.name!r}, exported by ilrl_ros. '
        f'{LAST_ROW_NOTE} {rewards} The last step of each episode is marked truncated (not '
        f'terminated) unless the exporter was told the episode ended in a terminal state. '
        f'Observation labels, action fields and the full task spec are in the metadata keys '
        f'ilrl_observation_labels, ilrl_action_fields and ilrl_task_spec; per-observation '
        f'ROS time stamps are in infos["stamp_ns"].')


def export_minari(data: Demonstrations, dataset_id: str, root=None, *,
                  author: str = 'ilrl_ros', author_email: str = None,
                  description: str = '', algorithm_name: str = 'expert demonstrations',
                  missing_rewards: str = 'error', terminal_episodes=(),
                  overwrite: bool = False) -> MinariExport:
    """Write ``data`` as the Minari dataset ``dataset_id`` under ``root``; return what was written.

    One Minari episode per ilrl episode, in row order. An episode of N rows becomes N - 1
    transitions: observations are rows 0..N-1 (N of them, the last being the final
    observation), actions and rewards rows 0..N-2; the last row's action is not exported.
    Episodes of a single row hold no transition and are skipped (``skipped_episodes``).

    Rewards: if every exported reward is NaN (a bag without a reward topic) they are stored
    as 0 and the metadata says ``ilrl_rewards_available: false``, so no learner mistakes
    them for a reward signal; ``import_minari`` turns them back into NaN. If only some are
    NaN the export is refused, unless ``missing_rewards='zero'``: then they are stored as 0
    and each episode's metadata lists the steps (``ilrl_reward_missing_steps``).

    Ends of episodes: a Demonstrations does not record why an episode ended, so the last
    step is marked truncated (a learner bootstraps from the final observation), except for
    the ilrl episode ids in ``terminal_episodes``, whose last step is marked terminated.

    ``root`` defaults to ``$MINARI_DATASETS_PATH`` or ~/.minari/datasets, as in Minari.
    """
    check_dataset_id(dataset_id)
    if missing_rewards not in MISSING_REWARDS:
        raise ValueError(f'missing_rewards={missing_rewards!r}; expected one of '
                         f'{", ".join(MISSING_REWARDS)}')
    spec = data.spec
    root = Path(root) if root is not None else default_root()
    target = root / dataset_id
    if target.exists():
        if not overwrite:
            raise DatasetError(f'Minari dataset {dataset_id!r} already exists at {target}; '
                               f'choose another id (e.g. a higher -vN version) or overwrite it')
        if not (target / 'data' / 'metadata.json').is_file():
            raise DatasetError(f'{target} exists but is not a Minari dataset; not deleting it')
        shutil.rmtree(target)

    runs = episode_runs(data.episode)
    kept = [r for r in runs if r[2] - r[1] >= 2]
    skipped = tuple(r[0] for r in runs if r[2] - r[1] < 2)
    if not kept:
        raise DatasetError(f'no episode has two or more rows ({len(runs)} episode(s) of one '
                           f'row): a Minari episode needs at least one transition')
    if skipped:
        logger.warning('skipped %d episode(s) of a single row (no transition): %s',
                       len(skipped), list(skipped))
    terminal = {int(e) for e in terminal_episodes}
    unknown = terminal - {r[0] for r in runs}
    if unknown:
        raise DatasetError(f'terminal episode(s) {sorted(unknown)} are not in the dataset; '
                           f'its episodes are {[r[0] for r in runs]}')

    exported = np.concatenate([data.reward[s:e - 1] for _, s, e in kept])
    missing = int(np.isnan(exported).sum())
    if missing == 0:
        rewards_available = True
    elif missing == len(exported):
        rewards_available = False
    elif missing_rewards == 'zero':
        rewards_available = 'partial'
    else:
        bad = [ep for ep, s, e in kept if np.isnan(data.reward[s:e - 1]).any()]
        raise DatasetError(f'{missing} of {len(exported)} transitions have no reward (NaN), '
                           f'in episode(s) {bad}; Minari stores a reward for every step. '
                           f"Pass missing_rewards='zero' (`ilrl export --missing-rewards "
                           f"zero`) to store them as 0, listed per episode in the metadata")

    buffers, episode_meta = [], []
    for index, (ep, s, e) in enumerate(kept):
        reward = data.reward[s:e - 1].astype(np.float64)
        nan = np.flatnonzero(np.isnan(reward))
        reward = np.where(np.isnan(reward), 0.0, reward)
        steps = e - s - 1
        terminations = np.zeros(steps, dtype=bool)
        truncations = np.zeros(steps, dtype=bool)
        (terminations if ep in terminal else truncations)[-1] = True
        buffers.append(EpisodeBuffer(
            id=index, observations=data.observations[s:e].astype(np.float32),
            actions=data.actions[s:e - 1].astype(np.float32), rewards=reward.tolist(),
            terminations=terminations.tolist(), truncations=truncations.tolist(),
            infos={'stamp_ns': data.stamp_ns[s:e].astype(np.int64)}))
        meta = {'ilrl_episode': ep, 'ilrl_rows': e - s}
        if len(nan):
            meta['ilrl_reward_missing_steps'] = nan.astype(np.int64)
        episode_meta.append(meta)

    observation_space = gym.spaces.Box(-np.inf, np.inf, shape=(spec.observation.size,),
                                       dtype=np.float32)
    action_space = gym.spaces.Box(spec.action.low.astype(np.float32),
                                  spec.action.high.astype(np.float32), dtype=np.float32)
    outside = int(np.sum(~np.all((data.actions >= action_space.low)
                                 & (data.actions <= action_space.high), axis=1)))
    if outside:
        logger.warning('%d row(s) have actions outside the task bounds %s..%s; exported as '
                       'recorded', outside, spec.action.low.tolist(), spec.action.high.tolist())
    with _datasets_root(root), warnings.catch_warnings():
        # Minari warns about every optional field left empty (code link, e-mail, env spec);
        # our tasks are not gymnasium-registered envs, and the metadata says what they are.
        warnings.filterwarnings('ignore', message='.*is set to None', category=UserWarning)
        warnings.filterwarnings('ignore', message='env_spec is None', category=UserWarning)
        dataset = minari.create_dataset_from_buffers(
            dataset_id, buffers, observation_space=observation_space,
            action_space=action_space, author=author, author_email=author_email,
            algorithm_name=algorithm_name,
            description=_description(data, rewards_available, description),
            data_format='hdf5')
    dataset.storage.update_metadata({
        'ilrl_format': MINARI_EXPORT_FORMAT,
        'ilrl_task': spec.name,
        'ilrl_task_spec': data.spec_json,
        'ilrl_observation_labels': spec.observation.labels(),
        'ilrl_action_fields': list(spec.action.fields),
        'ilrl_rewards_available': rewards_available,
        'ilrl_last_row_dropped': True,
        'ilrl_skipped_episodes': list(skipped),
        'ilrl_info': data.info,
    })
    dataset.storage.update_episode_metadata(episode_meta)
    return MinariExport(path=target, dataset_id=dataset_id, episodes=len(kept),
                        steps=sum(e - s - 1 for _, s, e in kept), skipped_episodes=skipped,
                        rewards_available=rewards_available)


def resolve_dataset(source, root=None) -> Path:
    """The ``data`` folder of a Minari dataset given as a folder or an id under ``root``."""
    path = Path(source)
    for candidate in (path / 'data', path):
        if (candidate / 'metadata.json').is_file():
            return candidate
    check_dataset_id(str(source))
    root = Path(root) if root is not None else default_root()
    data_path = root / str(source) / 'data'
    if not (data_path / 'metadata.json').is_file():
        raise DatasetError(f'Minari dataset {source!r}: not found at {data_path} (expected a '
                           f'folder with metadata.json; set --root or MINARI_DATASETS_PATH to '
                           f'the folder that holds it)')
    return data_path


def _flat_box(space, what: str, source) -> int:
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise DatasetError(f'Minari dataset {source}: its {what} space is {space}; only flat '
                           f'Box {what}s (one vector per step) can become Demonstrations')
    return int(space.shape[0])


def import_minari(source, root=None, spec: TaskSpec = None) -> Demonstrations:
    """Read a Minari dataset (a folder, or an id under ``root``) as ``Demonstrations``.

    One row per transition: observation t, action t, reward t; the final observation of an
    episode has no action and is not a row. Episode ids are the ilrl ones for our exports and
    Minari's episode ids otherwise; ``stamp_ns`` comes from ``infos['stamp_ns']`` where present
    and is the step index times the task's control period otherwise.

    The task spec comes from the dataset's metadata when ``export_minari`` wrote it (``spec``,
    if given, must then agree with it on what the policy sees and commands) and from ``spec``
    otherwise; either way the observation and action sizes must match the spec's.
    """
    data_path = resolve_dataset(source, root)
    try:
        dataset = minari.MinariDataset(data_path)
    except (ValueError, KeyError, OSError) as error:
        raise DatasetError(f'Minari dataset {source}: cannot be read: {error}') from None
    metadata = dataset.storage.metadata
    name = metadata.get('dataset_id', str(source))
    obs_size = _flat_box(dataset.observation_space, 'observation', name)
    act_size = _flat_box(dataset.action_space, 'action', name)

    stored = metadata.get('ilrl_task_spec')
    if int(metadata.get('ilrl_format', MINARI_EXPORT_FORMAT)) > MINARI_EXPORT_FORMAT:
        raise DatasetError(f'Minari dataset {name} was exported with ilrl keys of format '
                           f'{metadata["ilrl_format"]}; this version reads format '
                           f'{MINARI_EXPORT_FORMAT} (update ilrl_ros)')
    if stored is not None:
        stored_spec = spec_from_json(stored, origin=f'Minari dataset {name}')
        if spec is not None:
            where = contract_mismatch(stored_spec.contract(), spec.contract())
            if where:
                raise DatasetError(f'Minari dataset {name} was exported for task '
                                   f'{stored_spec.name!r}, which differs from task '
                                   f'{spec.name!r}: {where}')
        spec = stored_spec
    elif spec is None:
        raise DatasetError(f'Minari dataset {name} carries no ilrl task spec (it was not '
                           f'written by `ilrl export`); name the task it fits (--task) with '
                           f'an observation of {obs_size} and an action of {act_size} values')
    if obs_size != spec.observation.size or act_size != spec.action.size:
        raise DatasetError(
            f'Minari dataset {name} has observations of {obs_size} and actions of {act_size} '
            f'values; task {spec.name!r} expects observations of {spec.observation.size} '
            f'({", ".join(spec.observation.labels())}) and actions of {spec.action.size} '
            f'({", ".join(spec.action.fields)})')
    low, high = dataset.action_space.low, dataset.action_space.high
    if not (np.allclose(low, spec.action.low) and np.allclose(high, spec.action.high)):
        logger.warning('Minari dataset %s bounds its actions to %s..%s; task %r to %s..%s',
                       name, low.tolist(), high.tolist(), spec.name,
                       spec.action.low.tolist(), spec.action.high.tolist())

    rewards_available = metadata.get('ilrl_rewards_available', True)
    episode_meta = list(dataset.storage.get_episode_metadata(dataset.episode_indices))
    dt_ns = int(round(spec.dt * 1e9))
    parts = {k: [] for k in ('observations', 'actions', 'episode', 'stamp_ns', 'reward')}
    for episode, meta in zip(dataset.iterate_episodes(), episode_meta):
        steps = len(episode)
        observations = np.asarray(episode.observations, dtype=np.float32)
        actions = np.asarray(episode.actions, dtype=np.float32).reshape(steps, act_size)
        if len(observations) != steps + 1:
            raise DatasetError(f'Minari dataset {name}, episode {episode.id}: '
                               f'{len(observations)} observations for {steps} steps; Minari '
                               f'stores one more observation than steps')
        reward = np.asarray(episode.rewards, dtype=np.float64).copy()
        if rewards_available is False:
            reward[:] = np.nan
        missing = np.asarray(meta.get('ilrl_reward_missing_steps', []), dtype=np.int64)
        reward[missing] = np.nan
        stamps = (episode.infos or {}).get('stamp_ns')
        if stamps is not None and len(stamps) >= steps and np.issubdtype(
                np.asarray(stamps).dtype, np.integer):
            stamps = np.asarray(stamps[:steps], dtype=np.int64)
        else:
            stamps = np.arange(steps, dtype=np.int64) * dt_ns
        parts['observations'].append(observations[:steps])
        parts['actions'].append(actions)
        parts['episode'].append(np.full(steps, int(meta.get('ilrl_episode', episode.id))))
        parts['stamp_ns'].append(stamps)
        parts['reward'].append(reward)
    if not parts['observations']:
        raise DatasetError(f'Minari dataset {name} has no episodes')
    info = dict(metadata.get('ilrl_info') or {})
    info['minari_dataset'] = name
    info['minari_path'] = str(data_path)
    return Demonstrations(
        observations=np.concatenate(parts['observations']),
        actions=np.concatenate(parts['actions']),
        episode=np.concatenate(parts['episode']).astype(np.int64),
        stamp_ns=np.concatenate(parts['stamp_ns']),
        reward=np.concatenate(parts['reward']),
        spec_json=stored if stored is not None else spec.to_json(), info=info)
