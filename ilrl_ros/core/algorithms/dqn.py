"""Deep Q-networks for discrete actions.

Mnih et al., "Human-level control through deep reinforcement learning", Nature 518, 2015
(replay buffer, target network, Huber loss); double DQN from van Hasselt, Guez & Silver,
"Deep Reinforcement Learning with Double Q-learning", AAAI 2016. A continuous task is run by
``DiscretizedActions`` (k torques per joint), and the ``QPolicy`` then returns the continuous
action of its greedy choice, so its checkpoint drives the robot like any other policy.
"""

import copy
from dataclasses import dataclass
import itertools
import logging
from typing import ClassVar

import gymnasium as gym
import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ilrl_ros.core.networks import QPolicy
from ilrl_ros.core.rl.buffers import ReplayBuffer
from ilrl_ros.core.rl.configs import config_dict, RLConfig
from ilrl_ros.core.rl.losses import td_target
from ilrl_ros.core.rl.optim import adam, polyak_update
from ilrl_ros.core.rl.progress import EpisodeReturns, Progress
from ilrl_ros.core.rl.results import RLResult
from ilrl_ros.core.rl.torch_settings import seed_everything, torch_settings
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

# rl-baselines3-zoo hyperparams/dqn.yml (checked against commit 22e3ff2, April 2026).
DQN_PRESETS = {
    'CartPole-v1': dict(total_steps=50_000, lr=2.3e-3, batch_size=64, buffer_size=100_000,
                        learning_starts=1000, gamma=0.99, target_update_interval=10,
                        train_freq=256, gradient_steps=128, exploration_fraction=0.16,
                        exploration_final_eps=0.04, hidden=(256, 256)),
    # Not from the zoo (it has no DQN for a Box task): Pendulum-v1 through
    # DiscretizedActions(bins=5), set here; about -110 after 10k steps (seeds 0 and 1).
    'Pendulum-v1': dict(total_steps=10_000, lr=1e-3, batch_size=128, buffer_size=50_000,
                        learning_starts=1000, gamma=0.98, train_freq=1, gradient_steps=1,
                        target_update_interval=1, tau=0.005, exploration_fraction=0.1,
                        exploration_final_eps=0.05, hidden=(256, 256)),
}
DQN_PRESETS['pendulum'] = DQN_PRESETS['Pendulum-v1']


@dataclass
class DQNConfig(RLConfig):
    """DQN settings (defaults: Stable-Baselines3's; ``for_env`` gives the zoo's tuned ones)."""

    presets: ClassVar[dict] = DQN_PRESETS
    positive_fields: ClassVar[tuple] = ('total_steps', 'buffer_size', 'batch_size',
                                        'train_freq', 'gradient_steps',
                                        'target_update_interval', 'log_every')
    fraction_fields: ClassVar[tuple] = ('gamma', 'tau', 'exploration_fraction',
                                        'exploration_initial_eps', 'exploration_final_eps')

    total_steps: int = 50_000
    """Environment steps."""
    lr: float = 1e-4
    """Adam learning rate."""
    buffer_size: int = 1_000_000
    """Replay buffer capacity (transitions)."""
    learning_starts: int = 100
    """Uniformly random steps before learning starts."""
    batch_size: int = 32
    """Transitions per gradient step."""
    gamma: float = 0.99
    """Discount factor."""
    train_freq: int = 4
    """Environment steps between training rounds."""
    gradient_steps: int = 1
    """Gradient steps per training round."""
    target_update_interval: int = 10_000
    """Environment steps between target network updates."""
    tau: float = 1.0
    """Target update: target <- (1 - tau) target + tau online (1: a hard copy)."""
    exploration_fraction: float = 0.1
    """Share of ``total_steps`` over which epsilon falls linearly to its final value."""
    exploration_initial_eps: float = 1.0
    """Epsilon at the start (probability of a uniformly random action)."""
    exploration_final_eps: float = 0.05
    """Epsilon after the decay."""
    double_q: bool = False
    """Double DQN: the online network picks the next action, the target network values it."""
    max_grad_norm: float = 10.0
    """Clip the gradient to this global norm."""
    hidden: tuple = (64, 64)
    """Hidden layer widths of the Q-network."""
    activation: str = 'relu'
    """Activation between hidden layers: relu, tanh or elu."""
    normalize_obs: bool = False
    """Normalise observations with the mean and std of the warm-up transitions (frozen
    then, stored in the network)."""
    seed: int = 0
    """Seed for initialisation, exploration, replay sampling and the env's first reset."""
    log_every: int = 1000
    """Environment steps between ``train/...`` scalars."""

    def __post_init__(self):
        super().__post_init__()
        if self.normalize_obs and self.learning_starts < 2:
            raise ValueError(f'DQNConfig.normalize_obs measures the observations of the '
                             f'warm-up steps; learning_starts must be at least 2, got '
                             f'{self.learning_starts}')


