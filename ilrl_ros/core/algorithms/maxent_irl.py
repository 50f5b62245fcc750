"""Tabular maximum causal entropy inverse RL: which coloured squares does a demonstrator like.

Ziebart, Maas, Bagnell & Dey, "Maximum Entropy Inverse Reinforcement Learning", AAAI 2008;
Ziebart, Bagnell & Dey, "Modeling Interaction via the Principle of Maximum Causal Entropy",
ICML 2010, and Ziebart's thesis, "Modeling Purposeful Adaptive Behavior with the Principle of
Maximum Causal Entropy", CMU 2010 (the causal form, for stochastic dynamics); discounted as in
Gleave & Toyer, "A Primer on Maximum Causal Entropy Inverse Reinforcement Learning", 2022.

The reward is linear in state features, r(s) = theta . phi(s). The demonstrator is modelled
as soft-optimal: pi(a | s) = exp(Q(s, a) - V(s)) with the soft Bellman equations

    Q(s, a) = r(s) + gamma sum_s' P(s' | s, a) V(s'),    V(s) = log sum_a exp Q(s, a),

discounted over an infinite horizon (gamma < 1, so the policy is stationary) and V = 0 in a
terminal state: entering one ends the episode, and it carries no reward of its own. Learning
maximises the dual L(theta) = theta . mu_E - sum_s p0(s) V_theta(s), concave in theta, whose
gradient is mu_E - mu_theta: the demonstrator's discounted feature counts
mu = E[sum_t gamma^t phi(s_t)] minus those of the soft-optimal policy of theta, found from its
discounted state-visitation frequencies by a forward pass. At its maximum the feature counts
match, and the soft-optimal policy of the learned reward is the most random one that does.

The world is a grid of squares (``make_coloured_grid``): each cell is plain floor or has one
of K colours, its features are the colour as one-hot (all 0 on the floor), and one corner is
an exit. The floor and the exit are worth 0, which gives the weights' signs their meaning: a
colour the demonstrator likes (w > 0) is one it would rather stand on than on the floor, one
it dislikes (w < 0) one it would rather avoid. ``run`` builds a world, lets a demonstrator of
known weights act in it and learns the weights back; ``report_text`` prints them next to the
true ones with both optimal policies drawn.
"""

from dataclasses import asdict, dataclass, field
import logging
import time

import numpy as np

from ilrl_ros.core.algorithms import value_iteration
from ilrl_ros.core.device import check_device_setting
from ilrl_ros.core.envs.gridworld import ARROWS, Gridworld, GridworldConfig, make_gridworld, \
    TabularMDP
from ilrl_ros.core.train_log import TrainingLog

logger = logging.getLogger(__name__)

COLOURS = (('R', 'red'), ('G', 'green'), ('B', 'blue'), ('Y', 'yellow'), ('M', 'magenta'),
           ('C', 'cyan'), ('O', 'orange'), ('P', 'purple'))
"""Letter and name of each colour, by feature index."""
EXIT = 'X'
"""How the exit is drawn."""
FLOOR = -2
"""Colour index of a plain floor cell (the exit's is -1)."""
DEMONSTRATORS = ('soft', 'optimal')
OPTIMIZERS = ('lbfgs', 'adam')


def _finite_array(value, name: str, ndim: int, what: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f'MaxEnt IRL {name} is not numeric; expected {what}') from None
    if array.ndim != ndim:
        raise ValueError(f'MaxEnt IRL {name} has shape {array.shape}; expected {what}')
    if not np.all(np.isfinite(array)):
        raise ValueError(f'MaxEnt IRL {name} has NaN or infinite entries; expected {what} '
                         f'with finite numbers')
    return array


