"""The 4x3 gridworld of Russell & Norvig as explicit MDP tables, and a gymnasium env on them.

Russell & Norvig, "Artificial Intelligence: A Modern Approach", 3rd ed., ch. 17.1 (fig. 17.1
to 17.3): a robot in a grid of cells moves north, east, south or west; it goes where it was
told with probability 0.8 and 90 degrees off to either side with 0.1 each, and stays put
when it would hit a wall or the edge. Two terminal cells end the episode with +1 and -1.
Cells are (column, row), 1-based from the bottom left. The same tables drive the solvers
(``ilrl_ros.core.algorithms.value_iteration`` and ``policy_iteration``) and the env that
Q-learning samples from, so what is planned and what is learned is the same problem.

Rewards. AIMA gives each state a reward R(s) (the living reward, or the terminal's reward)
and counts it on being in s: U(s) = R(s) + gamma max_a sum_s' P(s' | s, a) U(s'), with
U(terminal) = R(terminal). The tables here are in the per-transition form that samplers
and Q-learning use (Sutton & Barto 2018, ch. 3): R[s, a, s'] = R(s) + gamma R(s') if s' is
terminal, else R(s), and a terminal state's value is 0, as the episode is over. The two are
the same problem: V(s) = U(s) for every non-terminal s, for every gamma, and the return of
an episode, sum_t gamma^t r_{t+1}, is AIMA's sum_t gamma^t R(s_t). ``Gridworld.utilities``
turns values back into AIMA's utilities (the terminals' rewards filled in).
"""

from dataclasses import dataclass, field
import numbers

import gymnasium as gym
import numpy as np

ACTIONS = ('N', 'E', 'S', 'W')
"""Action names by index; each is 90 degrees clockwise from the one before."""
OBSERVATIONS = ('index', 'one_hot')
"""What ``GridworldEnv`` observes: the state index, or a one-hot vector of it."""
ARROWS = ('^', '>', 'v', '<')
"""How a policy's action is drawn in a text grid (ASCII, so logs of any encoding show it)."""
MOVES = ((0, 1), (1, 0), (0, -1), (-1, 0))
"""(d column, d row) of each action."""


def slips(action: int, noise: float) -> tuple:
    """Where an action really goes: ((direction, probability), ...), three of them.

    The intended direction with 1 - noise, the two at 90 degrees to it with noise / 2 each.
    """
    n = len(ACTIONS)
    return ((action, 1.0 - noise), ((action + 1) % n, noise / 2), ((action - 1) % n, noise / 2))


def neighbour(config: 'GridworldConfig', cell: tuple, direction: int) -> tuple:
    """The cell that moving in ``direction`` from ``cell`` reaches.

    The next one that way, or ``cell`` itself where a wall or the edge is in the way.
    """
    d_column, d_row = MOVES[direction]
    target = (cell[0] + d_column, cell[1] + d_row)
    if target in config.walls or not (1 <= target[0] <= config.width
                                      and 1 <= target[1] <= config.height):
        return cell
    return target


