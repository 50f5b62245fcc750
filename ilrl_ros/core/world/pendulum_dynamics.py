"""The dynamics, cost and start distribution of gymnasium's ``Pendulum-v1``, as pure functions.

Bit-for-bit the same arithmetic as ``gymnasium.envs.classic_control.pendulum`` (including its
dtype behaviour), so a simulator built on these functions reproduces Pendulum-v1 exactly and
a policy trained on either one scores the same on the other.
"""

import numpy as np

# Python numbers, as in gymnasium: NumPy scalars here would promote a float32 torque to
# float64 in np.clip and change the rounding of every step.
MAX_SPEED = 8
MAX_TORQUE = 2.0
DT = 0.05
GRAVITY = 10.0
MASS = 1.0
LENGTH = 1.0

# Pendulum-v1's reset draws theta in [-pi, pi] and theta_dot in [-1, 1].
DEFAULT_MAX_ANGLE = np.pi
DEFAULT_MAX_ANGULAR_SPEED = 1.0


def angle_normalize(x):
    """Wrap an angle into [-pi, pi), exactly as Pendulum-v1 does (0 is upright)."""
    return ((x + np.pi) % (2 * np.pi)) - np.pi


def _clip_torque(u):
    """Clip like Pendulum-v1, keeping the dtype (a float32 action stays float32)."""
    u = np.clip(np.asarray(u), -MAX_TORQUE, MAX_TORQUE)
    if u.size != 1:
        raise ValueError(
            f'The pendulum takes one torque, got an action of shape {u.shape}; pass a scalar '
            'or an array with a single element.')
    return u.reshape(-1)[0]


def pendulum_step(theta, theta_dot, u, g=GRAVITY):
    """
    Advance Pendulum-v1 by one step of ``DT`` seconds (semi-implicit Euler).

    The torque is clipped to ``[-MAX_TORQUE, MAX_TORQUE]`` and keeps its dtype: like
    gymnasium, a float32 action is scaled in float32 before it is added to the float64 state.

    :param theta: Angle in radians, 0 upright, counter-clockwise positive; not wrapped.
    :param theta_dot: Angular speed in rad/s.
    :param u: Torque in N m: a scalar or a one-element array (the action).
    :param g: Gravity in m/s^2.
    :return: ``(theta, theta_dot)`` after the step, as floats; speed clipped to ``MAX_SPEED``.
    """
    u = _clip_torque(u)
    theta, theta_dot = np.float64(theta), np.float64(theta_dot)
    newthdot = theta_dot + (
        3 * g / (2 * LENGTH) * np.sin(theta) + 3.0 / (MASS * LENGTH**2) * u) * DT
    newthdot = np.clip(newthdot, -MAX_SPEED, MAX_SPEED)
    newth = theta + newthdot * DT
    return float(newth), float(newthdot)


def pendulum_cost(theta, theta_dot, u):
    """
    Pendulum-v1's cost of applying ``u`` in state ``(theta, theta_dot)``; the reward is minus it.

    Computed on the state before the step and the clipped torque, as gymnasium does.
    """
    u = _clip_torque(u)
    # Pendulum-v1's state is a float64 array; with Python floats here a float32 torque would
    # turn the whole sum float32 (NumPy 2 promotion).
    theta, theta_dot = np.float64(theta), np.float64(theta_dot)
    return float(angle_normalize(theta) ** 2 + 0.1 * theta_dot**2 + 0.001 * (u**2))


def pendulum_observation(theta, theta_dot):
    """Pendulum-v1's observation ``[cos(theta), sin(theta), theta_dot]`` as float32."""
    return np.array([np.cos(theta), np.sin(theta), theta_dot], dtype=np.float32)


def sample_initial_state(np_random: np.random.Generator, max_angle=DEFAULT_MAX_ANGLE,
                         max_angular_speed=DEFAULT_MAX_ANGULAR_SPEED):
    """
    Draw a start state with the same call Pendulum-v1's ``reset`` makes.

    A generator seeded like gymnasium's (``gymnasium.utils.seeding.np_random(seed)``) gives the
    same start as ``env.reset(seed=seed)``; the bounds play the role of the ``x_init`` and
    ``y_init`` reset options.

    :return: ``(theta, theta_dot)`` as floats.
    """
    high = np.array([max_angle, max_angular_speed], dtype=float)
    theta, theta_dot = np_random.uniform(low=-high, high=high)
    return float(theta), float(theta_dot)
