"""LQR on a linearised model: the classic model-based controller, as a checkpointable policy.

Linearise a discrete-time dynamics function x' = f(x, u) around an operating point (x0, u0)
by central finite differences, solve the discrete algebraic Riccati equation for the
quadratic cost sum x'Qx + u'Ru, and act with u = clip(u0 - K (x - x0)). Kalman, "Contributions
to the theory of optimal control", 1960; the discrete form as in Anderson & Moore, "Optimal
Control: Linear Quadratic Methods", 1990, ch. 2. For the pendulum the state is read from the
observation [cos theta, sin theta, theta_dot] as x = [atan2(sin, cos), theta_dot].
"""

from dataclasses import asdict, dataclass

import numpy as np

from ilrl_ros.core.experts.pendulum_swingup import solve_discrete_riccati
from ilrl_ros.core.networks import LinearFeedbackPolicy
from ilrl_ros.core.spec import TaskSpec
from ilrl_ros.core.world.pendulum_dynamics import pendulum_step

@dataclass
class LQRConfig:
    """LQR settings: the quadratic cost and how the model is linearised."""

    q: tuple = (1.0, 0.1)
    """Diagonal of the state weight Q; the default is Pendulum-v1's cost on (theta, theta_dot)."""
    r: tuple = (0.001,)
    """Diagonal of the action weight R; the default is Pendulum-v1's torque cost."""
    step: float = 1e-5
    """Finite-difference step for the Jacobians, in the units of x and u."""


def linearize(dynamics, x0, u0, step: float = 1e-5) -> tuple:
    """Jacobians A = df/dx and B = df/du of ``dynamics(x, u) -> x'`` at (x0, u0).

    Central differences, so the error is O(step^2) for a smooth f; keep (x0, u0) away from
    kinks such as torque or speed limits, where the one-sided slopes differ.
    """
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    u0 = np.asarray(u0, dtype=np.float64).reshape(-1)
    if step <= 0.0:
        raise ValueError(f'the finite-difference step must be positive, got {step}')

    def f(x, u):
        out = np.asarray(dynamics(x, u), dtype=np.float64).reshape(-1)
        if out.shape != x0.shape:
            raise ValueError(f'dynamics returned a state of shape {out.shape}; expected '
                             f'{x0.shape}, the shape of x0')
        return out

    a = np.zeros((x0.size, x0.size))
    b = np.zeros((x0.size, u0.size))
    for i in range(x0.size):
        dx = np.zeros_like(x0)
        dx[i] = step
        a[:, i] = (f(x0 + dx, u0) - f(x0 - dx, u0)) / (2.0 * step)
    for j in range(u0.size):
        du = np.zeros_like(u0)
        du[j] = step
        b[:, j] = (f(x0, u0 + du) - f(x0, u0 - du)) / (2.0 * step)
    return a, b


def lqr_gain(a, b, q, r) -> tuple:
    """Infinite-horizon discrete LQR: (K, P) with u = -K x and cost-to-go x'Px."""
    p, k = solve_discrete_riccati(a, b, q, r)
    return k, p


def pendulum_state_step(x, u, g: float = 10.0) -> np.ndarray:
    """One Pendulum-v1 step on the state x = [theta, theta_dot] (theta = 0 upright)."""
    return np.array(pendulum_step(x[0], x[1], np.asarray(u, dtype=np.float64).reshape(1), g=g))


@dataclass
class LQRResult:
    """What the design functions return: the policy and the pieces behind it."""

    policy: LinearFeedbackPolicy
    a: np.ndarray
    b: np.ndarray
    gain: np.ndarray
    cost_to_go: np.ndarray
    config: dict


def design(dynamics, x0, u0, config: LQRConfig = LQRConfig(), *, obs_dim: int,
           state_map: str = 'identity', low=None, high=None) -> LQRResult:
    """Linearise ``dynamics(x, u) -> x'`` at (x0, u0) and build the LQR policy around it."""
    x0 = np.asarray(x0, dtype=np.float64).reshape(-1)
    u0 = np.asarray(u0, dtype=np.float64).reshape(-1)
    if len(config.q) != x0.size or len(config.r) != u0.size:
        raise ValueError(f'LQRConfig.q has {len(config.q)} weights and r has {len(config.r)}; '
                         f'the state has {x0.size} and the action {u0.size} dimensions')
    a, b = linearize(dynamics, x0, u0, config.step)
    gain, cost_to_go = lqr_gain(a, b, np.diag(config.q), np.diag(config.r))
    policy = LinearFeedbackPolicy(obs_dim, u0.size, state_map=state_map, gain=gain, x0=x0,
                                  u0=u0, low=low, high=high)
    policy.eval()
    config_dict = asdict(config)
    config_dict.update(q=list(config.q), r=list(config.r))
    return LQRResult(policy=policy, a=a, b=b, gain=gain, cost_to_go=cost_to_go,
                     config=config_dict)


def pendulum_lqr(spec: TaskSpec, config: LQRConfig = LQRConfig()) -> LQRResult:
    """The balancing LQR for a ``pendulum`` task spec, linearised at the top (theta = 0).

    Gravity and the torque bounds come from the spec; the model is Pendulum-v1's step.
    """
    components = tuple(label.rsplit('.', 1)[-1] for label in spec.observation.labels())
    if components != ('cos', 'sin', 'velocity') or spec.action.size != 1:
        raise ValueError(f'task {spec.name!r} observes {list(components)} with '
                         f'{spec.action.size} actions; pendulum_lqr needs the observation '
                         '[cos, sin, velocity] of one joint and one torque')
    g = float(spec.sim_params.get('g', 10.0))
    return design(lambda x, u: pendulum_state_step(x, u, g=g), [0.0, 0.0], [0.0], config,
                  obs_dim=3, state_map='pendulum', low=spec.action.low,
                  high=spec.action.high)