def _cell(value, what: str) -> tuple:
    try:
        column, row = (int(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f'gridworld {what} {value!r} is not a cell; expected (column, row), '
                         f'two integers') from None
    return column, row


@dataclass(frozen=True)
class GridworldConfig:
    """A gridworld: its layout, its noise and rewards, and how episodes start and end.

    The defaults are the lectures' 4x3 world: AIMA's layout and noise with R(s) = -0.03 and
    gamma = 1 (AIMA's own figures use R(s) = -0.04: ``GridworldConfig(living_reward=-0.04)``).
    """

    width: int = 4
    """Columns; cells go from column 1 (left) to ``width``."""
    height: int = 3
    """Rows; cells go from row 1 (bottom) to ``height``."""
    walls: tuple = ((2, 2),)
    """Blocked cells, as (column, row); the agent bumps into them and stays where it was."""
    terminals: dict = field(default_factory=lambda: {(4, 3): 1.0, (4, 2): -1.0})
    """Terminal cells and their rewards, {(column, row): reward}; entering one ends the
    episode (a list of ((column, row), reward) pairs is also accepted)."""
    noise: float = 0.2
    """Probability that a move goes 90 degrees off, split evenly to the left and right."""
    living_reward: float = -0.03
    """R(s) of every non-terminal cell: the reward of each step taken from it (the lectures'
    -0.03; AIMA's figures use -0.04)."""
    gamma: float = 1.0
    """Discount factor in (0, 1]. With 1, only policies that reach a terminal have values."""
    start: tuple = None
    """A fixed start cell (column, row); None starts each episode in a non-terminal cell
    drawn uniformly at random."""
    max_steps: int = 100
    """Env only: an episode is truncated after this many steps (the tables do not use it)."""

    def __post_init__(self):
        if int(self.width) < 1 or int(self.height) < 1:
            raise ValueError(f'gridworld size {self.width}x{self.height} is empty; expected '
                             f'width and height of at least 1')
        walls = tuple(_cell(c, 'wall') for c in self.walls)
        pairs = self.terminals.items() if hasattr(self.terminals, 'items') else self.terminals
        terminals = {}
        for pair in pairs:
            try:
                cell, reward = pair
            except (TypeError, ValueError):
                raise ValueError(f'gridworld terminal {pair!r} is not a ((column, row), '
                                 f'reward) pair') from None
            terminals[_cell(cell, 'terminal')] = float(reward)
        object.__setattr__(self, 'width', int(self.width))
        object.__setattr__(self, 'height', int(self.height))
        object.__setattr__(self, 'walls', walls)
        object.__setattr__(self, 'terminals', terminals)
        for cell in walls:
            self._check_inside(cell, 'wall')
        for cell in terminals:
            self._check_inside(cell, 'terminal')
        both = sorted(set(walls) & set(terminals))
        if both:
            raise ValueError(f'gridworld cells {both} are both walls and terminals; a cell '
                             f'is one or the other')
        for name in ('noise', 'living_reward', 'gamma'):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not np.isfinite(value):
                raise ValueError(f'gridworld {name} {value!r} is not a finite number')
        if not 0.0 <= self.noise <= 1.0:
            raise ValueError(f'gridworld noise {self.noise} is not a probability; expected a '
                             f'value in [0, 1] (AIMA: 0.2)')
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f'gridworld gamma {self.gamma} is out of range; expected a '
                             f'discount factor in (0, 1]')
        if int(self.max_steps) < 1:
            raise ValueError(f'gridworld max_steps {self.max_steps} must be at least 1')
        object.__setattr__(self, 'max_steps', int(self.max_steps))
        if self.start is not None:
            start = _cell(self.start, 'start')
            self._check_inside(start, 'start')
            if start in walls or start in terminals:
                raise ValueError(f'gridworld start {start} is a wall or terminal cell; '
                                 f'expected a cell the agent can act from')
            object.__setattr__(self, 'start', start)
        if len(walls) + len(terminals) >= self.width * self.height:
            raise ValueError('gridworld has no cell to act from: every cell is a wall or a '
                             'terminal')

    def _check_inside(self, cell: tuple, what: str) -> None:
        column, row = cell
        if not (1 <= column <= self.width and 1 <= row <= self.height):
            raise ValueError(f'gridworld {what} {cell} is outside the {self.width}x{self.height} '
                             f'grid; cells are (column, row) from (1, 1) at the bottom left to '
                             f'({self.width}, {self.height})')


