"""What a reinforcement learning ``train`` returns."""

from dataclasses import dataclass

from torch import nn

from ilrl_ros.core.train_log import TrainingLog


@dataclass
class RLResult:
    """What a reinforcement learning ``train`` returns: the policy and how it was trained."""

    policy: nn.Module
    """The trained network, in eval mode (observation statistics frozen)."""
    log: TrainingLog
    """The run's scalars (``train/...``, ``rollout/...``)."""
    config: dict
    """The config it ran with, JSON-able (``configs.config_dict``)."""
    seconds: float
    """Wall time of the training loop."""
    env_steps: int
    """Environment steps taken, over all environments."""
