"""Expert for Pendulum-v1: energy-pumping swing-up, then an LQR that catches and balances.

Swing-up by energy shaping after Astrom and Furuta, "Swinging up a pendulum by energy
control", Automatica 36(2), 2000. It sees the true state, which the learner may not.
"""

import math

import numpy as np

from ilrl_ros.core.world.pendulum_dynamics import (
    DT,
    GRAVITY,
    LENGTH,
    MASS,
    MAX_TORQUE,
    angle_normalize,
)


def solve_discrete_riccati(a, b, q, r, tolerance=1e-12, max_iterations=100000):
    """
    Solve the discrete-time algebraic Riccati equation by fixed-point iteration.

    Iterates ``P <- Q + A'P(A - BK)`` with ``K = (R + B'PB)^-1 B'PA`` from ``P = Q`` until
    the largest change is below ``tolerance`` relative to ``P``.

    :return: ``(P, K)``: the cost-to-go matrix and the gain of ``u = -K x``.
    :raises ValueError: If it does not converge (e.g. ``(A, B)`` is not stabilisable).
    """
    a, b, q, r = (np.atleast_2d(np.asarray(m, dtype=float)) for m in (a, b, q, r))
    p = q.copy()
    for _ in range(max_iterations):
        gain = np.linalg.solve(r + b.T @ p @ b, b.T @ p @ a)
        updated = q + a.T @ p @ (a - b @ gain)
        updated = 0.5 * (updated + updated.T)
        if not np.all(np.isfinite(updated)):
            break
        if np.max(np.abs(updated - p)) <= tolerance * max(1.0, np.max(np.abs(updated))):
            return updated, np.linalg.solve(r + b.T @ updated @ b, b.T @ updated @ a)
        p = updated
    raise ValueError(
        f'The Riccati iteration did not converge in {max_iterations} steps; check that the '
        'linearised model is stabilisable and that Q is positive semi-definite and R positive '
        'definite.')


class SwingUpLQR:
    """
    Privileged expert torque for Pendulum-v1 (theta = 0 upright).

    The dynamics are ``theta_ddot = 3g/(2l) sin(theta) + 3/(m l^2) u``, so
    ``E = theta_dot^2 / 2 + 3g/(2l) (cos(theta) - 1)`` changes as ``dE/dt = 3/(m l^2)
    theta_dot u``: E is 0 upright at rest and ``-3g/l`` hanging at rest. Far from upright the
    expert pushes E towards 0 with ``u = clip(k (0 - E) theta_dot)`` (pumping in the direction
    of motion); once the LQR's predicted cost-to-go ``x'Px`` falls below ``catch_cost`` it
    switches to ``u = -Kx``, the discrete LQR of the model linearised at the top. A single
    threshold on one quadratic keeps the switching rule simple, and ``x'Px`` measures how far
    the state is from being balanced in the LQR's own terms.
    """

    def __init__(self, max_torque: float = MAX_TORQUE, g: float = GRAVITY, mass: float = MASS,
                 length: float = LENGTH, dt: float = DT, q=(1.0, 0.1), r: float = 0.001,
                 catch_cost: float = 2.0, pump_gain: float = 100.0):
        """
        Build the expert; the LQR gain is computed here, once.

        :param max_torque: Torque limit in N m; every command is clipped to it.
        :param g: Gravity in m/s^2 (Pendulum-v1's ``g``).
        :param mass: Pendulum mass in kg.
        :param length: Pendulum length in m.
        :param dt: Control period in s (Pendulum-v1 steps 0.05 s).
        :param q: Diagonal LQR state weights on (angle, angular speed); the defaults and ``r``
            are Pendulum-v1's own cost weights, so the LQR optimises the task's reward.
        :param r: LQR torque weight.
        :param catch_cost: Switch to the LQR when ``x'Px`` is below this.
        :param pump_gain: Gain of the energy pump; large values make it nearly bang-bang.
        """
        if max_torque <= 0.0 or dt <= 0.0 or catch_cost <= 0.0:
            raise ValueError(
                f'max_torque, dt and catch_cost must be positive, got {max_torque}, {dt} and '
                f'{catch_cost}.')
        self.max_torque = float(max_torque)
        self.catch_cost = float(catch_cost)
        self.pump_gain = float(pump_gain)
        self.gravity_term = 3.0 * g / (2.0 * length)
        torque_term = 3.0 / (mass * length**2)
        # Pendulum-v1 integrates semi-implicitly (speed first, then angle with the new speed);
        # linearising that step at the top gives this A and B exactly.
        a = np.array([[1.0 + self.gravity_term * dt**2, dt], [self.gravity_term * dt, 1.0]])
        b = np.array([[torque_term * dt**2], [torque_term * dt]])
        self.cost_to_go, gain = solve_discrete_riccati(a, b, np.diag(q), [[r]])
        self.gain = gain.ravel()
        self.cost_to_go.setflags(write=False)
        self.gain.setflags(write=False)

    def energy(self, theta: float, theta_dot: float) -> float:
        """Energy per unit inertia, 0 upright at rest."""
        return 0.5 * theta_dot**2 + self.gravity_term * (math.cos(theta) - 1.0)

    def is_catching(self, theta: float, theta_dot: float) -> bool:
        """Whether the state is close enough to upright for the LQR to take over."""
        angle = float(angle_normalize(theta))
        p = self.cost_to_go
        cost = p[0, 0] * angle**2 + 2.0 * p[0, 1] * angle * theta_dot + p[1, 1] * theta_dot**2
        return cost < self.catch_cost

    def act(self, theta: float, theta_dot: float) -> float:
        """Torque in N m for the state ``(theta, theta_dot)``, within ``max_torque``."""
        theta, theta_dot = float(theta), float(theta_dot)
        if self.is_catching(theta, theta_dot):
            angle = float(angle_normalize(theta))
            u = -(self.gain[0] * angle + self.gain[1] * theta_dot)
        else:
            # At rest the pump has no direction to push in, so it kicks one way to start.
            direction = theta_dot if theta_dot != 0.0 else 1.0
            u = self.pump_gain * (0.0 - self.energy(theta, theta_dot)) * direction
        return float(min(max(u, -self.max_torque), self.max_torque))
