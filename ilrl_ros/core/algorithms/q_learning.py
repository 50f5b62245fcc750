"""Tabular Q-learning with epsilon-greedy exploration, on any env with Discrete spaces.

Watkins, "Learning from Delayed Rewards", PhD thesis, Cambridge 1989; Watkins & Dayan,
"Q-learning", Machine Learning 8, 1992; Sutton & Barto, "Reinforcement Learning: An
Introduction", 2nd ed. 2018, sec. 6.5. The per-pair learning rate alpha = lr / (1 + n)^omega
(n: earlier updates of that state-action pair) is the polynomial rate of Even-Dar & Mansour,
"Learning Rates for Q-learning", JMLR 5, 2003; it meets the Robbins-Monro conditions for
1/2 < omega <= 1 and converges much faster than 1/n.
"""

from dataclasses import asdict, dataclass
import logging
import time

import numpy as np

from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

LR_SCHEDULES = ('visits', 'linear', 'constant')


@dataclass
class QLearningConfig:
    """Q-learning settings."""

    episodes: int = 5000
    """Training episodes (AIMA's 4x3 world, random starts: the optimal policy in 5000
    from 19 of 20 seeds)."""
    gamma: float = None
    """Discount factor; None takes the env's ``gamma`` attribute (GridworldEnv has one)."""
    lr: float = 1.0
    """Learning rate alpha at the start (of each pair's updates for 'visits')."""
    lr_schedule: str = 'visits'
    """'visits': lr / (1 + n(s, a))^lr_power; 'linear': from lr to lr_final over the
    episodes; 'constant': lr throughout."""
    lr_power: float = 0.7
    """omega of the 'visits' schedule, in (1/2, 1]. 1 (the sample mean) forgets the initial Q
    and early bootstrap targets too slowly: on the 4x3 world it found the optimal policy
    from none of 6 seeds in 5000 episodes, 0.7 from all."""
    lr_final: float = 0.01
    """Learning rate at the last episode of the 'linear' schedule."""
    epsilon_start: float = 1.0
    """Probability of a uniformly random action in the first episode."""
    epsilon_end: float = 0.1
    """Probability of a random action once the decay is over."""
    epsilon_decay_fraction: float = 0.5
    """Share of the episodes over which epsilon falls linearly to ``epsilon_end``."""
    initial_q: float = 0.0
    """Q of every pair before learning (above the true values, it drives exploration)."""
    seed: int = 0
    """Seeds the env's first reset and the exploration."""
    log_every: int = 100
    """Log and report progress every this many episodes."""

    def __post_init__(self):
        if self.lr_schedule not in LR_SCHEDULES:
            raise ValueError(f'Q-learning lr_schedule {self.lr_schedule!r} is not known; '
                             f'expected one of {", ".join(LR_SCHEDULES)}')
        if self.lr_schedule == 'visits' and not 0.5 < self.lr_power <= 1.0:
            raise ValueError(f'Q-learning lr_power {self.lr_power} is out of range; the '
                             f'visits schedule converges for powers in (0.5, 1]')
        if not 0.0 < self.lr <= 1.0:
            raise ValueError(f'Q-learning lr {self.lr} is out of range; expected (0, 1]')
        for name in ('epsilon_start', 'epsilon_end', 'epsilon_decay_fraction'):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f'Q-learning {name} {getattr(self, name)} is out of range; '
                                 f'expected [0, 1]')
        if self.episodes < 1:
            raise ValueError(f'Q-learning episodes {self.episodes} must be at least 1')


def epsilon_at(config: QLearningConfig, episode: int) -> float:
    """Exploration rate of ``episode`` (0-based): linear from start to end, then flat."""
    decay_episodes = config.epsilon_decay_fraction * config.episodes
    if decay_episodes <= 0.0:
        return config.epsilon_end
    fraction = min(1.0, episode / decay_episodes)
    return config.epsilon_start + (config.epsilon_end - config.epsilon_start) * fraction


def learning_rate(config: QLearningConfig, visits: int, episode: int) -> float:
    """Learning rate of a pair updated ``visits`` times before, in ``episode`` (0-based)."""
    if config.lr_schedule == 'visits':
        return config.lr / (1.0 + visits) ** config.lr_power
    if config.lr_schedule == 'linear':
        fraction = episode / max(1, config.episodes - 1)
        return config.lr + (config.lr_final - config.lr) * fraction
    return config.lr