@dataclass(frozen=True, eq=False)
class IRLProblem:
    """A finite MDP without its reward, and the state features the reward is linear in."""

    P: np.ndarray
    """P[s, a, s'] = Pr(s' | s, a), shape [S, A, S]; each P[s, a, :] sums to 1."""
    features: np.ndarray
    """phi(s), shape [S, K]; terminal states' rows are ignored (they carry no reward)."""
    terminal: np.ndarray
    """terminal[s] (bool, [S]): entering s ends the episode; V(s) = 0."""
    start: np.ndarray
    """p0(s), shape [S]: where episodes start; sums to 1 over non-terminal states."""
    gamma: float
    """Discount factor in (0, 1): soft values are finite for every theta only when gamma < 1
    (an agent that never exits collects the entropy bonus log |A| forever)."""

    def __post_init__(self):
        P = _finite_array(self.P, 'transition table P', 3, "P[s, a, s'] of shape [S, A, S]")
        S, A = P.shape[:2]
        if P.shape[2] != S or S == 0 or A == 0:
            raise ValueError(f"MaxEnt IRL transition table P has shape {P.shape}; expected "
                             f"P[s, a, s'] of shape [S, A, S] with S, A >= 1")
        if np.any(P < 0) or np.max(np.abs(P.sum(axis=2) - 1.0)) > 1e-6:
            raise ValueError('MaxEnt IRL transition table P is not stochastic: each '
                             "P[s, a, :] must be non-negative and sum to 1 over next states s'")
        features = _finite_array(self.features, 'features', 2,
                                 f'phi of shape [S, K] = [{S}, K], a row per state')
        if features.shape[0] != S or features.shape[1] == 0:
            raise ValueError(f'MaxEnt IRL features have shape {features.shape}; expected '
                             f'[{S}, K] (a row per state of P, K >= 1 features)')
        terminal = np.asarray(self.terminal)
        if terminal.shape != (S,) or terminal.dtype != bool:
            raise ValueError(f'MaxEnt IRL terminal mask has shape {terminal.shape} and dtype '
                             f'{terminal.dtype}; expected bool of shape ({S},)')
        if not 0.0 < float(self.gamma) < 1.0:
            raise ValueError(f'MaxEnt IRL gamma {self.gamma} is out of range; expected a '
                             f'discount factor in (0, 1) (with 1 the soft values can diverge)')
        object.__setattr__(self, 'P', P)
        object.__setattr__(self, 'features', features)
        object.__setattr__(self, 'start', self.check_start(np.asarray(self.start, float)))
        object.__setattr__(self, 'gamma', float(self.gamma))

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]

    @property
    def n_features(self) -> int:
        return self.features.shape[1]

    def check_weights(self, theta, name: str = 'weights theta') -> np.ndarray:
        """``theta`` as a float64 vector of K entries, or a ValueError saying what is wrong."""
        theta = _finite_array(theta, name, 1, f'a vector of {self.n_features} weights, one '
                              f'per feature')
        if theta.shape != (self.n_features,):
            raise ValueError(f'MaxEnt IRL {name} has {theta.size} entries; expected '
                             f'{self.n_features}, one per feature')
        return theta

    def check_start(self, start) -> np.ndarray:
        """A start distribution p0 (the problem's own when None), or a ValueError."""
        if start is None:
            return self.start
        start = _finite_array(start, 'start distribution', 1, f'p0(s) of shape '
                              f'({self.n_states},)')
        if start.shape != (self.n_states,) or np.any(start < 0) \
                or abs(start.sum() - 1.0) > 1e-6 or np.any(start[self.terminal] > 0):
            raise ValueError(f'MaxEnt IRL start distribution is not a distribution over the '
                             f'non-terminal states; expected shape ({self.n_states},), '
                             f'entries >= 0 summing to 1, 0 on terminal states')
        return start

    def rewards(self, theta) -> np.ndarray:
        """r(s) = theta . phi(s), 0 in terminal states."""
        return np.where(self.terminal, 0.0, self.features @ self.check_weights(theta))


# ---- The pieces of one gradient step, as small functions ---------------------------------


def logsumexp(q: np.ndarray) -> np.ndarray:
    """Log sum_a exp q[s, a] for each s, without overflow."""
    top = q.max(axis=1)
    return top + np.log(np.exp(q - top[:, None]).sum(axis=1))


@dataclass
class SoftValues:
    """What ``soft_value_iteration`` returns."""

    values: np.ndarray
    """V(s) = log sum_a exp Q(s, a); 0 in terminal states."""
    q: np.ndarray
    """Q(s, a) = r(s) + gamma sum_s' P(s' | s, a) V(s'); 0 in terminal states."""
    policy: np.ndarray
    """pi(a | s) = exp(Q(s, a) - V(s)), shape [S, A] (uniform in terminal states)."""
    iterations: int


