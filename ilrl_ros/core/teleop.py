"""Teleoperation without ROS: a joystick's axes or key presses to the task's action vector.

The ``teleop`` node (nodes/teleop.py) is glue over this: ``JoyMapping`` turns one
sensor_msgs/Joy reading (axes and buttons) into a command, ``KeyboardTeleop`` turns key
presses into increments of each action field (as teleop_twist_keyboard does), and
``TeleopOutput`` decides what is published at each tick: the person's command while it is
live, then zero once, then nothing, so a command arbiter's or the policy's teleop source
times out and the robot is not held by a stale hand.
"""

from dataclasses import dataclass
import math
from typing import Optional, Sequence

import numpy as np

from ilrl_ros.core.spec import ActionSpec

# Joystick axes of action fields 0, 1, ... when none are given: the left stick's vertical
# (forward) and horizontal (left) axes, then the right stick's, then the triggers, as
# teleop_twist_joy pairs linear.x and angular.z on most pads.
DEFAULT_AXES = (1, 0, 4, 3, 2, 5)
# Keys of action fields 0, 1, ... when none are given: (increase, decrease) pairs. For a
# twist [linear.x, angular.z]: w / s forward and back, a / d turn left and right.
DEFAULT_KEYS = ('ws', 'ad', 'rf', 'tg', 'yh', 'uj', 'ik', 'ol')
STOP_KEYS = (' ',)
# Joy axes are normalised to [-1, 1]; a value beyond this is a broken driver, not a push.
AXIS_LIMIT = 1.0 + 1e-6
MAX_AXIS_INDEX = 63
MAX_BUTTON_INDEX = 127


class TeleopError(ValueError):
    """A teleop mapping that cannot work; the message names the parameter and the fix."""


class JoyInputError(ValueError):
    """A Joy message the mapping cannot use (too few axes, a non-finite value)."""


def _field_ranges(action: ActionSpec) -> np.ndarray:
    return np.maximum(np.abs(action.low), np.abs(action.high))


@dataclass(frozen=True)
class JoyMapping:
    """Which joystick axis drives each action field, how far, and the deadman button.

    Each field is ``deadzoned(axes[axis]) * scale``, clamped to the action's bounds; the
    deadzone rescales the rest of the stick so the command grows from 0 without a jump.
    """

    axes: tuple
    scales: tuple
    deadman_button: int
    deadzone: float
    low: np.ndarray
    high: np.ndarray

    def command(self, axes: Sequence[float], buttons: Sequence[int]) -> Optional[np.ndarray]:
        """The command for one Joy message; None while the deadman button is released.

        A message with too few axes or buttons for the mapping, or a non-finite or
        out-of-range axis value, raises ``JoyInputError`` saying which.
        """
        if self.deadman_button >= 0:
            if self.deadman_button >= len(buttons):
                raise JoyInputError(f'the Joy message has {len(buttons)} buttons; the deadman '
                                    f'is button {self.deadman_button}')
            if not buttons[self.deadman_button]:
                return None
        needed = max(self.axes) + 1
        if needed > len(axes):
            raise JoyInputError(f'the Joy message has {len(axes)} axes; the mapping reads '
                                f'axis {needed - 1}')
        values = np.array([float(axes[a]) for a in self.axes])
        if not np.all(np.isfinite(values)) or np.any(np.abs(values) > AXIS_LIMIT):
            raise JoyInputError(f'the Joy message has axis values {values.tolist()}; expected '
                                f'finite values from -1 to 1')
        magnitude = np.clip((np.abs(values) - self.deadzone) / (1.0 - self.deadzone), 0.0, 1.0)
        return np.clip(np.sign(values) * magnitude * np.asarray(self.scales),
                       self.low, self.high)


def joy_mapping(action: ActionSpec, axes: Sequence[int] = (), scales: Sequence[float] = (),
                deadman_button: int = 0, deadzone: float = 0.05) -> JoyMapping:
    """Check a joystick mapping against the task's action; ``TeleopError`` names what is wrong.

    Empty ``axes`` takes ``DEFAULT_AXES``; empty ``scales`` takes each field's largest
    bound, so a full push reaches it. ``deadman_button`` -1: no deadman.
    """
    size = len(action.fields)
    fields = ', '.join(action.fields)
    axes = tuple(axes) if len(axes) else DEFAULT_AXES[:size]
    if len(axes) != size:
        raise TeleopError(f"parameter axes has {len(axes)} entries; the task's action has "
                          f'{size} field(s) ({fields}): expected one joystick axis per field')
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)) \
                or not 0 <= a <= MAX_AXIS_INDEX:
            raise TeleopError(f'parameter axes holds {a!r}; expected axis numbers from 0 to '
                              f'{MAX_AXIS_INDEX}')
    scales = tuple(float(s) for s in scales) if len(scales) else \
        tuple(float(v) for v in _field_ranges(action))
    if len(scales) != size:
        raise TeleopError(f'parameter scales has {len(scales)} entries; expected one per '
                          f'action field ({fields}), or none for the action bounds')
    if not all(math.isfinite(s) and s != 0.0 for s in scales):
        raise TeleopError(f'parameter scales is {list(scales)}; expected finite, non-zero '
                          f'numbers (negative flips an axis)')
    if isinstance(deadman_button, bool) or not -1 <= deadman_button <= MAX_BUTTON_INDEX:
        raise TeleopError(f'parameter deadman_button is {deadman_button!r}; expected a '
                          f'button number from 0 to {MAX_BUTTON_INDEX}, or -1 for none')
    if not (math.isfinite(deadzone) and 0.0 <= deadzone < 1.0):
        raise TeleopError(f'parameter deadzone is {deadzone!r}; expected a number from 0 to '
                          f'below 1')
    return JoyMapping(axes=tuple(int(a) for a in axes), scales=scales,
                      deadman_button=int(deadman_button), deadzone=float(deadzone),
                      low=np.asarray(action.low, dtype=np.float64),
                      high=np.asarray(action.high, dtype=np.float64))


