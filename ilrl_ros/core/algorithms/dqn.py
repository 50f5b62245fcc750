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

from ilrl_ros.core.device import resolve_device
from ilrl_ros.core.networks import QPolicy
from ilrl_ros.core.rl.buffers import ReplayBuffer, TransitionBatch
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


def box_action_table(space: gym.spaces.Box, bins: int) -> np.ndarray:
    """[bins ** act_dim, act_dim]: each combination of ``bins`` values per Box dimension.

    The values are evenly spaced between finite bounds (bins=5 on [-2, 2]: -2, -1, 0, 1, 2).
    """
    if not isinstance(space, gym.spaces.Box) or len(space.shape) != 1:
        raise ValueError(f'DiscretizedActions needs a 1-D Box action space, got {space}')
    if bins < 2:
        raise ValueError(f'DiscretizedActions needs at least 2 bins per dimension, got '
                         f'{bins}')
    if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
        raise ValueError(f'DiscretizedActions needs finite action bounds, got low='
                         f'{space.low.tolist()} high={space.high.tolist()}')
    values = [np.linspace(lo, hi, bins) for lo, hi in zip(space.low, space.high)]
    return np.array(list(itertools.product(*values)), dtype=np.float32)


def discrete_action_table(space: gym.spaces.Discrete) -> np.ndarray:
    """[n, 1]: a Discrete space's actions as the numbers the env takes."""
    return (space.start + np.arange(space.n, dtype=np.float32))[:, None]


class DiscretizedActions(gym.ActionWrapper):
    """A Box-action env seen through ``bins`` evenly spaced values per action dimension.

    Action i of the Discrete(bins ** act_dim) space is row i of ``action_table``, every
    combination of per-dimension values (``box_action_table``).
    """

    def __init__(self, env: gym.Env, bins: int = 5):
        super().__init__(env)
        self.action_table = box_action_table(env.action_space, bins)
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
        return discrete_action_table(space)
    raise ValueError(f'DQN needs a Discrete action space, got {space}; wrap a continuous '
                     f'task in DiscretizedActions(env, bins=5)')


# ---------------------------------------------------------------- learner