def soft_value_iteration(problem: IRLProblem, theta, tolerance: float = 1e-10,
                         max_iterations: int = 100_000, initial=None) -> SoftValues:
    """Soft (maximum causal entropy) values and policy of the reward theta . phi(s).

    Iterates the soft Bellman backup, a gamma-contraction in max norm, until a sweep changes
    V by less than tolerance (1 - gamma) / gamma, so that V is within ``tolerance`` of the
    fixed point. ``initial`` values (from a nearby theta) save sweeps.
    """
    r = problem.rewards(theta)
    live = ~problem.terminal
    values = np.zeros(problem.n_states) if initial is None else np.array(initial, float)
    values[problem.terminal] = 0.0
    threshold = value_iteration.stopping_threshold(tolerance, problem.gamma)
    sweeps, change = 0, np.inf
    while change >= threshold and sweeps < max_iterations:
        q = r[:, None] + problem.gamma * (problem.P @ values)
        new = np.where(live, logsumexp(q), 0.0)
        change = float(np.max(np.abs(new - values)))
        values = new
        sweeps += 1
    if change >= threshold:
        logger.warning('soft value iteration did not converge in %d sweeps (last change '
                       '%.3g)', max_iterations, change)
    q = r[:, None] + problem.gamma * (problem.P @ values)
    q[problem.terminal] = 0.0
    policy = np.exp(q - logsumexp(q)[:, None])  # V up to the tolerance; pi sums to 1 exactly
    policy[problem.terminal] = 1.0 / problem.n_actions
    return SoftValues(values=values, q=q, policy=policy, iterations=sweeps)


def state_visitation(problem: IRLProblem, policy: np.ndarray, start=None,
                     tolerance: float = 1e-10) -> np.ndarray:
    """Discounted state-visitation frequencies D(s) = sum_t gamma^t Pr(s_t = s) of a policy.

    The forward pass of Ziebart et al. 2008 (Algorithm 1, step 4), discounted: d_0 = p0,
    d_t+1(s') = gamma sum_{s, a} d_t(s) pi(a | s) P(s' | s, a), with the mass that enters a
    terminal state removed (the episode is over); stops when what is left to add,
    at most |d_t| / (1 - gamma), is below ``tolerance``. ``policy`` is pi(a | s), [S, A];
    ``start`` defaults to the problem's p0. Terminal states get D = 0.
    """
    policy = np.asarray(policy, dtype=np.float64)
    if policy.shape != (problem.n_states, problem.n_actions) or not np.all(np.isfinite(policy)):
        raise ValueError(f'MaxEnt IRL policy has shape {policy.shape} or non-finite entries; '
                         f'expected finite pi(a | s) of shape '
                         f'({problem.n_states}, {problem.n_actions})')
    start = problem.check_start(start)
    live = ~problem.terminal
    step = problem.gamma * np.einsum('sa,sat->st', policy, problem.P)
    step[:, problem.terminal] = 0.0
    d = np.where(live, start, 0.0)
    total = d.copy()
    while d.sum() > tolerance * (1.0 - problem.gamma):
        d = d @ step
        total += d
    return total


def feature_expectations(problem: IRLProblem, policy: np.ndarray, start=None,
                         tolerance: float = 1e-10) -> np.ndarray:
    """Discounted feature counts E[sum_t gamma^t phi(s_t)] of a policy: D(s) times phi(s)."""
    return state_visitation(problem, policy, start, tolerance) @ problem.features


def dual(problem: IRLProblem, theta, expert_features, start=None,
         tolerance: float = 1e-12) -> float:
    """L(theta) = theta . mu_E - sum_s p0(s) V_theta(s), the objective MaxEnt IRL maximises.

    Concave; its gradient is ``gradient``. With deterministic dynamics, and mu_E and p0 taken
    from demonstrations that end at the exit, it is their mean discounted log-likelihood
    under the soft-optimal policy: sum_t gamma^t log pi(a_t | s_t) telescopes to
    sum_t gamma^t r(s_t) - V(s_0).
    """
    theta = problem.check_weights(theta)
    mu_e = problem.check_weights(expert_features, 'expert feature expectations')
    start = problem.check_start(start)
    return float(theta @ mu_e - start @ soft_value_iteration(problem, theta, tolerance).values)


def gradient(problem: IRLProblem, theta, expert_features, start=None,
             tolerance: float = 1e-12) -> np.ndarray:
    """dL/dtheta = mu_E - mu_theta: the demonstrator's feature counts minus the learner's."""
    mu_e = problem.check_weights(expert_features, 'expert feature expectations')
    soft = soft_value_iteration(problem, theta, tolerance)
    return mu_e - feature_expectations(problem, soft.policy, start, tolerance)


# ---- Demonstrations ------------------------------------------------------------------------


@dataclass
class Demonstrations:
    """Sampled episodes: the states visited (before the exit) of each."""

    states: list
    """One int array per episode: s_0, s_1, ... up to the last non-terminal state."""
    exited: np.ndarray
    """Whether each episode reached a terminal state (else it was cut at max_steps)."""