class KeyboardTeleop:
    """Key presses to a command: each field's keys step it up or down; space stops.

    A step is ``step`` times the field's largest bound; the command stays within the bounds.
    """

    def __init__(self, action: ActionSpec, step: float = 0.1, keys: Sequence[str] = ()):
        size = len(action.fields)
        keys = tuple(keys) if len(keys) else DEFAULT_KEYS[:size]
        if len(keys) != size:
            raise TeleopError(f"parameter keyboard_keys has {len(keys)} entries; the task's "
                              f'action has {size} field(s) ({", ".join(action.fields)}): '
                              f'expected one pair of keys (increase, decrease) per field')
        used = ''.join(keys) + ''.join(STOP_KEYS)
        if any(len(pair) != 2 for pair in keys) or len(set(used)) != len(used) \
                or not all(c.isprintable() for c in used):
            raise TeleopError(f'parameter keyboard_keys is {list(keys)}; expected two '
                              f'different printable keys per field, each key used once and '
                              f'none of them space (stop)')
        if not (math.isfinite(step) and 0.0 < step <= 1.0):
            raise TeleopError(f'parameter keyboard_step is {step!r}; expected a fraction of '
                              f"each field's range from above 0 to 1")
        self.fields = action.fields
        self.keys = keys
        self.low = np.asarray(action.low, dtype=np.float64)
        self.high = np.asarray(action.high, dtype=np.float64)
        self.steps = step * _field_ranges(action)
        self._moves = {}
        for i, (up, down) in enumerate(keys):
            self._moves[up] = (i, 1.0)
            self._moves[down] = (i, -1.0)
        self.command = np.zeros(size)

    def press(self, key: str) -> Optional[np.ndarray]:
        """Apply one key; return the new command, or None for a key that means nothing."""
        if key in STOP_KEYS:
            self.command = np.zeros_like(self.command)
            return self.command.copy()
        if key not in self._moves:
            return None
        field, sign = self._moves[key]
        command = self.command.copy()
        command[field] = np.clip(command[field] + sign * self.steps[field],
                                 self.low[field], self.high[field])
        # Steps up and back down return to exactly zero, not to a rounding residue.
        if abs(command[field]) < 1e-9 * max(self.steps[field], 1.0):
            command[field] = 0.0
        self.command = command
        return command.copy()

    def help(self) -> str:
        """The key map, as shown on the terminal when keyboard mode starts."""
        lines = [f'  {up} / {down}: {name} up / down by {step:g}'
                 for (up, down), name, step in zip(self.keys, self.fields, self.steps)]
        return '\n'.join(['teleop keys:', *lines, '  space: stop (zero, then silence)',
                          '  Ctrl-C: quit'])


class TeleopOutput:
    """What the node publishes at each tick, from the person's latest command.

    ``set(command, now_ns)`` records a live command; ``release()`` ends it (deadman let go,
    stop key). ``tick(now_ns)`` returns the command while it is live (no older than
    ``timeout_ns``; None: it never ages), then a zero command once when it is released or
    goes stale, then None (publish nothing) until the next command.
    """

    def __init__(self, size: int, timeout_ns: Optional[int]):
        self.size = size
        self.timeout_ns = timeout_ns
        self._command = None
        self._at_ns = 0
        self._zero_owed = False
        self.stale = 0

    def set(self, command: np.ndarray, now_ns: int) -> None:
        self._command = np.asarray(command, dtype=np.float64).copy()
        self._at_ns = now_ns

    def release(self) -> None:
        if self._command is not None:
            self._command = None
            self._zero_owed = True

    @property
    def live(self) -> bool:
        return self._command is not None

    def tick(self, now_ns: int) -> Optional[np.ndarray]:
        if self._command is not None and self.timeout_ns is not None \
                and now_ns - self._at_ns > self.timeout_ns:
            self.stale += 1
            self.release()
        if self._command is not None:
            return self._command.copy()
        if self._zero_owed:
            self._zero_owed = False
            return np.zeros(self.size)
        return None
