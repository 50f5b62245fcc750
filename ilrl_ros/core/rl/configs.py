"""What every RL algorithm's config carries: tuned presets, torch settings and validation.

A config is a dataclass with a docstring per field that derives from ``RLConfig`` (one
level, no deeper): it names its presets in ``presets`` (``for_env`` looks them up), the
fields that must be positive integers in ``positive_fields`` and those that must lie in
[0, 1] in ``fraction_fields``; ``__post_init__`` refuses values that cannot run, naming the
field and what it must be.
"""

from dataclasses import asdict, dataclass, replace
from typing import ClassVar

from ilrl_ros.core.device import check_device_setting
from ilrl_ros.core.networks import ACTIVATIONS
from ilrl_ros.core.rl.torch_settings import MATMUL_PRECISIONS


@dataclass
class RLConfig:
    """The base of the on- and off-policy configs (REINFORCE, A2C, PPO, DQN, DDPG, TD3, SAC)."""

    torch_threads: int = 1
    """Intra-op threads while training (restored afterwards)."""
    matmul_precision: str = 'highest'
    """Float32 matmul precision while training: 'highest', 'high' or 'medium' (see
    ``core/rl/torch_settings.py``)."""
    device: str = 'cpu'
    """Where the networks, the optimiser and the minibatches live: 'cpu', 'cuda',
    'cuda:N' or 'auto' (a GPU when there is one). Acting during training runs there too;
    the checkpoint holds CPU tensors whatever trained it."""

    presets: ClassVar[dict] = {}
    positive_fields: ClassVar[tuple] = ()
    fraction_fields: ClassVar[tuple] = ()

    def __post_init__(self):
        name = type(self).__name__
        for field in (*self.positive_fields, 'torch_threads'):
            value = getattr(self, field)
            if not (isinstance(value, int) and value >= 1):
                raise ValueError(f'{name}.{field} must be a positive integer, got {value!r}')
        for field in self.fraction_fields:
            value = getattr(self, field)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f'{name}.{field} must lie in [0, 1], got {value!r}')
        if self.matmul_precision not in MATMUL_PRECISIONS:
            raise ValueError(f'{name}.matmul_precision {self.matmul_precision!r} is not one '
                             f'of {", ".join(MATMUL_PRECISIONS)}')
        check_device_setting(name, self.device)
        activation = getattr(self, 'activation', None)
        if activation is not None and activation not in ACTIVATIONS:
            raise ValueError(f'{name}.activation {activation!r} is not one of '
                             f'{", ".join(ACTIVATIONS)}')

    @classmethod
    def for_env(cls, env_id: str, **overrides):
        """The tuned settings for ``env_id`` (see the algorithm's presets), then overrides."""
        if env_id not in cls.presets:
            algorithm = cls.__name__.removesuffix('Config')
            known = (f'presets exist for {", ".join(sorted(cls.presets))}' if cls.presets
                     else f'{algorithm} has no presets')
            raise ValueError(f'no {algorithm} preset for {env_id!r}; {known}')
        return replace(cls(**cls.presets[env_id]), **overrides)


def config_dict(config) -> dict:
    """The config as JSON-able values (tuples become lists) for logs and checkpoints."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()}