def sample_demonstrations(problem: IRLProblem, policy: np.ndarray, episodes: int,
                          max_steps: int, rng: np.random.Generator) -> Demonstrations:
    """Roll ``policy`` out ``episodes`` times from p0, each until it exits or ``max_steps``."""
    if int(episodes) < 1 or int(max_steps) < 1:
        raise ValueError(f'MaxEnt IRL demonstrations: {episodes} episodes of at most '
                         f'{max_steps} steps; expected at least 1 of each')
    S, A = problem.n_states, problem.n_actions
    state = rng.choice(S, size=int(episodes), p=problem.start)
    alive = np.ones(int(episodes), dtype=bool)
    trace = [state.copy()]
    action_cdf = np.cumsum(policy, axis=1)
    next_cdf = np.cumsum(problem.P, axis=2)
    action_cdf[:, -1] = next_cdf[..., -1] = 1.0  # so rounding never leaves a draw unmatched
    for _ in range(int(max_steps) - 1):
        action = np.minimum((rng.random(len(state))[:, None] > action_cdf[state]).sum(1), A - 1)
        nxt = (rng.random(len(state))[:, None] > next_cdf[state, action]).sum(1)
        state = np.where(alive, np.minimum(nxt, S - 1), state)
        alive &= ~problem.terminal[state]
        trace.append(np.where(alive, state, -1))
        if not alive.any():
            break
    trace = np.stack(trace, axis=1)
    return Demonstrations(states=[row[row >= 0] for row in trace],
                          exited=~alive)


def demonstration_features(problem: IRLProblem, demos: Demonstrations) -> np.ndarray:
    """The demonstrations' mean discounted feature counts, sum_t gamma^t phi(s_t)."""
    if not demos.states:
        raise ValueError('MaxEnt IRL needs at least one demonstration; got none')
    total = np.zeros(problem.n_features)
    for states in demos.states:
        states = np.asarray(states)
        if states.ndim != 1 or len(states) == 0 or states.min() < 0 \
                or states.max() >= problem.n_states:
            raise ValueError(f'MaxEnt IRL demonstration states {states!r} are not state '
                             f'indices; expected 0 to {problem.n_states - 1}')
        total += (problem.gamma ** np.arange(len(states))) @ problem.features[states]
    return total / len(demos.states)


def empirical_start(problem: IRLProblem, demos: Demonstrations) -> np.ndarray:
    """How often each state starts a demonstration (the learner's p0 when learning from them)."""
    counts = np.bincount([int(s[0]) for s in demos.states], minlength=problem.n_states)
    return counts / counts.sum()


# ---- Learning ------------------------------------------------------------------------------


@dataclass
class MaxEntIRLConfig:
    """MaxEnt IRL settings: how the demonstrations are given and how theta is optimised."""

    demos: int = 0
    """Sampled demonstrations to learn from; 0 gives the learner the demonstrator's exact
    expected feature counts (and p0) instead of samples."""
    demo_steps: int = 100
    """A sampled demonstration is cut after this many steps if it has not exited (at gamma
    0.9 what it leaves out weighs gamma^100 = 3e-5)."""
    demonstrator: str = 'soft'
    """'soft': the demonstrator acts by the soft-optimal policy of the true reward (the model
    MaxEnt IRL assumes, so the true weights are the unique answer); 'optimal': by its optimal
    deterministic policy (value iteration), which no finite theta reproduces exactly."""
    optimizer: str = 'lbfgs'
    """'lbfgs' (torch.optim.LBFGS with a strong-Wolfe line search on -L(theta)) or 'adam'
    (torch.optim.Adam on the gradient, learning rate decayed to lr_final)."""
    iterations: int = 500
    """Most optimiser iterations (L-BFGS may evaluate the gradient more than once in one)."""
    lr: float = 0.1
    """Adam: the first learning rate (L-BFGS chooses its steps by line search)."""
    lr_final: float = 0.001
    """Adam: the learning rate at the last iteration (decayed exponentially)."""
    l2: float = 0.0
    """Weight of the penalty (l2 / 2) |theta|^2 subtracted from L(theta); keeps theta finite
    for an 'optimal' demonstrator."""
    gradient_tolerance: float = 1e-5
    """Stop when every entry of the gradient mu_E - mu_theta - l2 theta is below this."""
    solver_tolerance: float = 1e-10
    """Accuracy of the soft values and the visitation frequencies at each step."""
    device: str = 'cpu'
    """Where theta and its optimiser live: 'cpu', 'cuda', 'cuda:N' or 'auto'. The soft value
    iteration and the visitation frequencies are tabular NumPy on the CPU whatever this
    says, so a GPU gains nothing here; the setting is for a uniform ``--device``."""

    def __post_init__(self):
        if self.demonstrator not in DEMONSTRATORS:
            raise ValueError(f'MaxEnt IRL demonstrator {self.demonstrator!r} is not known; '
                             f'expected one of {DEMONSTRATORS}')
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f'MaxEnt IRL optimizer {self.optimizer!r} is not known; '
                             f'expected one of {OPTIMIZERS}')
        if int(self.demos) < 0 or int(self.demo_steps) < 1 or int(self.iterations) < 1:
            raise ValueError(f'MaxEnt IRL demos {self.demos}, demo_steps {self.demo_steps}, '
                             f'iterations {self.iterations}: expected demos >= 0 (0: exact '
                             f'feature counts), demo_steps >= 1 and iterations >= 1')
        if not (self.lr > 0 and self.lr_final > 0 and self.l2 >= 0
                and self.gradient_tolerance > 0 and self.solver_tolerance > 0):
            raise ValueError('MaxEnt IRL lr, lr_final, gradient_tolerance and '
                             'solver_tolerance must be > 0 and l2 >= 0')
        check_device_setting('MaxEntIRLConfig', self.device)


