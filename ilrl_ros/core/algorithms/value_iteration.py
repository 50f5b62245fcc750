"""Value iteration: Bellman optimality backups of all states until the values stop changing.

Bellman, "Dynamic Programming", 1957; as in Russell & Norvig, "Artificial Intelligence: A
Modern Approach", 3rd ed., fig. 17.4, and Sutton & Barto, "Reinforcement Learning: An
Introduction", 2nd ed. 2018, sec. 4.4. Works on any ``TabularMDP`` (per-transition rewards,
terminal values 0); ``solve_and_print`` shows a gridworld's solution to a person.
"""

from dataclasses import asdict, dataclass
import logging
import time

import numpy as np

from ilrl_ros.core.envs.gridworld import GridworldConfig, make_gridworld, TabularMDP
from ilrl_ros.core.rl.tabular import bellman_backup
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


@dataclass
class ValueIterationConfig:
    """Value iteration settings."""

    tolerance: float = 1e-10
    """Stop when the values are this close to optimal in max norm: for gamma < 1 when a sweep
    changes them by less than tolerance (1 - gamma) / gamma (AIMA eq. 17.8); for gamma = 1,
    which has no such bound, when a sweep changes them by less than tolerance."""
    max_iterations: int = 100_000
    """Give up after this many sweeps (``converged`` is then False)."""


def greedy_policy(q: np.ndarray) -> np.ndarray:
    """The action with the highest Q in each state (the first one where several tie)."""
    return np.argmax(q, axis=1)


def stopping_threshold(tolerance: float, gamma: float) -> float:
    """Largest change of a sweep at which the values are within ``tolerance`` of optimal.

    Never below 1e-13: float64 round-off alone changes values of order 1 by about that
    much, so a gamma just under 1 (bound ~0) would otherwise sweep until max_iterations.
    """
    bound = tolerance * (1.0 - gamma) / gamma if gamma < 1.0 else tolerance
    return max(bound, min(tolerance, 1e-13))


@dataclass
class ValueIterationResult:
    """What ``solve`` returns: values, Q, greedy policy and how the iteration went."""

    values: np.ndarray
    """V(s), 0 for terminal states."""
    q: np.ndarray
    """Q[s, a], one backup of ``values``."""
    policy: np.ndarray
    """Greedy action per state (terminal states' entries mean nothing)."""
    iterations: int
    converged: bool
    residuals: np.ndarray
    """Largest change of the values in each sweep."""
    config: dict
    seconds: float


def solve(mdp: TabularMDP, config: ValueIterationConfig = ValueIterationConfig(),
          log: TrainingLog = None) -> ValueIterationResult:
    """Optimal values and a greedy policy of ``mdp``; ``log`` gets ``train/bellman_residual``."""
    started = time.monotonic()
    threshold = stopping_threshold(config.tolerance, mdp.gamma)
    values = np.zeros(mdp.n_states)
    residuals = []
    converged = False
    for iteration in range(1, config.max_iterations + 1):
        new_values = bellman_backup(mdp.P, mdp.R, values, mdp.gamma, mdp.terminal).max(axis=1)
        residual = float(np.max(np.abs(new_values - values)))
        values = new_values
        residuals.append(residual)
        if log is not None:
            log.scalar('train/bellman_residual', residual, iteration)
        if residual < threshold:
            converged = True
            break
    if not converged:
        logger.warning('value iteration did not converge in %d sweeps (last change %.3g); '
                       'with gamma = 1 some policy may never reach a terminal state',
                       config.max_iterations, residuals[-1])
    q = bellman_backup(mdp.P, mdp.R, values, mdp.gamma, mdp.terminal)
    return ValueIterationResult(values=values, q=q, policy=greedy_policy(q),
                                iterations=len(residuals), converged=converged,
                                residuals=np.array(residuals), config=asdict(config),
                                seconds=time.monotonic() - started)


def solve_and_print(config: GridworldConfig = GridworldConfig(),
                    solver: ValueIterationConfig = ValueIterationConfig()) -> str:
    """Solve a gridworld by value iteration; return its utilities and policy as text grids."""
    world = make_gridworld(config)
    result = solve(world.mdp, solver)
    status = 'converged' if result.converged else 'did NOT converge'
    return '\n'.join([
        f'{config.width}x{config.height} gridworld, living reward {config.living_reward:g}, '
        f'noise {config.noise:g}, gamma {config.gamma:g}',
        f'value iteration {status} in {result.iterations} sweeps '
        f'({result.seconds * 1e3:.1f} ms)',
        '',
        'utilities U(s) (# wall):',
        world.render_values(result.values),
        '',
        'policy (^ N, > E, v S, < W):',
        world.render_policy(result.policy),
    ])
