"""Tabular Q-learning with epsilon-greedy exploration, on any env with Discrete spaces.

Watkins, "Learning from Delayed Rewards", PhD thesis, Cambridge 1989; Watkins & Dayan,
"Q-learning", Machine Learning 8, 1992; Sutton & Barto, "Reinforcement Learning: An
Introduction", 2nd ed. 2018, sec. 6.5. The per-pair learning rate alpha = lr / (1 + n)^omega
(n: earlier updates of that state-action pair) is the polynomial rate of Even-Dar & Mansour,
"Learning Rates for Q-learning", JMLR 5, 2003; it meets the Robbins-Monro conditions for
1/2 < omega <= 1 and forgets the early, badly bootstrapped targets much faster than 1/n.

It learns from a gymnasium env, or, ten times faster, from a ``TableSampler`` that draws the
transitions of a ``TabularMDP`` (the gridworld's tables) the way ``GridworldEnv`` does, without
gymnasium's cost per step. The loop works on Python lists: at a few microseconds per step
the NumPy call overhead, not arithmetic, is what a tabular learner pays for.
"""

import bisect
from dataclasses import asdict, dataclass
import logging
import random
import time
from typing import Optional

import numpy as np

from ilrl_ros.core.envs.gridworld import TabularMDP
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

LR_SCHEDULES = ('visits', 'linear', 'constant')


@dataclass
class QLearningConfig:
    """Q-learning settings. The defaults find the optimal policy of the lectures' 4x3 world."""

    episodes: int = 200_000
    """Training episodes. On the 4x3 world with living reward -0.03 two cells are near ties
    (at (3, 2) north beats west by 0.004, at (4, 1) west beats south by 0.008) that only
    many samples resolve: with these defaults the greedy policy settled on the optimal one
    in 10 of 10 seeds, after 3500 to 199000 episodes (README, "The lectures' 4x3
    gridworld"; ``bench/gridworld.py``)."""
    gamma: float = None
    """Discount factor; None takes the env's ``gamma`` attribute (GridworldEnv has one)."""
    lr: float = 1.0
    """Learning rate alpha at the start (of each pair's updates for 'visits')."""
    lr_schedule: str = 'visits'
    """'visits': lr / (1 + n(s, a))^lr_power; 'linear': from lr to lr_final over the
    episodes; 'constant': lr throughout."""
    lr_power: float = 0.9
    """omega of the 'visits' schedule, in (1/2, 1]. Near 1 the rate averages the noise of
    the slips best but forgets the early, too low bootstrap targets slowly (1: the -0.03
    world's policy from none of 10 seeds in 50000 episodes, values still about 0.2 low);
    lower forgets fast but stays noisy, so the near ties flip until late (0.7: 6 of 10
    seeds in 200000 episodes; 0.8: 9 of 10 in 100000, 10 of 10 in 150000)."""
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
    log_every: int = 1000
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
        if self.log_every < 1:
            raise ValueError(f'Q-learning log_every {self.log_every} must be at least 1')
        if self.gamma is not None and not 0.0 < self.gamma <= 1.0:
            raise ValueError(f'Q-learning gamma {self.gamma} is out of range; expected a '
                             f"discount factor in (0, 1] or None (the env's)")


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


def td_target(reward: float, next_q, gamma: float, terminated: bool) -> float:
    """The TD target r + gamma max_a' Q(s', a'); just r when s' ends the episode.

    A truncated episode (time limit) did not end in s', so its last step bootstraps.
    """
    return reward if terminated else reward + gamma * float(max(next_q))


def epsilon_greedy(q_row, epsilon: float, rng: random.Random) -> int:
    """A random action with probability epsilon, else a greedy one (ties broken at random)."""
    if rng.random() < epsilon:
        return rng.randrange(len(q_row))
    best = max(q_row)
    if q_row.count(best) == 1:
        return q_row.index(best)
    return rng.choice([a for a, v in enumerate(q_row) if v == best])


class TableSampler:
    """Episodes drawn from a ``TabularMDP``'s tables, as ``GridworldEnv`` draws them.

    Starts from ``mdp.start``, moves to s' with probability P[s, a, s'] and earns R[s, a, s'];
    an episode ends on entering a terminal state and is truncated after ``max_steps``.
    """

    def __init__(self, mdp: TabularMDP, max_steps: int = 100):
        if int(max_steps) < 1:
            raise ValueError(f'table sampler max_steps {max_steps} must be at least 1')
        self.n_states, self.n_actions = mdp.n_states, mdp.n_actions
        self.gamma = mdp.gamma
        self.max_steps = int(max_steps)
        cdf = np.cumsum(mdp.P, axis=2)
        cdf[..., -1] = 1.0  # so rounding can never leave a draw without a next state
        self._cdf = cdf.tolist()
        self._reward = mdp.R.tolist()
        self._terminal = mdp.terminal.tolist()
        self._start_cdf = np.cumsum(mdp.start).tolist()
        self._start_cdf[-1] = 1.0
        self._rng = random.Random(0)
        self._state, self._steps = None, 0

    def reset(self, seed: int = None) -> int:
        """Start an episode (re-seeding the draws when ``seed`` is given); its first state."""
        if seed is not None:
            self._rng.seed(seed)
        start = self._start_cdf
        # The first state whose cumulative probability exceeds the draw: never a p = 0 one.
        state = bisect.bisect_right(start, self._rng.random())
        self._state, self._steps = state, 0
        return state

    def step(self, action: int) -> tuple:
        """(next state, reward, terminated, truncated)."""
        s = self._state
        nxt = bisect.bisect_right(self._cdf[s][action], self._rng.random())
        self._state = nxt
        self._steps += 1
        terminated = self._terminal[nxt]
        return (nxt, self._reward[s][action][nxt], terminated,
                not terminated and self._steps >= self.max_steps)