@dataclass
class IRLResult:
    """What ``maxent_irl`` returns."""

    theta: np.ndarray
    """The learned weights."""
    gradient: np.ndarray
    """mu_E - mu_theta - l2 theta at the learned weights."""
    soft: SoftValues
    """Soft values and policy of the learned reward."""
    iterations: int
    """Optimiser steps taken."""
    evaluations: int
    """Soft value iterations and forward passes computed (L-BFGS makes several a step)."""
    converged: bool
    seconds: float
    """Wall time of the optimisation (the optimizer's construction left out)."""


def maxent_irl(problem: IRLProblem, expert_features, config: MaxEntIRLConfig = MaxEntIRLConfig(),
               start=None, theta0=None, log: TrainingLog = None) -> IRLResult:
    """Learn theta so the soft-optimal policy of theta . phi matches ``expert_features``.

    ``start`` is the learner's p0 (the demonstrations' own starts when learning from samples);
    ``theta0`` the first guess (zeros). ``log`` gets ``train/dual`` and
    ``train/gradient_max`` at each evaluation.
    """
    import torch

    from ilrl_ros.core.device import resolve_device

    device = resolve_device(config.device)
    mu_e = problem.check_weights(expert_features, 'expert feature expectations')
    start = problem.check_start(start)
    theta = torch.nn.Parameter(torch.zeros(problem.n_features, dtype=torch.float64,
                                           device=device)
                               if theta0 is None else
                               torch.tensor(problem.check_weights(theta0, 'theta0'),
                                            device=device))
    cache = {'values': None, 'evaluations': 0}

    def evaluate():
        """-L(theta) + l2/2 |theta|^2 with its gradient in theta.grad (what torch minimises)."""
        t = theta.detach().cpu().numpy().copy()
        soft = soft_value_iteration(problem, t, config.solver_tolerance,
                                    initial=cache['values'])
        cache['values'], cache['soft'] = soft.values, soft
        grad = mu_e - feature_expectations(problem, soft.policy, start,
                                           config.solver_tolerance) - config.l2 * t
        objective = float(t @ mu_e - start @ soft.values - 0.5 * config.l2 * t @ t)
        cache['grad'], cache['objective'] = grad, objective
        cache['evaluations'] += 1
        if log is not None:
            log.scalar('train/dual', objective, cache['evaluations'])
            log.scalar('train/gradient_max', float(np.max(np.abs(grad))), cache['evaluations'])
        theta.grad = torch.from_numpy(-grad).to(device)
        return torch.tensor(-objective, dtype=torch.float64, device=device)

    if config.optimizer == 'lbfgs':
        optimizer = torch.optim.LBFGS([theta], lr=1.0, max_iter=config.iterations,
                                      tolerance_grad=config.gradient_tolerance,
                                      tolerance_change=1e-14, line_search_fn='strong_wolfe')
    else:
        optimizer = torch.optim.Adam([theta], lr=config.lr)
        decay = (config.lr_final / config.lr) ** (1.0 / max(1, config.iterations - 1))
        schedule = torch.optim.lr_scheduler.ExponentialLR(optimizer, decay)
    # The clock starts here: torch's first optimizer imports torch._dynamo, seconds of its own.
    started = time.monotonic()
    converged = False
    evaluate()
    for iteration in range(1, config.iterations + 1):
        if config.optimizer == 'lbfgs':
            # One call runs all of L-BFGS's iterations (up to config.iterations).
            optimizer.step(evaluate)
            iteration = optimizer.state[theta]['n_iter']
        else:
            optimizer.step()  # on theta.grad, from the last evaluation
            schedule.step()
        evaluate()  # the gradient at the new theta, to test, report and (Adam) step on
        worst = float(np.max(np.abs(cache['grad'])))
        if worst < config.gradient_tolerance:
            converged = True
        if converged or config.optimizer == 'lbfgs':
            break
    if not converged:
        logger.warning('MaxEnt IRL stopped after %d iterations with gradient %.3g (tolerance '
                       '%.3g)', config.iterations, worst, config.gradient_tolerance)
    return IRLResult(theta=theta.detach().cpu().numpy().copy(), gradient=cache['grad'],
                     soft=cache['soft'], iterations=iteration,
                     evaluations=cache['evaluations'], converged=converged,
                     seconds=time.monotonic() - started)


