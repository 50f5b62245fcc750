"""Policy iteration: evaluate the policy exactly, improve it greedily, until it is stable.

Howard, "Dynamic Programming and Markov Processes", 1960; as in Russell & Norvig,
"Artificial Intelligence: A Modern Approach", 3rd ed., fig. 17.7, and Sutton & Barto,
"Reinforcement Learning: An Introduction", 2nd ed. 2018, sec. 4.3. Evaluation solves the
linear Bellman equations (I - gamma P_pi) V = r_pi over the non-terminal states; the greedy
step is the same ``bellman_backup`` (``core/rl/tabular.py``) value iteration uses.
"""

from dataclasses import asdict, dataclass
import logging
import time

import numpy as np

from ilrl_ros.core.envs.gridworld import TabularMDP
from ilrl_ros.core.rl.tabular import bellman_backup
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)


@dataclass
class PolicyIterationConfig:
    """Policy iteration settings."""

    max_iterations: int = 1000
    """Give up after this many evaluate-improve rounds (``converged`` is then False)."""
    tie_tolerance: float = 1e-9
    """An action replaces the current one only if its Q is higher by more than this, so
    that ties between equally good actions cannot make the policy cycle."""


def policy_transitions(P: np.ndarray, R: np.ndarray, policy: np.ndarray) -> tuple:
    """P_pi[s, s'] and the expected one-step reward r_pi[s] of a deterministic policy."""
    rows = np.arange(len(policy))
    P_pi = P[rows, policy]
    r_pi = np.einsum('ij,ij->i', P_pi, R[rows, policy])
    return P_pi, r_pi


def states_that_never_terminate(P_pi: np.ndarray, terminal: np.ndarray) -> np.ndarray:
    """Indices of states from which following P_pi never reaches a terminal state."""
    reaches = terminal.copy()
    while True:
        more = reaches | (P_pi[:, reaches].sum(axis=1) > 0.0)
        if np.array_equal(more, reaches):
            return np.flatnonzero(~reaches)
        reaches = more


def evaluate_policy(P: np.ndarray, R: np.ndarray, terminal: np.ndarray, gamma: float,
                    policy: np.ndarray) -> np.ndarray:
    """V_pi exactly, by one linear solve; 0 at terminal states.

    With gamma = 1 the equations have a solution only if the policy reaches a terminal
    state from everywhere; otherwise this raises ValueError naming the states that don't.
    """
    policy = np.asarray(policy, dtype=np.int64)
    P_pi, r_pi = policy_transitions(P, R, policy)
    if gamma >= 1.0:
        stuck = states_that_never_terminate(P_pi, terminal)
        if len(stuck):
            raise ValueError(f'policy evaluation with gamma = 1: from states '
                             f'{stuck.tolist()} the policy never reaches a terminal state, '
                             f'so their values are unbounded; start from a policy that '
                             f'terminates everywhere, or use gamma < 1')
    live = ~terminal
    A = np.eye(np.count_nonzero(live)) - gamma * P_pi[np.ix_(live, live)]
    values = np.zeros(len(policy))
    values[live] = np.linalg.solve(A, r_pi[live])
    return values


def improve_policy(q: np.ndarray, policy: np.ndarray, tie_tolerance: float) -> np.ndarray:
    """Greedy policy on ``q``, keeping the current action wherever it is (near) best."""
    best = np.argmax(q, axis=1)
    rows = np.arange(len(policy))
    better = q[rows, best] > q[rows, policy] + tie_tolerance
    return np.where(better, best, policy)


@dataclass
class PolicyIterationResult:
    """What ``solve`` returns: values, Q, policy and how the iteration went."""

    values: np.ndarray
    """V_pi(s) of the final policy, 0 for terminal states."""
    q: np.ndarray
    """Q_pi[s, a], one backup of ``values``."""
    policy: np.ndarray
    """Action per state (terminal states' entries mean nothing)."""
    iterations: int
    """Evaluate-improve rounds, the last one (no change) included."""
    converged: bool
    changes: np.ndarray
    """States whose action changed in each round."""
    config: dict
    seconds: float


def solve(mdp: TabularMDP, config: PolicyIterationConfig = PolicyIterationConfig(),
          initial_policy: np.ndarray = None, log: TrainingLog = None) -> PolicyIterationResult:
    """An optimal policy of ``mdp`` and its values; ``log`` gets ``train/policy_changes``.

    ``initial_policy`` defaults to the greedy policy on zero values (the best one-step
    reward); with gamma = 1 it must reach a terminal state from every state.
    """
    started = time.monotonic()
    if initial_policy is None:
        zeros = np.zeros(mdp.n_states)
        policy = np.argmax(bellman_backup(mdp.P, mdp.R, zeros, mdp.gamma, mdp.terminal), axis=1)
    else:
        policy = np.asarray(initial_policy, dtype=np.int64)
        if policy.shape != (mdp.n_states,) or np.any((policy < 0) | (policy >= mdp.n_actions)):
            raise ValueError(f'initial policy must hold one action in 0..{mdp.n_actions - 1} '
                             f'for each of the {mdp.n_states} states; got shape '
                             f'{policy.shape}')
    changes = []
    converged = False
    for iteration in range(1, config.max_iterations + 1):
        values = evaluate_policy(mdp.P, mdp.R, mdp.terminal, mdp.gamma, policy)
        q = bellman_backup(mdp.P, mdp.R, values, mdp.gamma, mdp.terminal)
        improved = improve_policy(q, policy, config.tie_tolerance)
        changed = int(np.count_nonzero(improved[~mdp.terminal] != policy[~mdp.terminal]))
        changes.append(changed)
        if log is not None:
            log.scalar('train/policy_changes', changed, iteration)
        policy = improved
        if changed == 0:
            converged = True
            break
    if not converged:
        logger.warning('policy iteration did not converge in %d rounds', config.max_iterations)
        values = evaluate_policy(mdp.P, mdp.R, mdp.terminal, mdp.gamma, policy)
        q = bellman_backup(mdp.P, mdp.R, values, mdp.gamma, mdp.terminal)
    return PolicyIterationResult(values=values, q=q, policy=policy, iterations=len(changes),
                                 converged=converged, changes=np.array(changes),
                                 config=asdict(config), seconds=time.monotonic() - started)