@dataclass(frozen=True, eq=False)
class TabularMDP:
    """A finite MDP as arrays; states and actions are indices."""

    P: np.ndarray
    """P[s, a, s'] = Pr(s' | s, a), shape [S, A, S]; each row sums to 1 (a terminal state
    loops to itself, with reward 0)."""
    R: np.ndarray
    """R[s, a, s']: the reward of that transition, shape [S, A, S]."""
    terminal: np.ndarray
    """terminal[s] (bool, [S]): entering s ends the episode; its value is 0."""
    gamma: float
    """Discount factor in (0, 1]."""
    start: np.ndarray
    """start[s] ([S]): probability that an episode starts in s."""

    def __post_init__(self):
        S, A = self.P.shape[:2]
        shapes = {'P': (self.P.shape, (S, A, S)), 'R': (self.R.shape, (S, A, S)),
                  'terminal': (self.terminal.shape, (S,)), 'start': (self.start.shape, (S,))}
        for name, (got, expected) in shapes.items():
            if got != expected:
                raise ValueError(f'MDP table {name} has shape {got}; expected {expected} for '
                                 f'{S} states and {A} actions')
        if np.any(self.P < 0) or not np.allclose(self.P.sum(axis=2), 1.0):
            raise ValueError('MDP transition table P[s, a, :] must be a probability '
                             'distribution over next states for every s and a')
        if self.terminal.dtype != bool:
            raise ValueError(f'MDP terminal mask has dtype {self.terminal.dtype}; expected bool')
        if not np.isclose(self.start.sum(), 1.0) or np.any(self.start[self.terminal] > 0):
            raise ValueError('MDP start distribution must sum to 1 over non-terminal states')
        if not 0.0 < self.gamma <= 1.0:
            raise ValueError(f'MDP gamma {self.gamma} is out of range; expected (0, 1]')

    @property
    def n_states(self) -> int:
        return self.P.shape[0]

    @property
    def n_actions(self) -> int:
        return self.P.shape[1]


@dataclass(frozen=True, eq=False)
class Gridworld:
    """A gridworld's MDP tables with the cell of each state, and text pictures of it."""

    config: GridworldConfig
    cells: tuple
    """The cell (column, row) of each state; states are the non-wall cells, row by row from
    the bottom left."""
    mdp: TabularMDP
    state_reward: np.ndarray
    """AIMA's R(s) per state: the living reward, or a terminal's reward."""

    def state(self, cell) -> int:
        """The state index of a cell (column, row)."""
        cell = _cell(cell, 'cell')
        try:
            return self.cells.index(cell)
        except ValueError:
            raise ValueError(f'gridworld cell {cell} is not a state: it is a wall or outside '
                             f'the {self.config.width}x{self.config.height} grid') from None

    def move(self, state: int, direction: int) -> int:
        """The state that moving in ``direction`` (slips aside) from ``state`` reaches."""
        return self.cells.index(neighbour(self.config, self.cells[state], direction))

    def utilities(self, values: np.ndarray) -> np.ndarray:
        """AIMA's U(s) from values V(s): the same on non-terminals, R(s) on terminals."""
        return np.where(self.mdp.terminal, self.state_reward, values)

    def grid(self, text_of_state, width: int) -> str:
        """Lay out ``text_of_state(s)`` of every state as the grid, top row first."""
        lines = []
        for row in range(self.config.height, 0, -1):
            texts = []
            for column in range(1, self.config.width + 1):
                if (column, row) in self.config.walls:
                    texts.append('#' * min(width, 5))
                else:
                    texts.append(text_of_state(self.cells.index((column, row))))
            lines.append(' '.join(t.rjust(width) for t in texts))
        return '\n'.join(lines)

    def render_values(self, values: np.ndarray, decimals: int = 3) -> str:
        """The utilities as a grid, top row first; '#' marks a wall."""
        u = self.utilities(np.asarray(values, dtype=np.float64))
        text = [f'{v:+.{decimals}f}' if t else f'{v:.{decimals}f}'
                for v, t in zip(u, self.mdp.terminal)]
        return self.grid(text.__getitem__, max(len(t) for t in text))

    def render_policy(self, policy: np.ndarray) -> str:
        """The policy as arrows (^ > v <) in a grid; terminals show their reward."""
        def text(s):
            if self.mdp.terminal[s]:
                return f'{self.state_reward[s]:+g}'
            return ARROWS[int(policy[s])]
        width = max(len(text(s)) for s in range(self.mdp.n_states))
        return self.grid(text, width)