# ---- Optimal policies of a state reward --------------------------------------------------


def reward_mdp(problem: IRLProblem, theta) -> TabularMDP:
    """The problem with reward r(s) = theta . phi(s) per step, as a TabularMDP for solvers."""
    r = problem.rewards(theta)
    R = np.broadcast_to(r[:, None, None], problem.P.shape).copy()
    R[problem.terminal] = 0.0
    return TabularMDP(P=problem.P, R=R, terminal=problem.terminal.copy(), gamma=problem.gamma,
                      start=problem.start)


def optimal_q(problem: IRLProblem, theta) -> np.ndarray:
    """Q*(s, a) of the reward theta . phi(s) (value iteration, no entropy bonus)."""
    return value_iteration.solve(reward_mdp(problem, theta)).q


def policy_agreement(problem: IRLProblem, true_theta, learned_theta,
                     relative_tolerance: float = 1e-6) -> tuple:
    """How well the optimal policy of the learned reward does for the true reward.

    Returns the number of non-terminal states where the learned reward's greedy action is
    optimal for the true reward (ties, within ``relative_tolerance`` of the largest |Q|,
    count as optimal), the number where it is the true reward's greedy action itself, and
    the two greedy policies.
    """
    true_q = optimal_q(problem, true_theta)
    learned_q = optimal_q(problem, learned_theta)
    true_policy = value_iteration.greedy_policy(true_q)
    learned_policy = value_iteration.greedy_policy(learned_q)
    live = ~problem.terminal
    slack = relative_tolerance * max(1.0, float(np.max(np.abs(true_q))))
    chosen = true_q[np.arange(problem.n_states), learned_policy]
    optimal = chosen >= true_q.max(axis=1) - slack
    return (int(np.count_nonzero(optimal & live)),
            int(np.count_nonzero((learned_policy == true_policy) & live)),
            true_policy, learned_policy)


# ---- The coloured-squares world -----------------------------------------------------------


@dataclass(frozen=True)
class ColouredGridConfig:
    """A square grid of coloured cells with an exit, and the demonstrator's true weights."""

    size: int = 6
    """Cells per side (size x size)."""
    colours: int = 4
    """Number of colours K (at most 8); each appears at least once. The features of a cell
    are its colour, one-hot."""
    floor: float = 0.5
    """Share of the other cells left plain floor: no colour, all features 0, reward 0 (drawn
    '.'). Each colour's weight is measured against the floor; with no floor at all (0) only
    the exit tells a constant added to every weight apart, and a demonstrator that rarely
    exits leaves the signs poorly determined."""
    weights: tuple = None
    """The demonstrator's true reward per step on each colour, K numbers; None draws them
    from the seed (magnitudes 0.3 to 1, at least one liked (+) and one disliked (-))."""
    exit: tuple = None
    """The exit cell (column, row), 1-based from the bottom left; None: the top right
    corner. Entering it ends the episode with no further reward."""
    noise: float = 0.1
    """Probability that a move goes 90 degrees off (split evenly left and right); moving into
    the edge stays put."""
    gamma: float = 0.9
    """Discount factor, in (0, 1)."""
    seed: int = 0
    """Seed of the colours, of the drawn weights and of the sampled demonstrations."""

    def __post_init__(self):
        size, colours = int(self.size), int(self.colours)
        if not 0.0 < self.gamma < 1.0:
            raise ValueError(f'coloured grid gamma {self.gamma} is out of range; expected a '
                             f'discount factor in (0, 1)')
        if not 0.0 <= self.floor < 1.0:
            raise ValueError(f'coloured grid floor {self.floor} is not a share of the cells; '
                             f'expected a number in [0, 1)')
        if size < 2 or not 1 <= colours <= len(COLOURS) or colours > size * size - 1:
            raise ValueError(f'coloured grid of size {self.size} with {self.colours} colours: '
                             f'expected size >= 2 and 1 to {len(COLOURS)} colours, no more '
                             f'than the cells other than the exit')
        object.__setattr__(self, 'size', size)
        object.__setattr__(self, 'colours', colours)
        if self.weights is not None:
            weights = tuple(float(w) for w in np.ravel(self.weights))
            if len(weights) != colours or not np.all(np.isfinite(weights)):
                raise ValueError(f'coloured grid weights {self.weights!r}: expected {colours} '
                                 f'finite numbers, one per colour')
            object.__setattr__(self, 'weights', weights)
        exit_cell = (size, size) if self.exit is None else tuple(int(v) for v in self.exit)
        if len(exit_cell) != 2 or not all(1 <= v <= size for v in exit_cell):
            raise ValueError(f'coloured grid exit {self.exit!r} is not a cell of the '
                             f'{size}x{size} grid; expected (column, row) from (1, 1)')
        object.__setattr__(self, 'exit', exit_cell)