def linear_epsilon(step: int, total_steps: int, config: DQNConfig) -> float:
    """Epsilon after ``step`` of ``total_steps``: linear from initial to final, then flat."""
    fraction = min(1.0, step / max(1.0, config.exploration_fraction * total_steps))
    return config.exploration_initial_eps + fraction * (
        config.exploration_final_eps - config.exploration_initial_eps)


def dqn_next_values(next_q_target: torch.Tensor,
                    next_q_online: torch.Tensor = None) -> torch.Tensor:
    """V(s') [B] from [B, n_actions] Q-values of the next states.

    DQN: max_a Q_target(s', a). Given the online network's values, double DQN:
    Q_target(s', argmax_a Q_online(s', a)).
    """
    if next_q_online is None:
        return next_q_target.max(dim=-1).values
    best = next_q_online.argmax(dim=-1, keepdim=True)
    return next_q_target.gather(-1, best).squeeze(-1)


def dqn_loss(q_values: torch.Tensor, actions: torch.Tensor,
             targets: torch.Tensor) -> torch.Tensor:
    """Huber loss (delta 1) between Q(s, a) of the taken actions and the TD targets."""
    taken = q_values.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
    return F.smooth_l1_loss(taken, targets)


class DiscretizedActions(gym.ActionWrapper):
    """A Box-action env seen through ``bins`` evenly spaced values per action dimension.

    Action i of the Discrete(bins ** act_dim) space is row i of ``action_table``, every
    combination of per-dimension values (e.g. bins=5 on [-2, 2]: -2, -1, 0, 1, 2).
    """

    def __init__(self, env: gym.Env, bins: int = 5):
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
            raise ValueError(f'DiscretizedActions needs a 1-D Box action space, got {space}')
        if bins < 2:
            raise ValueError(f'DiscretizedActions needs at least 2 bins per dimension, got '
                             f'{bins}')
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise ValueError(f'DiscretizedActions needs finite action bounds, got low='
                             f'{space.low.tolist()} high={space.high.tolist()}')
        values = [np.linspace(lo, hi, bins) for lo, hi in zip(space.low, space.high)]
        self.action_table = np.array(list(itertools.product(*values)), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(len(self.action_table))

    def action(self, action) -> np.ndarray:
        return self.action_table[int(action)]


def action_table_for(env: gym.Env) -> np.ndarray:
    """[n_actions, act_dim] table from the action index to what the robot is sent."""
    try:
        # Found through any wrappers around a DiscretizedActions.
        return np.asarray(env.get_wrapper_attr('action_table'), dtype=np.float32)
    except AttributeError:
        pass
    space = env.action_space
    if isinstance(space, gym.spaces.Discrete):
        return (space.start + np.arange(space.n, dtype=np.float32))[:, None]
    raise ValueError(f'DQN needs a Discrete action space, got {space}; wrap a continuous '
                     f'task in DiscretizedActions(env, bins=5)')


def train(env_fn, config: DQNConfig = DQNConfig(), log: TrainingLog = None,
          progress=None) -> RLResult:
    """Train a ``QPolicy`` on ``env_fn()`` (Discrete actions, or a ``DiscretizedActions``)."""
    log = log or TrainingLog()
    with torch_settings(config.torch_threads, config.matmul_precision, flush_denormal=True):
        return _train(env_fn, config, log, progress)


def _train(env_fn, config: DQNConfig, log: TrainingLog, progress) -> RLResult:
    rng = seed_everything(config.seed)
    env = env_fn()
    table = action_table_for(env)
    obs_dim = int(np.prod(env.observation_space.shape))
    n_actions = len(table)
    q = QPolicy(obs_dim, n_actions, act_dim=table.shape[1], hidden=config.hidden,
                activation=config.activation, normalize_obs=config.normalize_obs,
                action_table=table)
    target = copy.deepcopy(q)
    target.requires_grad_(False)
    optimizer = adam(q.parameters(), config.lr)
    buffer = ReplayBuffer(obs_dim, (), config.buffer_size, act_dtype=np.int64)
    episodes = EpisodeReturns(log)
    tracker = Progress(config.total_steps, progress)
    loss_sum, updates, metrics = torch.zeros(()), 0, {}

    obs, _ = env.reset(seed=config.seed)
    for step in range(1, config.total_steps + 1):
        epsilon = linear_epsilon(step - 1, config.total_steps, config)
        if step <= config.learning_starts or rng.random() < epsilon:
            action = int(rng.integers(n_actions))
        else:
            with torch.inference_mode():
                values = q.q_values(torch.as_tensor(obs, dtype=torch.float32).view(1, -1))
            action = int(values.argmax())
        next_obs, reward, terminated, truncated, _ = env.step(action)
        buffer.add(np.reshape(obs, (1, -1)), [action], [reward],
                   np.reshape(next_obs, (1, -1)), [float(terminated)])
        episodes.add(reward, terminated or truncated, step)
        obs = env.reset()[0] if terminated or truncated else next_obs

        if step == config.learning_starts and config.normalize_obs:
            seen = buffer.obs[:len(buffer)]
            for net in (q, target):
                net.set_obs_normalization(seen.mean(0), np.maximum(seen.std(0), 1e-3))
        if step > config.learning_starts and step % config.train_freq == 0:
            for _ in range(config.gradient_steps):
                loss_sum += _update(q, target, optimizer, buffer.sample(config.batch_size, rng),
                                    config)
                updates += 1
        if step % config.target_update_interval == 0:
            polyak_update(target, q, config.tau)

        if step % config.log_every == 0 or step == config.total_steps:
            metrics = {'train/epsilon': epsilon, 'rollout/ep_return_mean': episodes.recent_mean(),
                       'train/steps_per_second': step / max(tracker.seconds, 1e-9)}
            if updates:
                metrics['train/loss'] = float(loss_sum) / updates
                loss_sum, updates = torch.zeros(()), 0
            for name, value in metrics.items():
                log.scalar(name, value, step)
        if step % 100 == 0 or step == config.total_steps:
            tracker(step, metrics)
    env.close()
    q.eval()
    return RLResult(policy=q, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=config.total_steps)


def _update(q: QPolicy, target: QPolicy, optimizer, batch, config: DQNConfig) -> torch.Tensor:
    with torch.no_grad():
        next_q_online = q.q_values(batch.next_obs) if config.double_q else None
        next_values = dqn_next_values(target.q_values(batch.next_obs), next_q_online)
        targets = td_target(batch.rewards, batch.terminated, next_values, config.gamma)
    loss = dqn_loss(q.q_values(batch.obs), batch.actions, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    nn.utils.clip_grad_norm_(q.parameters(), config.max_grad_norm, foreach=True)
    optimizer.step()
    return loss.detach()