def make_gridworld(config: GridworldConfig = GridworldConfig()) -> Gridworld:
    """Build the MDP tables of ``config``."""
    cells = tuple((column, row) for row in range(1, config.height + 1)
                  for column in range(1, config.width + 1) if (column, row) not in config.walls)
    index = {cell: s for s, cell in enumerate(cells)}
    S, A = len(cells), len(ACTIONS)
    terminal = np.array([cell in config.terminals for cell in cells])
    state_reward = np.array([config.terminals.get(cell, config.living_reward)
                             for cell in cells])
    # Reward of arriving in s': a terminal's reward is counted one step later than the
    # living reward, as AIMA counts it in U(s'), hence the gamma (see the module docstring).
    arrival = np.where(terminal, config.gamma * state_reward, 0.0)
    P = np.zeros((S, A, S))
    R = np.zeros((S, A, S))
    for s, cell in enumerate(cells):
        if terminal[s]:
            P[s, :, s] = 1.0
            continue
        for a in range(A):
            for direction, probability in slips(a, config.noise):
                P[s, a, index[neighbour(config, cell, direction)]] += probability
            R[s, a, :] = state_reward[s] + arrival
    R[terminal] = 0.0
    if config.start is None:
        start = (~terminal).astype(np.float64) / np.count_nonzero(~terminal)
    else:
        start = np.zeros(S)
        start[index[config.start]] = 1.0
    mdp = TabularMDP(P=P, R=R, terminal=terminal, gamma=float(config.gamma), start=start)
    return Gridworld(config=config, cells=cells, mdp=mdp, state_reward=state_reward)