@dataclass(frozen=True, eq=False)
class ColouredGrid:
    """A coloured-squares world: the IRL problem, the colours and the true weights."""

    config: ColouredGridConfig
    grid: Gridworld
    """The underlying gridworld (cells, dynamics, and text pictures)."""
    colour: np.ndarray
    """Colour index of each state; -1 for the exit, FLOOR (-2) for plain floor."""
    problem: IRLProblem
    true_weights: np.ndarray

    def draw(self, text_of_state) -> list:
        """The grid's lines, top row first, each state drawn by ``text_of_state(s)``."""
        return self.grid.grid(text_of_state, 1).splitlines()

    def colour_text(self, s: int) -> str:
        if self.problem.terminal[s]:
            return EXIT
        return '.' if self.colour[s] == FLOOR else COLOURS[self.colour[s]][0]

    def policy_text(self, policy: np.ndarray):
        return lambda s: EXIT if self.problem.terminal[s] else ARROWS[int(policy[s])]


def make_coloured_grid(config: ColouredGridConfig = ColouredGridConfig()) -> ColouredGrid:
    """Colour the cells of a size x size gridworld at random (by seed) and set its exit."""
    rng = np.random.default_rng(config.seed)
    grid = make_gridworld(GridworldConfig(
        width=config.size, height=config.size, walls=(), terminals={config.exit: 0.0},
        noise=config.noise, living_reward=0.0, gamma=config.gamma))
    mdp = grid.mdp
    K = config.colours
    live = np.flatnonzero(~mdp.terminal)
    colour = np.full(mdp.n_states, -1)
    colour[live] = np.where(rng.random(len(live)) < config.floor, FLOOR,
                            rng.integers(K, size=len(live)))
    colour[rng.choice(live, size=K, replace=False)] = np.arange(K)  # every colour appears
    features = np.zeros((mdp.n_states, K))
    coloured = colour >= 0
    features[coloured, colour[coloured]] = 1.0
    if config.weights is not None:
        weights = np.array(config.weights)
    else:
        signs = np.resize([-1.0, 1.0], K)
        rng.shuffle(signs)
        weights = signs * rng.uniform(0.3, 1.0, size=K)
    problem = IRLProblem(P=mdp.P, features=features, terminal=mdp.terminal, start=mdp.start,
                         gamma=config.gamma)
    return ColouredGrid(config=config, grid=grid, colour=colour, problem=problem,
                        true_weights=weights)


# ---- The experiment that `ilrl train irl` runs ---------------------------------------------


@dataclass
class IRLReport:
    """A run of ``run``: the world, what the learner saw, and what it learned."""

    world: ColouredGrid
    config: dict
    result: IRLResult
    expert_features: np.ndarray
    demos: Demonstrations = None
    """The sampled demonstrations (None when the exact feature counts were used)."""
    optimal_states: int = 0
    """States where the learned reward's optimal action is optimal for the true reward."""
    same_action_states: int = 0
    """States where the two rewards' greedy actions are the same action."""
    true_policy: np.ndarray = None
    learned_policy: np.ndarray = None
    soft_policy_distance: float = 0.0
    """Largest total-variation distance between the demonstrator's and the learned reward's
    soft-optimal policies, over states."""
    extra: dict = field(default_factory=dict)


