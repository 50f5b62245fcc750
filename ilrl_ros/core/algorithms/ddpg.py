"""Deep deterministic policy gradient (DDPG) for continuous actions.

Lillicrap et al., "Continuous control with deep reinforcement learning", ICLR 2016
(arXiv:1509.02971); the deterministic policy gradient from Silver et al., ICML 2014. One
critic learns Q(s, a) against the target r + gamma Q'(s', mu'(s')); the actor ascends
Q(s, mu(s)); both targets follow by Polyak averaging. As in Stable-Baselines3 (and TD3's
"our DDPG"), exploration is Gaussian rather than Ornstein-Uhlenbeck noise.

TD3 is DDPG plus three changes, so DDPG runs TD3's loop (``td3.train_deterministic``) and
its gradient step (``DDPGLearner``, a ``TD3Learner``) with one critic, no target smoothing
and no delay; the policy is a ``DeterministicActor``.
"""

from dataclasses import dataclass
from typing import ClassVar

import torch

from ilrl_ros.core.algorithms.td3 import TD3Config, TD3Learner, train_deterministic
from ilrl_ros.core.rl.configs import config_dict, RLConfig
from ilrl_ros.core.rl.losses import td_target
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.train_log import TrainingLog


# rl-baselines3-zoo hyperparams/ddpg.yml (checked against commit 22e3ff2, April 2026). Our
# 'pendulum' task is Pendulum-v1 step for step.
DDPG_PRESETS = {
    'Pendulum-v1': dict(total_steps=20_000, gamma=0.98, buffer_size=200_000,
                        learning_starts=10_000, action_noise=0.1, gradient_steps=1,
                        train_freq=1, lr=1e-3, hidden=(400, 300)),
}
DDPG_PRESETS['pendulum'] = DDPG_PRESETS['Pendulum-v1']


@dataclass
class DDPGConfig(RLConfig):
    """DDPG settings (defaults: Stable-Baselines3's; ``for_env`` gives the zoo's tuned ones)."""

    presets: ClassVar[dict] = DDPG_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'buffer_size', 'batch_size',
                                        'train_freq', 'gradient_steps', 'log_every')
    fraction_fields: ClassVar[tuple] = ('gamma', 'tau')

    total_steps: int = 20_000
    """Environment steps."""
    lr: float = 1e-3
    """Adam learning rate of the actor and the critic."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 100
    """Uniformly random steps before learning starts."""
    batch_size: int = 256
    """Transitions per gradient step."""
    tau: float = 0.005
    """Polyak rate of the target networks."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 1
    """Environment steps between training rounds."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    action_noise: float = 0.1
    """Std of the Gaussian exploration noise, in normalised action units ([-1, 1]); 0.1 as
    in the TD3 paper (Stable-Baselines3 has no noise unless given some)."""
    hidden: tuple = (400, 300)
    """Hidden layer widths of the actor and of the critic."""
    activation: str = 'relu'
    """Activation between hidden layers: relu, tanh or elu."""
    seed: int = 0
    """Seed for initialisation, exploration, replay sampling and the env's first reset."""
    log_every: int = 1000
    """Environment steps between ``train/...`` scalars."""

    def as_td3(self) -> TD3Config:
        """The TD3 settings that run this DDPG: one critic, no smoothing, no delay."""
        return TD3Config(**vars(self), n_critics=1, policy_delay=1, target_policy_noise=0.0,
                         target_noise_clip=0.0)


def ddpg_target(rewards: torch.Tensor, terminated: torch.Tensor,
                next_q: torch.Tensor, gamma: float) -> torch.Tensor:
    """DDPG's target r + gamma (1 - terminated) Q'(s', mu'(s')), next_q [B].

    What ``td3.td3_target`` computes with one critic and no smoothing noise.
    """
    return td_target(rewards, terminated, next_q, gamma)


class DDPGLearner(TD3Learner):
    """DDPG's gradient step apart from any environment loop: TD3's, run by ``as_td3()``."""

    def __init__(self, obs_dim: int, act_dim: int, low, high,
                 config: DDPGConfig = DDPGConfig()):
        super().__init__(obs_dim, act_dim, low, high, config.as_td3())


def train(env_fn, config: DDPGConfig = DDPGConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train a ``DeterministicActor`` with DDPG on ``env_fn()`` (a Box action space)."""
    return train_deterministic(env_fn, config.as_td3(), log, progress,
                               report_config=config_dict(config))