def td_target(reward: float, next_q: np.ndarray, gamma: float, terminated: bool) -> float:
    """The TD target r + gamma max_a' Q(s', a'); just r when s' ends the episode.

    A truncated episode (time limit) did not end in s', so its last step bootstraps.
    """
    return reward if terminated else reward + gamma * float(next_q.max())


def epsilon_greedy(q_row: np.ndarray, epsilon: float, rng: np.random.Generator) -> int:
    """A random action with probability epsilon, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return int(rng.integers(len(q_row)))
    best = np.flatnonzero(q_row == q_row.max())
    return int(best[0]) if len(best) == 1 else int(rng.choice(best))


@dataclass
class QLearningResult:
    """What ``train`` returns: the Q table, its greedy policy and the learning curve."""

    q: np.ndarray
    """Q[s, a]."""
    policy: np.ndarray
    """Greedy action per state (first of ties)."""
    episode_returns: np.ndarray
    """Undiscounted return of each training episode (exploration included): the curve."""
    episode_lengths: np.ndarray
    visits: np.ndarray
    """Updates of each pair [s, a]."""
    log: TrainingLog
    config: dict
    steps: int
    seconds: float


def train(env, config: QLearningConfig = QLearningConfig(), log: TrainingLog = None,
          progress=None) -> QLearningResult:
    """Learn Q by interacting with ``env``. ``progress(episode, total, metrics)`` as it goes.

    ``log`` gets, every ``log_every`` episodes (step = episodes so far),
    ``rollout/ep_return_mean``, ``rollout/ep_length_mean``, ``train/epsilon``,
    ``train/lr_mean`` and ``train/td_error_abs_mean`` over those episodes.
    """
    for name, space in (('observation', env.observation_space), ('action', env.action_space)):
        if not hasattr(space, 'n'):
            raise ValueError(f'tabular Q-learning needs a Discrete {name} space; the env has '
                             f'{space}')
    gamma = config.gamma if config.gamma is not None \
        else getattr(env.unwrapped, 'gamma', None)
    if gamma is None:
        raise ValueError('Q-learning needs a discount factor: set QLearningConfig.gamma (the '
                         'env has no gamma attribute)')
    log = log or TrainingLog()
    rng = np.random.default_rng(config.seed)
    n_states, n_actions = int(env.observation_space.n), int(env.action_space.n)
    q = np.full((n_states, n_actions), float(config.initial_q))
    visits = np.zeros((n_states, n_actions), dtype=np.int64)
    returns = np.zeros(config.episodes)
    lengths = np.zeros(config.episodes, dtype=np.int64)
    window_lr, window_td = [], []
    started = time.monotonic()
    total_steps = 0
    for episode in range(config.episodes):
        state, _ = env.reset(seed=config.seed if episode == 0 else None)
        epsilon = epsilon_at(config, episode)
        done = False
        while not done:
            action = epsilon_greedy(q[state], epsilon, rng)
            next_state, reward, terminated, truncated, _ = env.step(action)
            alpha = learning_rate(config, visits[state, action], episode)
            error = td_target(reward, q[next_state], gamma, terminated) - q[state, action]
            q[state, action] += alpha * error
            visits[state, action] += 1
            window_lr.append(alpha)
            window_td.append(abs(error))
            returns[episode] += reward
            lengths[episode] += 1
            state = next_state
            done = terminated or truncated
        total_steps += int(lengths[episode])
        if (episode + 1) % config.log_every == 0 or episode + 1 == config.episodes:
            first = max(0, episode + 1 - config.log_every)
            metrics = {'rollout/ep_return_mean': float(returns[first:episode + 1].mean()),
                       'rollout/ep_length_mean': float(lengths[first:episode + 1].mean()),
                       'train/epsilon': epsilon,
                       'train/lr_mean': float(np.mean(window_lr)),
                       'train/td_error_abs_mean': float(np.mean(window_td))}
            window_lr, window_td = [], []
            for name, value in metrics.items():
                log.scalar(name, value, episode + 1)
            if progress:
                progress(episode + 1, config.episodes, metrics)
    return QLearningResult(q=q, policy=np.argmax(q, axis=1), episode_returns=returns,
                           episode_lengths=lengths, visits=visits, log=log,
                           config=asdict(config), steps=total_steps,
                           seconds=time.monotonic() - started)