class GridworldEnv(gym.Env):
    """Gymnasium environment that samples transitions and rewards from a gridworld's tables.

    Actions are indices (``Discrete``: 0 N, 1 E, 2 S, 3 W); observations are the state index
    (``Discrete``, for tabular learners) or, with ``observation='one_hot'``, a float32 vector
    with a 1 at the state index (``Box``, for networks: DQN, REINFORCE, PPO).
    ``info['cell']`` is the agent's (column, row). ``reset(options={'cell': (column, row)})``
    or ``{'state': index}`` starts from a given non-terminal state. Deterministic under
    ``reset(seed=...)``.
    """

    metadata = {'render_modes': ['ansi'], 'render_fps': 4}

    def __init__(self, config: GridworldConfig = GridworldConfig(), render_mode: str = None,
                 observation: str = 'index'):
        if render_mode not in (None, 'ansi'):
            raise ValueError(f'gridworld render_mode {render_mode!r} is not supported; '
                             "expected None or 'ansi' (text)")
        if observation not in OBSERVATIONS:
            raise ValueError(f'gridworld observation {observation!r} is not known; expected '
                             f'one of {", ".join(OBSERVATIONS)}')
        self.world = make_gridworld(config)
        self.render_mode = render_mode
        mdp = self.world.mdp
        self._one_hot = np.eye(mdp.n_states, dtype=np.float32) \
            if observation == 'one_hot' else None
        self.observation_space = gym.spaces.Discrete(mdp.n_states) if self._one_hot is None \
            else gym.spaces.Box(0.0, 1.0, shape=(mdp.n_states,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(mdp.n_actions)
        self._cdf = np.cumsum(mdp.P, axis=2)
        self._cdf[..., -1] = 1.0  # so rounding can never leave a draw without a next state
        self.state = None
        self.steps = 0
        self._done = True

    @property
    def gamma(self) -> float:
        """The discount factor of the task (for learners that need it)."""
        return self.world.mdp.gamma

    def _observation(self):
        if self._one_hot is None:
            return self.state
        return self._one_hot[self.state].copy()

    def _info(self) -> dict:
        return {'cell': self.world.cells[self.state]}

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        options = options or {}
        mdp = self.world.mdp
        if 'cell' in options:
            state = self.world.state(options['cell'])
        elif 'state' in options:
            state = int(options['state'])
            if not 0 <= state < mdp.n_states:
                raise ValueError(f'gridworld reset state {state} is out of range; expected '
                                 f'0 to {mdp.n_states - 1}')
        else:
            state = int(self.np_random.choice(mdp.n_states, p=mdp.start))
        if mdp.terminal[state]:
            raise ValueError(f'gridworld reset in {self.world.cells[state]}, a terminal '
                             f'cell; expected a cell to act from')
        self.state, self.steps, self._done = state, 0, False
        return self._observation(), self._info()

    def step(self, action):
        if self._done:
            raise RuntimeError('gridworld step after the episode ended; call reset() first')
        # Checked here rather than by Discrete.contains, which costs more than the step.
        if not (isinstance(action, (int, np.integer)) or
                (isinstance(action, np.ndarray) and action.shape == ()
                 and np.issubdtype(action.dtype, np.integer))) \
                or not 0 <= int(action) < len(ACTIONS):
            raise ValueError(f'gridworld action {action!r} is not one of 0..3 '
                             f'({", ".join(f"{i}={n}" for i, n in enumerate(ACTIONS))})')
        s, a = self.state, int(action)
        nxt = int(np.searchsorted(self._cdf[s, a], self.np_random.random(), side='right'))
        reward = float(self.world.mdp.R[s, a, nxt])
        self.state = nxt
        self.steps += 1
        terminated = bool(self.world.mdp.terminal[nxt])
        truncated = not terminated and self.steps >= self.world.config.max_steps
        self._done = terminated or truncated
        return self._observation(), reward, terminated, truncated, self._info()

    def render(self):
        """The grid as text with the agent as 'A' (render_mode 'ansi')."""
        if self.render_mode is None:
            return None

        def text(s):
            if s == self.state:
                return 'A'
            if self.world.mdp.terminal[s]:
                return f'{self.world.state_reward[s]:+g}'
            return '.'
        width = max(len(text(s)) for s in range(self.world.mdp.n_states))
        return self.world.grid(text, width) + '\n'


GYMNASIUM_ID = 'ilrl/Gridworld4x3-v0'
"""The lectures' 4x3 world with one-hot observations, registered with gymnasium by
``ilrl_ros.core.envs``: ``gym.make('ilrl/Gridworld4x3-v0')``, ``ilrl train dqn --env ...``."""


def make_gridworld_env(render_mode: str = None, observation: str = 'one_hot',
                       **config) -> GridworldEnv:
    """``GYMNASIUM_ID``'s entry point: a ``GridworldEnv``, one-hot observations by default.

    ``GridworldConfig`` fields are keyword arguments, e.g.
    ``gym.make(GYMNASIUM_ID, living_reward=-0.04)``.
    """
    unknown = sorted(set(config) - set(GridworldConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f'gridworld has no setting {", ".join(unknown)}; its settings: '
                         f'{", ".join(GridworldConfig.__dataclass_fields__)}')
    return GridworldEnv(GridworldConfig(**config), render_mode=render_mode,
                        observation=observation)


@dataclass(frozen=True)
class Step:
    """One step of a replayed trajectory, as the lecture slides walk through it."""

    state: int
    action: int
    direction: int
    """Where the move really went: ``action``, or 90 degrees off it (a slip)."""
    next_state: int
    reward: float
    ret: float
    """The return so far, sum of gamma^t r_{t+1} over the steps up to this one."""
    terminated: bool


def trajectory(world: Gridworld, policy, rng: np.random.Generator, start=None,
               max_steps: int = 100) -> list:
    """Play ``policy`` (an action per state, or a callable ``state -> action``) once.

    Each move draws its real direction as the tables do (intended with 1 - noise, 90
    degrees to either side with noise / 2 each), so a replay shows the slips. Starts from
    the cell ``start`` or one drawn from the start distribution; stops on entering a terminal
    or after ``max_steps``.
    """
    mdp, config = world.mdp, world.config
    if int(max_steps) < 1:
        raise ValueError(f'trajectory max_steps {max_steps} must be at least 1')
    state = world.state(start) if start is not None \
        else int(rng.choice(mdp.n_states, p=mdp.start))
    if mdp.terminal[state]:
        raise ValueError(f'trajectory start {world.cells[state]} is a terminal cell; expected '
                         f'a cell to act from')
    choose = policy if callable(policy) else np.asarray(policy).__getitem__
    steps, ret, discount = [], 0.0, 1.0
    for _ in range(int(max_steps)):
        action = int(choose(state))
        outcomes = slips(action, config.noise)
        pick = rng.choice(len(outcomes), p=[p for _, p in outcomes])
        direction = outcomes[pick][0]
        next_state = world.move(state, direction)
        reward = float(mdp.R[state, action, next_state])
        ret += discount * reward
        discount *= mdp.gamma
        terminated = bool(mdp.terminal[next_state])
        steps.append(Step(state, action, direction, next_state, reward, ret, terminated))
        state = next_state
        if terminated:
            break
    return steps
