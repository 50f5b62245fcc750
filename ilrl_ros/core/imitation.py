"""Train behavior cloning, RWR or AWR on a dataset and save the checkpoint, in one call.

The one path from a dataset to a checkpoint that ``ilrl train bc|rwr|awr``, ``ilrl demo``
and live DAgger share: build the algorithm's config, train with a training log (TensorBoard,
CSV, curves.png), and write the checkpoint with the dataset's provenance.
"""

import importlib

from ilrl_ros.core.algorithms.bc import BCConfig
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.data import Demonstrations
from ilrl_ros.core.train_log import console_progress, TrainingLog

# Imitation algorithms that learn from a dataset: bc (plain), rwr and awr (weighted by
# returns; their configs hold a BCConfig under `bc`).
ALGORITHMS = ('bc', 'rwr', 'awr')


def _given(values) -> dict:
    return {k: v for k, v in (values or {}).items() if v is not None}


def train_and_save(data: Demonstrations, output, *, algorithm: str = 'bc', bc: dict = None,
                   options: dict = None, log_dir=None, progress=None, label: str = None,
                   provenance: dict = None):
    """Train ``algorithm`` on ``data``; write the checkpoint to ``output``.

    ``bc`` sets BCConfig fields (None values keep the defaults); ``options`` the RWR / AWR
    config's own fields. The checkpoint is labelled ``label`` (default: the algorithm) and
    its provenance joins the training figures to ``provenance``. Returns (path, result).
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f'algorithm {algorithm!r} does not train from a dataset; expected one '
                         f'of {", ".join(ALGORITHMS)}')
    module = importlib.import_module(f'ilrl_ros.core.algorithms.{algorithm}')
    bc_config = BCConfig(**_given(bc))
    if algorithm == 'bc':
        config = bc_config
    else:
        config = getattr(module, f'{algorithm.upper()}Config')(bc=bc_config, **_given(options))
    log = TrainingLog(log_dir)
    try:
        result = module.train(data, config, log, progress=progress or console_progress(algorithm))
    finally:
        log.close()
    figures = {'rows': len(data), 'episodes': data.num_episodes,
               'train_loss': result.train_loss, 'val_loss': result.val_loss,
               'seconds': result.seconds}
    if hasattr(result, 'effective_sample_size'):
        figures['effective_sample_size'] = result.effective_sample_size
    path = save_checkpoint(output, result.policy, algorithm=label or algorithm, spec=data.spec,
                           config=result.config, provenance={**figures, **(provenance or {})})
    return path, result


def train_from_file(data_path, output, *, algorithm: str = 'bc', log_dir=None, bc: dict = None,
                    options: dict = None, progress=None):
    """``train_and_save`` on the dataset file ``data_path`` (its path and info in provenance)."""
    data = Demonstrations.load(data_path)
    return train_and_save(data, output, algorithm=algorithm, bc=bc, options=options,
                          log_dir=log_dir, progress=progress,
                          provenance={'dataset': str(data_path), **data.info})