class DQNLearner:
    """DQN's Q-network, target network, optimiser and gradient step, apart from any loop.

    A ``Learner`` (``core/rl/learners.py`` has the contract): the buffer stores action
    indices (``to_buffer`` finds the table row nearest to a robot's action); ``act``
    answers one observation with its row of ``action_table``, what the robot is sent.
    ``set_progress`` is the clock of epsilon's schedule and of the target network, which
    follows the online one every ``target_update_interval`` environment steps, as in
    Stable-Baselines3: ``update`` first applies the target updates due by then. The network
    is initialised from torch's global generator: seed it first.
    """

    def __init__(self, obs_dim: int, n_actions: int, action_table,
                 config: DQNConfig = DQNConfig()):
        self.config = config
        self.obs_dim, self.n_actions = int(obs_dim), int(n_actions)
        self.action_table = np.asarray(action_table, dtype=np.float32)
        if self.action_table.ndim != 2 or len(self.action_table) != self.n_actions:
            raise ValueError(f'action_table has shape {self.action_table.shape}; expected '
                             f'({self.n_actions}, act_dim)')
        # Built on the CPU from the global generator, then moved: the same start on any device.
        self.device = resolve_device(config.device)
        self.q = QPolicy(obs_dim, n_actions, act_dim=self.action_table.shape[1],
                         hidden=config.hidden, activation=config.activation,
                         normalize_obs=config.normalize_obs,
                         action_table=self.action_table).to(self.device)
        self.target = copy.deepcopy(self.q)
        self.target.requires_grad_(False)
        self.optimizer = adam(self.q.parameters(), config.lr)
        self.updates = 0  # gradient steps taken
        self.env_steps = 0  # environment steps taken, as set_progress was last told
        self._target_updates = 0

    @property
    def policy(self) -> QPolicy:
        """The Q-network: what a checkpoint stores and the robot runs (greedily)."""
        return self.q

    @property
    def epsilon(self) -> float:
        """The probability of a uniformly random action after ``env_steps`` steps."""
        return linear_epsilon(self.env_steps, self.config.total_steps, self.config)

    def set_progress(self, env_steps: int) -> None:
        """Tell the learner how many environment steps have been taken.

        The clock of epsilon's schedule, of the warm-up and of the target network.
        """
        self.env_steps = int(env_steps)

    def choose(self, obs: np.ndarray, explore: bool = False,
               rng: np.random.Generator = None) -> np.ndarray:
        """The action index for one observation, as the buffer stores it.

        Exploring: uniform from ``rng`` during the ``learning_starts`` warm-up, then with
        probability ``epsilon``; otherwise (and not exploring) the greedy action.
        """
        if explore and rng is None:
            raise ValueError('an exploring action needs rng, a NumPy generator')
        if explore and (self.env_steps < self.config.learning_starts
                        or rng.random() < self.epsilon):
            return np.asarray(rng.integers(self.n_actions), dtype=np.int64)
        with torch.inference_mode():
            values = self.q.q_values(torch.as_tensor(obs, dtype=torch.float32,
                                                     device=self.device).view(1, -1))
        return np.asarray(int(values.argmax()), dtype=np.int64)

    def act(self, obs: np.ndarray, explore: bool = False,
            rng: np.random.Generator = None) -> np.ndarray:
        """The action for one observation: its ``action_table`` row, what the robot is sent."""
        return self.to_env(self.choose(obs, explore, rng))

    def to_env(self, actions: np.ndarray) -> np.ndarray:
        """Action indices to their ``action_table`` rows."""
        return self.action_table[np.asarray(actions, dtype=np.int64)]

    def to_buffer(self, actions: np.ndarray) -> np.ndarray:
        """Actions in the task's units to the indices of the nearest ``action_table`` rows.

        ``actions``: [n, act_dim], or [n] numbers of a Discrete env.
        """
        act_dim = self.action_table.shape[1]
        actions = np.asarray(actions, dtype=np.float32)
        if actions.ndim > 1 and actions.shape[-1] != act_dim:
            raise ValueError(f'actions have shape {actions.shape}; expected [..., {act_dim}]')
        actions = actions.reshape(-1, act_dim)
        distances = ((actions[:, None, :] - self.action_table[None]) ** 2).sum(-1)
        return distances.argmin(axis=1).astype(np.int64)

    def make_buffer(self, capacity: int = None) -> ReplayBuffer:
        """An empty replay buffer for this learner (``capacity``: the config's buffer_size)."""
        return ReplayBuffer(self.obs_dim, (), capacity or self.config.buffer_size,
                            act_dtype=np.int64)

    def fit_obs_normalization(self, observations: np.ndarray) -> None:
        """Freeze the observation normalisation (``normalize_obs``) at these statistics.

        Mean and std (at least 1e-3) of ``observations``, the warm-up's, in both networks.
        """
        mean, std = observations.mean(0), np.maximum(observations.std(0), 1e-3)
        for net in (self.q, self.target):
            net.set_obs_normalization(mean, std)

    def update(self, batch: TransitionBatch) -> dict:
        """The target updates due by ``env_steps``, then one gradient step: ``loss``."""
        config = self.config
        batch = batch.to(self.device)  # sampled on the CPU (the buffer is NumPy)
        due = self.env_steps // config.target_update_interval
        # One Polyak step per interval passed, as many as the loop would have taken.
        for _ in range(due - self._target_updates):
            polyak_update(self.target, self.q, config.tau)
        self._target_updates = max(due, self._target_updates)
        with torch.no_grad():
            next_q_online = self.q.q_values(batch.next_obs) if config.double_q else None
            next_values = dqn_next_values(self.target.q_values(batch.next_obs), next_q_online)
            targets = td_target(batch.rewards, batch.terminated, next_values, config.gamma)
        loss = dqn_loss(self.q.q_values(batch.obs), batch.actions, targets)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(self.q.parameters(), config.max_grad_norm, foreach=True)
        self.optimizer.step()
        self.updates += 1
        return {'loss': float(loss.detach())}


# ---------------------------------------------------------------- training

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
    learner = DQNLearner(int(np.prod(env.observation_space.shape)), len(table), table, config)
    buffer = learner.make_buffer()
    episodes = EpisodeReturns(log)
    tracker = Progress(config.total_steps, progress)
    # Summed as a float32 tensor, as the losses were before they left the learner.
    loss_sum, updates, metrics = torch.zeros(()), 0, {}

    obs, _ = env.reset(seed=config.seed)
    for step in range(1, config.total_steps + 1):
        learner.set_progress(step - 1)
        action = learner.choose(obs, True, rng)
        next_obs, reward, terminated, truncated, _ = env.step(int(action))
        buffer.add(np.reshape(obs, (1, -1)), [action], [reward],
                   np.reshape(next_obs, (1, -1)), [float(terminated)])
        episodes.add(reward, terminated or truncated, step)
        obs = env.reset()[0] if terminated or truncated else next_obs

        if step == config.learning_starts and config.normalize_obs:
            learner.fit_obs_normalization(buffer.obs[:len(buffer)])
        if step > config.learning_starts and step % config.train_freq == 0:
            for _ in range(config.gradient_steps):
                loss_sum += learner.update(buffer.sample(config.batch_size, rng))['loss']
                updates += 1

        if step % config.log_every == 0 or step == config.total_steps:
            metrics = {'train/epsilon': learner.epsilon,
                       'rollout/ep_return_mean': episodes.recent_mean(),
                       'train/steps_per_second': step / max(tracker.seconds, 1e-9)}
            if updates:
                metrics['train/loss'] = float(loss_sum) / updates
                loss_sum, updates = torch.zeros(()), 0
            for name, value in metrics.items():
                log.scalar(name, value, step)
        if step % 100 == 0 or step == config.total_steps:
            tracker(step, metrics)
    env.close()
    learner.policy.cpu().eval()
    return RLResult(policy=learner.policy, log=log, config=config_dict(config),
                    seconds=tracker.seconds, env_steps=config.total_steps)