class _EnvSteps:
    """A gymnasium env with Discrete spaces seen the way ``TableSampler`` is."""

    def __init__(self, env):
        for name, space in (('observation', env.observation_space),
                            ('action', env.action_space)):
            if not hasattr(space, 'n'):
                raise ValueError(f'tabular Q-learning needs a Discrete {name} space; the env '
                                 f'has {space}')
        self.env = env
        self.n_states, self.n_actions = int(env.observation_space.n), int(env.action_space.n)
        self.gamma = getattr(env.unwrapped, 'gamma', None)

    def reset(self, seed: int = None) -> int:
        return int(self.env.reset(seed=seed)[0])

    def step(self, action: int) -> tuple:
        state, reward, terminated, truncated, _ = self.env.step(action)
        return int(state), float(reward), bool(terminated), bool(truncated)


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
    episodes_to_reference: Optional[int] = None
    """With a ``reference_policy``: the episodes after which the greedy policy equalled it
    and stayed equal to the end; None if it differs at the end (or no reference given)."""


def train(env, config: QLearningConfig = QLearningConfig(), log: TrainingLog = None,
          progress=None, reference_policy: np.ndarray = None) -> QLearningResult:
    """Learn Q by interacting with ``env``. ``progress(episode, total, metrics)`` as it goes.

    ``env`` is a gymnasium env with Discrete spaces or a ``TableSampler``.
    ``reference_policy`` (an action per state, -1 where any action will do, e.g. terminal
    states) is compared with the greedy policy after every episode, for
    ``episodes_to_reference``. ``log`` gets, every ``log_every`` episodes (step = episodes
    so far), ``rollout/ep_return_mean``, ``rollout/ep_length_mean``, ``train/epsilon``,
    ``train/lr_mean`` and ``train/td_error_abs_mean`` over those episodes.
    """
    steps_of = env if isinstance(env, TableSampler) else _EnvSteps(env)
    gamma = config.gamma if config.gamma is not None else steps_of.gamma
    if gamma is None:
        raise ValueError('Q-learning needs a discount factor: set QLearningConfig.gamma (the '
                         'env has no gamma attribute)')
    n_states, n_actions = steps_of.n_states, steps_of.n_actions
    compared = []
    if reference_policy is not None:
        reference = np.asarray(reference_policy)
        if reference.shape != (n_states,) or np.any((reference < -1) |
                                                    (reference >= n_actions)):
            raise ValueError(f'Q-learning reference_policy must hold an action in '
                             f'0..{n_actions - 1}, or -1 for any, for each of the {n_states} '
                             f'states; got {reference_policy!r}')
        compared = [(int(s), int(reference[s])) for s in np.flatnonzero(reference >= 0)]
    log = log or TrainingLog()
    rng = random.Random(config.seed)
    q = [[float(config.initial_q)] * n_actions for _ in range(n_states)]
    visits = [[0] * n_actions for _ in range(n_states)]
    returns = np.zeros(config.episodes)
    lengths = np.zeros(config.episodes, dtype=np.int64)
    visits_schedule = config.lr_schedule == 'visits'
    lr, power = config.lr, config.lr_power
    window_lr = window_td = 0.0
    window_steps = 0
    last_mismatch = 0
    started = time.monotonic()
    for episode in range(config.episodes):
        state = steps_of.reset(seed=config.seed if episode == 0 else None)
        epsilon = epsilon_at(config, episode)
        alpha = learning_rate(config, 0, episode)
        total, length, done = 0.0, 0, False
        while not done:
            row = q[state]
            action = epsilon_greedy(row, epsilon, rng)
            next_state, reward, terminated, truncated = steps_of.step(action)
            count = visits[state][action]
            if visits_schedule:
                alpha = lr / (1.0 + count) ** power
            target = reward if terminated else reward + gamma * max(q[next_state])
            error = target - row[action]
            row[action] += alpha * error
            visits[state][action] = count + 1
            window_lr += alpha
            window_td += abs(error)
            total += reward
            length += 1
            state = next_state
            done = terminated or truncated
        returns[episode], lengths[episode] = total, length
        window_steps += length
        for s, a in compared:
            row = q[s]
            if row.index(max(row)) != a:
                last_mismatch = episode + 1
                break
        if (episode + 1) % config.log_every == 0 or episode + 1 == config.episodes:
            first = max(0, episode + 1 - config.log_every)
            metrics = {'rollout/ep_return_mean': float(returns[first:episode + 1].mean()),
                       'rollout/ep_length_mean': float(lengths[first:episode + 1].mean()),
                       'train/epsilon': epsilon,
                       'train/lr_mean': window_lr / window_steps,
                       'train/td_error_abs_mean': window_td / window_steps}
            window_lr = window_td = 0.0
            window_steps = 0
            for name, value in metrics.items():
                log.scalar(name, value, episode + 1)
            if progress:
                progress(episode + 1, config.episodes, metrics)
    q = np.array(q)
    reached = None
    if compared and last_mismatch < config.episodes:
        reached = last_mismatch + 1
    return QLearningResult(q=q, policy=np.argmax(q, axis=1), episode_returns=returns,
                           episode_lengths=lengths, visits=np.array(visits), log=log,
                           config=asdict(config), steps=int(lengths.sum()),
                           seconds=time.monotonic() - started, episodes_to_reference=reached)