def run(world_config: ColouredGridConfig = ColouredGridConfig(),
        config: MaxEntIRLConfig = MaxEntIRLConfig(), log: TrainingLog = None) -> IRLReport:
    """Build a coloured grid, let the demonstrator act in it and learn its weights back."""
    world = make_coloured_grid(world_config)
    problem = world.problem
    if config.demonstrator == 'soft':
        expert_policy = soft_value_iteration(problem, world.true_weights,
                                             config.solver_tolerance).policy
    else:
        best = value_iteration.greedy_policy(optimal_q(problem, world.true_weights))
        expert_policy = np.eye(problem.n_actions)[best]
    demos, start = None, problem.start
    if config.demos == 0:
        expert_features = feature_expectations(problem, expert_policy,
                                               tolerance=config.solver_tolerance)
    else:
        rng = np.random.default_rng([world_config.seed, 1])
        demos = sample_demonstrations(problem, expert_policy, config.demos, config.demo_steps,
                                      rng)
        expert_features = demonstration_features(problem, demos)
        start = empirical_start(problem, demos)
    result = maxent_irl(problem, expert_features, config, start=start, log=log)
    optimal, same, true_policy, learned_policy = policy_agreement(
        problem, world.true_weights, result.theta)
    true_soft = soft_value_iteration(problem, world.true_weights, config.solver_tolerance)
    live = ~problem.terminal
    distance = 0.5 * np.abs(true_soft.policy - result.soft.policy).sum(axis=1)
    return IRLReport(world=world, config=asdict(config), result=result,
                     expert_features=expert_features, demos=demos, optimal_states=optimal,
                     same_action_states=same, true_policy=true_policy,
                     learned_policy=learned_policy,
                     soft_policy_distance=float(distance[live].max()))


def normalised(weights: np.ndarray) -> np.ndarray:
    """Weights divided by their largest magnitude (all zero stays zero)."""
    weights = np.asarray(weights, dtype=np.float64)
    top = np.max(np.abs(weights))
    return weights / top if top > 0 else weights


def signs_match(true_weights, learned_weights) -> np.ndarray:
    """Whether each learned weight has the sign of the true one."""
    return np.sign(learned_weights) == np.sign(true_weights)


def report_text(report: IRLReport) -> str:
    """The weights next to the true ones, the signs, and the grid with both policies."""
    world, result, cfg = report.world, report.result, report.world.config
    problem = world.problem
    n_live = int(np.count_nonzero(~problem.terminal))
    if report.demos is None:
        seen = 'its exact expected feature counts'
    else:
        lengths = [len(s) for s in report.demos.states]
        seen = (f'{len(report.demos.states)} sampled demonstrations (mean length '
                f'{np.mean(lengths):.1f} steps, {np.count_nonzero(report.demos.exited)} '
                f'reached the exit)')
    who = {'soft': 'soft-optimal', 'optimal': 'optimal (deterministic)'}
    lines = [f'MaxEnt IRL on a {cfg.size}x{cfg.size} coloured grid: {cfg.colours} colours, '
             f'noise {cfg.noise:g}, gamma {cfg.gamma:g}, seed {cfg.seed}',
             f'demonstrator: {who[report.config["demonstrator"]]} policy of the true reward; '
             f'the learner saw {seen}',
             f'{report.config["optimizer"]}: {result.iterations} steps ({result.evaluations} '
             f'gradient evaluations), largest gradient '
             f'entry {np.max(np.abs(result.gradient)):.2g}'
             f'{"" if result.converged else " (NOT converged)"}, {result.seconds:.2f} s', '']
    true_n, learned_n = normalised(world.true_weights), normalised(result.theta)
    match = signs_match(world.true_weights, result.theta)
    lines.append('colour      true   learned   true/max learned/max  sign')
    for k in range(cfg.colours):
        letter, name = COLOURS[k]
        lines.append(f'{letter} {name:<8} {world.true_weights[k]:+6.3f}  {result.theta[k]:+8.3f}'
                     f'   {true_n[k]:+8.3f}   {learned_n[k]:+8.3f}  '
                     f'{"ok" if match[k] else "WRONG"}')
    lines += ['. floor       0 (fixed: the floor and the exit are worth 0)', '',
              f'signs: {int(match.sum())} of {cfg.colours} match',
              f"the learned reward's optimal policy is optimal for the true reward in "
              f'{report.optimal_states} of {n_live} states (the same action in '
              f'{report.same_action_states})',
              f'soft-optimal policies: largest total-variation distance '
              f'{report.soft_policy_distance:.3f}', '']
    columns = [('colours', world.draw(world.colour_text)),
               ('demonstrator', world.draw(world.policy_text(report.true_policy))),
               ('learned', world.draw(world.policy_text(report.learned_policy)))]
    width = max(max(len(title) for title, _ in columns), len(columns[0][1][0].rstrip()))
    lines.append('   '.join(title.ljust(width) for title, _ in columns).rstrip())
    for row in zip(*(rows for _, rows in columns)):
        lines.append('   '.join(text.ljust(width) for text in row).rstrip())
    lines.append(f'({EXIT}: exit; arrows: optimal actions of the true and of the learned '
                 f'reward; letters: colours)')
    return '\n'.join(lines)
