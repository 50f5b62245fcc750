"""Task specs: the one contract every node, simulator, dataset and checkpoint agrees on.

A spec is a YAML file naming the control rate, the sources (topics and what they carry),
the observation vector built from them, the action and its bounds, the reward terms and the
termination conditions. ``load_spec`` validates it and every error names the offending key,
the value found and what was expected.

A spec is refused when it is loaded, before anything is allocated from it, if a node or a
simulator could not run it: every number must be finite and within the limits below, every
count a whole number within its limit, every topic a valid ROS 2 name, and the document no
deeper, larger or longer than a task spec needs to be.
"""

import copy
import dataclasses
from dataclasses import dataclass
import json
import math
from pathlib import Path
import re
import reprlib
import string
import sys
from typing import Any

import numpy as np
import yaml

from ilrl_ros.core.readings import READING_TYPES

TWIST_FIELDS = ('linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z')
ODOM_COMPONENTS = ('x', 'y', 'yaw', 'cos_yaw', 'sin_yaw', 'vx', 'vy', 'wz')
JOINT_COMPONENTS = ('position', 'velocity', 'effort', 'cos', 'sin')
ACTION_TYPES = ('twist', 'float64_multi_array')
REWARD_TERMS = ('track_progress', 'living_cost', 'collision', 'pendulum_cost', 'action_cost',
                'fingertip_distance', 'joint_within', 'effort_cost')
CONDITIONS = ('lap_complete', 'collision', 'joint_near', 'fingertip_near', 'joint_outside')
# The joints a fingertip term names (a planar two-link arm and the target's two slides).
FINGERTIP_JOINTS = ('shoulder', 'elbow', 'target_x', 'target_y')
# gymnasium's MuJoCo environments a ``robot.sim: mujoco`` task may name in robot.params.env.
MUJOCO_ENVS = ('Ant-v5', 'HalfCheetah-v5', 'Hopper-v5', 'Humanoid-v5', 'HumanoidStandup-v5',
               'InvertedDoublePendulum-v5', 'InvertedPendulum-v5', 'Pusher-v5', 'Reacher-v5',
               'Swimmer-v5', 'Walker2d-v5')

# Limits of what the nodes and simulators can run. Each is inclusive.
# Control rate: a timer period from 100 us to 10 s (outside it the policy's tick divides by
# zero or its timer overflows).
CONTROL_RATE_MIN_HZ, CONTROL_RATE_MAX_HZ = 0.1, 10_000.0
# Any duration (episode timeout, max_age_s, sync_tolerance_s, hold_s): at most one day.
DURATION_MAX_S = 86_400.0
# Inputs older than max_age_s are stale; below a millisecond nothing would ever be fresh.
MAX_AGE_MIN_S = 0.001
# Magnitude of any other number: action bounds, offsets, scales, weights, term parameters.
NUMBER_MAX = 1e9
# Smallest magnitude of a scale: a smaller one erases the input as 0 would.
SCALE_MIN = 1e-9
# Longest range of a LaserScan field or simulated lidar, in metres.
RANGE_MAX_M = 1000.0
# Sectors of one LaserScan field.
BINS_MAX = 4096
# Smallest and largest side, in pixels, of an image field (a policy input, not a photo).
IMAGE_MIN_SIDE, IMAGE_MAX_SIDE = 4, 256
# How an image source's pictures travel: raw pixels or compressed (sources.<name>.format).
IMAGE_FORMATS = ('raw', 'jpeg', 'png')
COMPRESSED_IMAGE_TYPE = 'sensor_msgs/msg/CompressedImage'
# Joints of one joint_state field, and values of a float64_multi_array action.
JOINTS_MAX = 256
ACTION_MAX_SIZE = 256
# Entries of sources, observation.fields, reward and each termination list.
SOURCES_MAX = FIELDS_MAX = TERMS_MAX = 64
# Values in one observation vector: two 256 x 256 images, or anything smaller.
OBSERVATION_MAX_SIZE = 131_072
# Past commands appended to the observation (observation.action_history): enough to span a
# few hundred milliseconds of delay at a typical control rate.
ACTION_HISTORY_MAX = 16
# Rays of a simulated lidar (robot.params.scan_rays).
SCAN_RAYS_MAX = 8192
# Characters of a name (spec, source, joint, key), of a topic name, and of other text. A ROS 2
# topic name may have 247 characters once expanded; 200 leave room for a namespace.
NAME_MAX_CHARS = 256
TOPIC_MAX_CHARS = 200
TEXT_MAX_CHARS = 10_000
# A spec document. As YAML (a file), at most SPEC_MAX_BYTES: PyYAML parses in pure Python, and
# the slowest 256 KiB document (one flow list of 130 000 numbers, refused at SPEC_MAX_VALUES)
# takes about 6 s on this project's 2-core machine. As JSON (stored in checkpoints and
# datasets), at most SPEC_MAX_JSON_BYTES, which holds any spec that passes the other limits.
# Nesting: a task spec needs six levels. Values and characters of text (strings and keys) in
# all, YAML aliases counted at every use.
SPEC_MAX_BYTES = 256 * 1024
SPEC_MAX_JSON_BYTES = 8 * 1024 * 1024
SPEC_MAX_DEPTH = 32
SPEC_MAX_VALUES = 100_000
SPEC_MAX_CHARS = 1024 * 1024

# robot.params of the bundled simulators: a name, a number (low, high, unit), a count of
# whole units (low, high, unit), or one number or a list of up to `size` numbers.
ROBOT_PARAMS = {
    'track_follow': {
        'track': ('name',),
        'width': ('number', 0.05, 10.0, 'm'),
        'robot_radius': ('number', 0.0, 5.0, 'm'),
        'scan_rays': ('count', 1, SCAN_RAYS_MAX, 'rays'),
        'scan_range_max': ('number', 0.01, RANGE_MAX_M, 'm'),
        'scan_noise_std': ('number', 0.0, 10.0, 'm'),
        'actuation_noise_std': ('numbers', 0.0, 10.0, 'm/s and rad/s', 2),
        'start_max_lateral': ('number', 0.0, 5.0, 'm'),
        'start_max_heading_error': ('number', 0.0, math.pi, 'rad'),
        'camera_width': ('count', 4, 1024, 'pixels'),
        'camera_height': ('count', 4, 1024, 'pixels'),
        'camera_fov_deg': ('number', 10.0, 170.0, 'degrees'),
        'camera_noise_std': ('number', 0.0, 255.0, 'grey levels'),
        # Round posts in the corridor (track_obstacle), [{s, lateral, radius}] in metres; the
        # world checks that each stands inside the corridor (core/world/obstacles.py).
        'obstacles': ('posts', 64),
    },
    'pendulum': {
        'joint': ('name',),
        'g': ('number', 0.0, 100.0, 'm/s^2'),
    },
    # A gymnasium MuJoCo environment (core/envs/mujoco_robot.py); env is required.
    'mujoco': {
        'env': ('choice', MUJOCO_ENVS),
    },
}

# The refusal of a document nested too deep, wherever it is found.
_NESTED = (f'nested more than {SPEC_MAX_DEPTH} levels deep; expected at most {SPEC_MAX_DEPTH} '
           f'(a task spec needs six)')


class SpecError(ValueError):
    """A task spec is malformed; the message names the key and what was expected."""


class _Shown(reprlib.Repr):
    """Short reprs for error messages: long strings, lists and huge integers are cut."""

    def __init__(self):
        super().__init__()
        self.maxlevel, self.maxlist, self.maxdict, self.maxtuple = 3, 8, 6, 8
        self.maxstring, self.maxother, self.maxlong = 80, 80, 40

    def repr_int(self, value, level):
        # Python refuses to print integers of more than 4300 digits; say how large it is.
        if abs(value) >= 10 ** 30:
            return f'<a whole number of about {int(value.bit_length() * math.log10(2))} digits>'
        return repr(value)


_SHOWN = _Shown()


def _show(value: Any) -> str:
    """A short, always printable repr of ``value`` for an error message."""
    return _SHOWN.repr(value)


def _shorten(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit] + ' ...'


def _as_float(value: Any):
    """``value`` as a float if it is a real number (not a bool), else None.

    Integers beyond the float range become infinities, which every range check refuses.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _unit(unit: str) -> str:
    return f' {unit}' if unit else ''


def _number_range(low: float, high: float, unit: str = '', positive: bool = False) -> str:
    if positive and low <= 0.0:
        return f'a number > 0 and at most {high:g}{_unit(unit)}'
    span = f'from {low:g} to {high:g}{_unit(unit)}'
    return f'a number > 0 ({span})' if positive else f'a number {span}'


def _check_number(value: Any, where: str, low: float, high: float, unit: str = '',
                  positive: bool = False) -> float:
    """Return ``value`` as a finite float within [low, high] (and > 0), else raise."""
    number = _as_float(value)
    wanted = _number_range(low, high, unit, positive)
    if number is None:
        raise SpecError(f'{where}: expected {wanted}, got {_show(value)}')
    if isinstance(value, float) and not math.isfinite(number):
        raise SpecError(f'{where}: expected a finite number ({wanted}), got {_show(value)}')
    if (positive and number <= 0.0) or not low <= number <= high:
        raise SpecError(f'{where}: expected {wanted}, got {_show(value)}')
    return number


def _check_count(value: Any, where: str, low: int, high: int, unit: str = '',
                 what: str = '') -> int:
    """Return ``value`` if it is a whole number (not a bool, not a float) in [low, high]."""
    wanted = f'a whole number from {low} to {high}{_unit(unit)}'
    if isinstance(value, bool) or not isinstance(value, int):
        raise SpecError(f'{where}: expected {wanted}, got {_show(value)}')
    if not low <= value <= high:
        raise SpecError(f'{where}: expected {what or wanted}, got {_show(value)}')
    return value


_TOPIC_CHARACTERS = frozenset(string.ascii_letters + string.digits + '_/')


def topic_name_error(name: str) -> str:
    """Say why ``name`` is not a ROS 2 topic name a task spec may use ('' when it is fine).

    The rules of ROS 2 (rcl's topic name validation, and of the expanded name): not empty;
    only ASCII letters, digits, underscores and forward slashes, after an optional leading
    ``~/`` of a private name; no ``//``; no trailing ``/``; no token (the text between
    slashes) starting with a digit. Stricter than ROS 2 in three ways: substitutions such as
    ``{node}`` and a bare ``~`` or ``~name`` are refused, since they expand to a different topic
    in each node that reads the spec, and the name has at most ``TOPIC_MAX_CHARS`` characters.
    """
    if not isinstance(name, str) or not name:
        return 'a topic name must not be empty'
    if len(name) > TOPIC_MAX_CHARS:
        return (f'it has {len(name)} characters; a topic name here has at most '
                f'{TOPIC_MAX_CHARS}, leaving room for the namespace it is expanded into')
    if '{' in name or '}' in name:
        return ('substitutions such as {node} are not allowed: they expand to a different '
                'topic in each node that reads the spec')
    body = name[2:] if name.startswith('~/') else name
    if '~' in body:
        return "a tilde is allowed only as the leading '~/' of a private name"
    bad = next((c for c in body if c not in _TOPIC_CHARACTERS), None)
    if bad is not None:
        return (f'{bad!r} is not allowed; a topic name holds only letters, digits, '
                f"underscores and '/'")
    if name.endswith('/'):
        return "a topic name must not end with '/'"
    if '//' in name:
        return "a topic name must not contain '//'"
    token = next((t for t in body.split('/') if t[:1].isdigit()), None)
    if token is not None:
        return (f'its part {token!r} starts with a digit; each part between slashes must '
                f'start with a letter or an underscore')
    return ''


def _where(path: tuple) -> str:
    """A key path as a spec's error messages write it: ``observation.fields[0].bins``."""
    text = ''
    for key in path:
        text += f'[{key}]' if isinstance(key, int) else (f'.{key}' if text else str(key))
    return _shorten(text or 'the spec', 120)


def _check_document(data: Any) -> None:
    """Refuse a document too deep, too large, or holding values JSON cannot hold.

    Walks the structure with an explicit stack, never recursing, and counts every value
    before it is pushed: a recursive structure, a 5000-deep nesting or a YAML alias bomb is
    refused in bounded time and memory.
    """
    stack = [(data, (), 1)]
    count = chars = 0
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            if len(value) > TEXT_MAX_CHARS:
                raise SpecError(f'{_where(path)}: a text of {len(value)} characters; '
                                f'expected at most {TEXT_MAX_CHARS}')
            chars += len(value)
            if chars > SPEC_MAX_CHARS:
                raise SpecError(f'the spec holds more than {SPEC_MAX_CHARS} characters of text '
                                f'(YAML aliases counted at every use); a task spec needs far '
                                f'fewer')
            continue
        if value is None or isinstance(value, (bool, int, float)):
            continue
        if isinstance(value, dict):
            children = value.items()
        elif isinstance(value, (list, tuple)):
            children = enumerate(value)
        else:
            raise SpecError(f'{_where(path)}: {_show(value)} is a {type(value).__name__}; '
                            f'a task spec holds only mappings, lists, strings, numbers, '
                            f'true/false and null')
        if depth > SPEC_MAX_DEPTH:
            raise SpecError(f'{_where(path)}: {_NESTED}')
        count += len(value)
        if count > SPEC_MAX_VALUES:
            raise SpecError(f'the spec holds more than {SPEC_MAX_VALUES} values (YAML aliases '
                            f'counted at every use); a task spec needs far fewer')
        for key, child in children:
            if isinstance(value, dict) and not isinstance(key, str):
                raise SpecError(f'{_where(path)}: the key {_show(key)} is a '
                                f'{type(key).__name__}; keys must be text (quote it in YAML)')
            if isinstance(value, dict) and len(key) > NAME_MAX_CHARS:
                raise SpecError(f'{_where(path)}: a key of {len(key)} characters; expected at '
                                f'most {NAME_MAX_CHARS}')
            if isinstance(value, dict):
                chars += len(key)
            stack.append((child, path + (key,), depth + 1))


class _Section:
    """Reads one mapping of a spec, remembering its key path for error messages."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            raise SpecError(f'{path or "the spec"}: expected a mapping, got '
                            f'{type(data).__name__} {_show(data)}')
        self.data = data
        self.path = path
        self._used: set[str] = set()

    def _key(self, key: str) -> str:
        return f'{self.path}.{key}' if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def raw(self, key: str, default: Any = ...) -> Any:
        self._used.add(key)
        if key not in self.data:
            if default is ...:
                raise SpecError(f'{self._key(key)}: missing; this key is required')
            return default
        return self.data[key]

    def section(self, key: str, default: Any = ...) -> '_Section':
        return _Section(self.raw(key, default), self._key(key))

    def str(self, key: str, default: Any = ..., choices: tuple = (),
            limit: int = NAME_MAX_CHARS) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise SpecError(f'{self._key(key)}: expected a non-empty string of at most '
                            f'{limit} characters, got {_show(value)}')
        if choices and value not in choices:
            raise SpecError(f'{self._key(key)}: {_show(value)} is not one of '
                            f'{", ".join(choices)}')
        return value

    def topic(self, key: str) -> str:
        """Read a topic name, refused unless ROS 2 accepts it (see ``topic_name_error``)."""
        value = self.raw(key)
        if not isinstance(value, str):
            raise SpecError(f'{self._key(key)}: expected a ROS 2 topic name, got '
                            f'{_show(value)}')
        problem = topic_name_error(value)
        if problem:
            raise SpecError(f'{self._key(key)}: {_show(value)} is not a valid ROS 2 topic '
                            f'name: {problem}')
        return value

    def bool(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise SpecError(f'{self._key(key)}: expected true or false, got {_show(value)}')
        return value

    def float(self, key: str, default: Any = ..., low: float = -NUMBER_MAX,
              high: float = NUMBER_MAX, unit: str = '', positive: bool = False) -> float:
        return _check_number(self.raw(key, default), self._key(key), low, high, unit, positive)

    def int(self, key: str, low: int, high: int, unit: str = '', what: str = '') -> int:
        return _check_count(self.raw(key), self._key(key), low, high, unit, what)

    def str_list(self, key: str, default: Any = ..., choices: tuple = (),
                 limit: int = JOINTS_MAX) -> tuple:
        value = self.raw(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) and v and len(v) <= NAME_MAX_CHARS for v in value):
            raise SpecError(f'{self._key(key)}: expected a non-empty list of strings (each '
                            f'at most {NAME_MAX_CHARS} characters), got {_show(value)}')
        if len(value) > limit:
            raise SpecError(f'{self._key(key)}: {len(value)} entries; expected 1 to {limit}')
        for v in value:
            if choices and v not in choices:
                raise SpecError(f'{self._key(key)}: {_show(v)} is not one of '
                                f'{", ".join(choices)}')
        seen = set()
        for v in value:
            if v in seen:
                raise SpecError(f'{self._key(key)}: entries must be unique; {_show(v)} is '
                                f'listed {value.count(v)} times')
            seen.add(v)
        return tuple(value)

    def floats(self, key: str, size: int, default: Any = ..., low: float = -NUMBER_MAX,
               high: float = NUMBER_MAX) -> np.ndarray:
        """Read a number or a list of `size` numbers as a float vector of that size.

        ``size`` is checked against its limit by the caller: this allocates it.
        """
        value = self.raw(key, default)
        values = value if isinstance(value, list) else [value]
        if not values or any(_as_float(v) is None for v in values):
            raise SpecError(f'{self._key(key)}: expected a number or a list of numbers, '
                            f'got {_show(value)}')
        if len(values) not in (1, size):
            raise SpecError(f'{self._key(key)}: expected 1 or {size} numbers, '
                            f'got {len(values)}')
        numbers = [_as_float(v) for v in values]
        if not all(math.isfinite(v) or not isinstance(raw, float)
                   for v, raw in zip(numbers, values)):
            raise SpecError(f'{self._key(key)}: expected finite numbers, got {_show(value)}')
        bad = next((raw for v, raw in zip(numbers, values) if not low <= v <= high), None)
        if bad is not None:
            raise SpecError(f'{self._key(key)}: expected numbers from {low:g} to {high:g}, '
                            f'got {_show(bad)}')
        if len(numbers) == 1:
            return np.full(size, numbers[0])
        return np.asarray(numbers, dtype=np.float64)

    def items(self, key: str, default: Any = ..., limit: int = TERMS_MAX) -> list:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise SpecError(f'{self._key(key)}: expected a list, got {_show(value)}')
        if len(value) > limit:
            raise SpecError(f'{self._key(key)}: {len(value)} entries; expected at most {limit}')
        return [_Section(item, f'{self._key(key)}[{i}]') for i, item in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently fall back to a default."""
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            raise SpecError(_shorten(f'{self.path or "spec"}: unknown key(s) '
                                     f'{", ".join(unknown)}; expected only '
                                     f'{", ".join(sorted(self._used))}', 600))


@dataclass(frozen=True)
class Source:
    """One topic the task reads, and the kind of reading it carries."""

    name: str
    topic: str
    kind: str
    format: str = 'raw'
    """For an image source: ``raw`` (sensor_msgs/Image), or ``jpeg`` / ``png``
    (sensor_msgs/CompressedImage, decoded to the same pixels; either format is read, this one
    is what the mock robot publishes)."""

    @property
    def message_type(self) -> str:
        if self.format != 'raw':
            return COMPRESSED_IMAGE_TYPE
        return READING_TYPES[self.kind][1]


@dataclass(frozen=True)
class ObservationField:
    """One slice of the observation vector, extracted from one source.

    For a laser_scan source: ``bins`` values, each the closest return in an equal sector of
    the full circle (sector 0 starts behind the robot, at -pi, and they go counter-clockwise),
    clipped to ``max_range``. For odometry: ``components``. For joint_state: for each of
    ``joints`` in order, each of ``components``. For image: the picture in grey levels 0-255
    (mono16 divided by 257), area-resized to ``height`` x ``width`` pixels and flattened row
    by row. Every value is then ``(raw - offset) * scale``.
    """

    source: str
    kind: str
    size: int
    scale: np.ndarray
    offset: np.ndarray
    bins: int = 0
    max_range: float = 0.0
    components: tuple = ()
    joints: tuple = ()
    width: int = 0
    height: int = 0

    def labels(self) -> list:
        if self.kind == 'laser_scan':
            return [f'{self.source}.bin{i}' for i in range(self.bins)]
        if self.kind == 'image':
            return [f'{self.source}.px{row}_{col}' for row in range(self.height)
                    for col in range(self.width)]
        if self.kind == 'odometry':
            return [f'{self.source}.{c}' for c in self.components]
        return [f'{self.source}.{j}.{c}' for j in self.joints for c in self.components]


def action_history_labels(action_history: int, action_fields: tuple) -> list:
    """Labels of the past commands appended to the observation, oldest first.

    ``action_history.t-2.linear.x`` is the ``linear.x`` of the command sent two steps before
    the current one; ``t-1`` is the last command sent.
    """
    return [f'action_history.t-{back}.{name}' for back in range(action_history, 0, -1)
            for name in action_fields]


@dataclass(frozen=True)
class ObservationSpec:
    """The policy's input: the fields in order, then the last ``action_history`` commands.

    ``size`` and ``labels()`` describe the whole policy input (what a checkpoint's network
    takes); ``fields_size`` and ``field_labels()`` the part built from the sensors, which
    ``extract_observation`` returns. Each past command is the full action vector in the
    action's field order, in robot units, the oldest first (zeros at an episode's start).
    """

    fields: tuple
    max_age_s: float
    sync_tolerance_s: float
    action_history: int = 0
    action_fields: tuple = ()

    @property
    def fields_size(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def history_size(self) -> int:
        return self.action_history * len(self.action_fields)

    @property
    def size(self) -> int:
        return self.fields_size + self.history_size

    @property
    def sources(self) -> tuple:
        return tuple(dict.fromkeys(f.source for f in self.fields))

    def field_labels(self) -> list:
        return [label for f in self.fields for label in f.labels()]

    def labels(self) -> list:
        return self.field_labels() + action_history_labels(self.action_history,
                                                           self.action_fields)

    def image_layout(self) -> tuple:
        """Where the images lie in the vector: ``(start, height, width)`` per image field.

        Each image occupies ``height * width`` consecutive entries from ``start``, row by row.
        Empty when the observation has no image.
        """
        layout, start = [], 0
        for f in self.fields:
            if f.kind == 'image':
                layout.append((start, f.height, f.width))
            start += f.size
        return tuple(layout)


@dataclass(frozen=True)
class ActionSpec:
    """The command: message type, topic, which fields carry the action vector, bounds."""

    type: str
    topic: str
    fields: tuple
    low: np.ndarray
    high: np.ndarray
    stamped: bool = False
    max_delta: Any = None
    """The largest change of each action value from one control tick to the next (a float
    vector, one per field), or None: no rate limit. Applied by ``limit_change``."""

    @property
    def size(self) -> int:
        return len(self.fields)

    @property
    def message_type(self) -> str:
        if self.type == 'twist':
            return 'geometry_msgs/msg/TwistStamped' if self.stamped else \
                'geometry_msgs/msg/Twist'
        return 'std_msgs/msg/Float64MultiArray'

    def check(self, action: Any, what: str = 'action') -> np.ndarray:
        """Return ``action`` as a float vector, or raise if it is the wrong size or not finite."""
        array = np.asarray(action, dtype=np.float64).reshape(-1)
        if array.size != self.size:
            raise ValueError(f'{what} has {array.size} values; the task expects {self.size} '
                             f'({", ".join(self.fields)})')
        if not np.all(np.isfinite(array)):
            raise ValueError(f'{what} is not finite: {array.tolist()}')
        return array

    def clip(self, action: Any) -> np.ndarray:
        """Check ``action`` and clamp it to the spec's bounds."""
        return np.clip(self.check(action), self.low, self.high)

    def limit_change(self, previous: Any, action: Any) -> np.ndarray:
        """``action`` moved at most ``max_delta`` per value away from ``previous``.

        The command one control tick after ``previous`` (the last command sent): each value
        changes by at most its ``max_delta``, and a value within its limit passes unchanged.
        ``previous`` None (the first command of an episode) or no ``max_delta``: ``action``
        as it is. Both are checked (size, finite); an action within the bounds after a
        previous within the bounds stays within them.
        """
        command = self.check(action)
        if previous is None or self.max_delta is None:
            return command
        before = self.check(previous, 'the previous action')
        change = command - before
        return np.where(np.abs(change) <= self.max_delta, command,
                        before + np.sign(change) * self.max_delta)


@dataclass(frozen=True)
class Term:
    """A reward term or a termination condition: its kind, source and parameters."""

    kind: str
    source: str = ''
    weight: float = 1.0
    params: tuple = ()

    def param(self, key: str, default: Any = None) -> Any:
        return dict(self.params).get(key, default)


@dataclass(frozen=True)
class TerminationSpec:
    """When an episode ends, and how it is scored."""

    timeout_s: float
    success: tuple
    failure: tuple
    success_at_timeout: tuple


@dataclass(frozen=True)
class JointLimit:
    """Where one joint may be: a position range and/or a largest absolute velocity."""

    source: str
    joint: str
    position: tuple = None
    """(low, high) in the joint's units (rad or m), or None: any position."""
    max_velocity: float = None
    """Largest absolute velocity (rad/s or m/s), or None: any velocity."""


@dataclass(frozen=True)
class WorkspaceLimit:
    """Where the robot may be by one odometry source: an x/y box and/or a track corridor."""

    source: str
    x: tuple = None
    """(low, high) in metres, or None."""
    y: tuple = None
    max_lateral: float = None
    """Largest distance from the track's centerline in metres (track tasks), or None."""


@dataclass(frozen=True)
class SafetySpec:
    """The safe set: leaving it ends an episode as ``unsafe`` and the robot is stopped."""

    joints: tuple = ()
    workspace: tuple = ()

    @property
    def sources(self) -> tuple:
        return tuple(dict.fromkeys(limit.source for limit in self.joints + self.workspace))


@dataclass(frozen=True)
class JointTarget:
    """A joint's part of a start state: near a position and/or slower than a velocity."""

    source: str
    joint: str
    position: float = None
    tolerance: float = 0.0
    wrap: bool = False
    """Compare positions modulo a full turn (a continuous joint, such as the pendulum's)."""
    max_velocity: float = None


@dataclass(frozen=True)
class PoseTarget:
    """The robot's part of a start state by one odometry source; every part given must hold.

    Near a point (``x``, ``y`` within ``tolerance`` m), facing ``yaw`` (within
    ``yaw_tolerance`` rad), on the track (within ``max_lateral`` m of the centerline and
    ``max_heading_error`` rad of its direction), slower than ``max_speed`` m/s and
    ``max_turn_rate`` rad/s.
    """

    source: str
    x: float = None
    y: float = None
    tolerance: float = 0.0
    yaw: float = None
    yaw_tolerance: float = 0.0
    max_lateral: float = None
    max_heading_error: float = None
    max_speed: float = None
    max_turn_rate: float = None


@dataclass(frozen=True)
class ResetSpec:
    """What a start state is: every target holds, for ``hold_s`` seconds on end."""

    hold_s: float = 0.0
    joints: tuple = ()
    poses: tuple = ()

    @property
    def sources(self) -> tuple:
        return tuple(dict.fromkeys(target.source for target in self.joints + self.poses))


@dataclass(frozen=True)
class TaskSpec:
    """A validated task spec. ``raw`` keeps the YAML mapping, stored in checkpoints."""

    name: str
    control_rate_hz: float
    sim: str
    sim_params: dict
    sources: dict
    observation: ObservationSpec
    action: ActionSpec
    reward: tuple
    termination: TerminationSpec
    raw: dict
    safety: SafetySpec = None
    """The safe set (``safety:``), or None: no limits beyond the task's own conditions."""
    reset: ResetSpec = None
    """What a start state is (``reset:``), for reset controllers; or None."""

    @property
    def dt(self) -> float:
        return 1.0 / self.control_rate_hz

    def source_for_topic(self, topic: str) -> Source:
        for source in self.sources.values():
            if source.topic == topic:
                return source
        raise KeyError(topic)

    def contract(self) -> dict:
        """The part of the spec a policy depends on: what it sees and what it commands."""
        used = self.observation.sources
        return {
            'control_rate_hz': self.raw['control_rate_hz'],
            # How an image travels (raw or compressed) is no part of it: the same pixels
            # arrive either way, up to JPEG's loss.
            'sources': {k: {f: x for f, x in v.items() if f != 'format'}
                        for k, v in self.raw['sources'].items() if k in used},
            'observation': self._observation_contract(),
            # The rate limit acts on the command after the policy has chosen it: a policy runs
            # with or without one, so it is no part of the contract.
            'action': {k: v for k, v in self.raw['action'].items() if k != 'max_delta'},
        }

    def _observation_contract(self) -> dict:
        contract = {'fields': self.raw['observation']['fields']}
        if self.observation.action_history:
            # Absent when 0, so a spec without history matches checkpoints from before it.
            contract['action_history'] = self.observation.action_history
        return contract

    def to_json(self) -> str:
        return json.dumps(self.raw, sort_keys=True)


def contract_mismatch(expected: dict, got: dict, path: str = '') -> str:
    """Return where two spec contracts first differ (empty string when they agree)."""
    if isinstance(expected, dict) and isinstance(got, dict):
        for key in sorted(set(expected) | set(got)):
            where = f'{path}.{key}' if path else key
            if key not in expected:
                return f'{where} is present in one spec and missing in the other'
            if key not in got:
                return f'{where} is missing in one spec and present in the other'
            found = contract_mismatch(expected[key], got[key], where)
            if found:
                return found
        return ''
    if isinstance(expected, (list, tuple)) and isinstance(got, (list, tuple)):
        if len(expected) != len(got):
            return f'{path} has {len(got)} entries, expected {len(expected)}'
        for i, (a, b) in enumerate(zip(expected, got)):
            found = contract_mismatch(a, b, f'{path}[{i}]')
            if found:
                return found
        return ''
    if isinstance(expected, (int, float)) and isinstance(got, (int, float)) \
            and not isinstance(expected, bool) and not isinstance(got, bool):
        return '' if math.isclose(expected, got, rel_tol=1e-9, abs_tol=1e-12) else \
            f'{path} is {got!r}, expected {expected!r}'
    return '' if expected == got else f'{path} is {got!r}, expected {expected!r}'


def _parse_field(item: _Section, sources: dict, room: int) -> ObservationField:
    """Read one observation field; ``room`` is how many values the observation may still take.

    Every size is checked before the field's scale and offset vectors are allocated.
    """
    name = item.str('source')
    if name not in sources:
        raise SpecError(_shorten(f'{item.path}.source: {_show(name)} is not a declared source; '
                                 f'declared: {", ".join(sources)}'))
    kind = sources[name].kind
    bins, max_range, components, joints, width, height = 0, 0.0, (), (), 0, 0
    if kind == 'image':
        side = (f'{IMAGE_MIN_SIDE} to {IMAGE_MAX_SIDE} pixels (the camera image is resized to '
                f'it for the policy)')
        width = item.int('width', IMAGE_MIN_SIDE, IMAGE_MAX_SIDE, 'pixels', side)
        height = item.int('height', IMAGE_MIN_SIDE, IMAGE_MAX_SIDE, 'pixels', side)
        size = width * height
    elif kind == 'laser_scan':
        bins = item.int('bins', 1, BINS_MAX, 'sectors')
        max_range = item.float('max_range', low=0.0, high=RANGE_MAX_M, unit='m', positive=True)
        size = bins
    elif kind == 'odometry':
        components = item.str_list('components', choices=ODOM_COMPONENTS)
        size = len(components)
    else:
        joints = item.str_list('joints', limit=JOINTS_MAX)
        components = item.str_list('components', choices=JOINT_COMPONENTS)
        size = len(joints) * len(components)
    if size > room:
        raise SpecError(f'{item.path}: adds {size} values to the observation, which has room '
                        f'for {room} more; expected at most {OBSERVATION_MAX_SIZE} values in '
                        f'all')
    scale = item.floats('scale', size, 1.0)
    offset = item.floats('offset', size, 0.0)
    if np.any(np.abs(scale) < SCALE_MIN):
        raise SpecError(f'{item.path}.scale: a scale of 0 (or of magnitude below '
                        f'{SCALE_MIN:g}) would erase the input; expected magnitudes from '
                        f'{SCALE_MIN:g} to {NUMBER_MAX:g}')
    item.finish()
    return ObservationField(source=name, kind=kind, size=size, scale=scale, offset=offset,
                            bins=bins, max_range=max_range, components=components,
                            joints=joints, width=width, height=height)


def _parse_term(item: _Section, key: str, choices: tuple, sources: dict,
                weighted: bool) -> Term:
    kind = item.str(key, choices=choices)
    source = ''
    if item.has('source'):
        source = item.str('source')
        if source not in sources:
            raise SpecError(_shorten(f'{item.path}.source: {_show(source)} is not a declared '
                                     f'source; declared: {", ".join(sources)}'))
    weight = item.float('weight', 1.0) if weighted else 1.0
    params = {}
    for name in item.data:
        if name in ('joint',) + FINGERTIP_JOINTS:
            params[name] = item.str(name)
        elif name == 'hold_s':
            params[name] = item.float(name, low=0.0, high=DURATION_MAX_S, unit='s')
        elif name not in (key, 'source', 'weight'):
            params[name] = item.float(name)
    item.finish()
    needs_source = {'track_progress': 'odometry', 'collision': 'laser_scan',
                    'pendulum_cost': 'joint_state', 'lap_complete': 'odometry',
                    'joint_near': 'joint_state', 'fingertip_distance': 'joint_state',
                    'fingertip_near': 'joint_state', 'joint_within': 'joint_state',
                    'joint_outside': 'joint_state', 'effort_cost': 'joint_state'}
    wanted = needs_source.get(kind)
    if wanted:
        if not source:
            raise SpecError(f'{item.path}: {kind} needs a source of kind {wanted}')
        if sources[source].kind != wanted:
            raise SpecError(f'{item.path}.source: {kind} needs a {wanted} source, '
                            f'{source!r} is {sources[source].kind}')
    fingertip = FINGERTIP_JOINTS + ('link0', 'link1')
    required = {'collision': ('threshold',), 'joint_near': ('joint', 'tolerance'),
                'fingertip_distance': fingertip, 'fingertip_near': fingertip + ('tolerance',),
                'joint_within': ('joint', 'low', 'high'),
                'joint_outside': ('joint', 'low', 'high'), 'effort_cost': ('joint',),
                'pendulum_cost': ('joint',)}
    for name in required.get(kind, ()):
        if name not in params:
            raise SpecError(f'{item.path}.{name}: missing; {kind} requires it')
    if kind in ('joint_within', 'joint_outside') and params['low'] > params['high']:
        raise SpecError(f'{item.path}: low ({params["low"]:g}) exceeds high '
                        f'({params["high"]:g}); expected low <= high')
    return Term(kind=kind, source=source, weight=weight, params=tuple(sorted(params.items())))


def _parse_max_delta(act: _Section, size: int):
    """``action.max_delta``: one positive number, or one per action field; None if absent."""
    if not act.has('max_delta'):
        return None
    values = act.floats('max_delta', size, low=0.0, high=NUMBER_MAX)
    if np.any(values <= 0.0):
        raise SpecError(f'{act._key("max_delta")}: expected numbers > 0 (the largest change of '
                        f'each action value from one control tick to the next), got '
                        f'{_show(act.data["max_delta"])}')
    return values


def _limit_source(item: _Section, sources: dict, kind: str, what: str) -> str:
    """The ``source`` of a safety or reset entry: declared, and of the kind it needs."""
    name = item.str('source')
    if name not in sources:
        raise SpecError(_shorten(f'{item.path}.source: {_show(name)} is not a declared source; '
                                 f'declared: {", ".join(sources)}'))
    if sources[name].kind != kind:
        raise SpecError(f'{item.path}.source: {what} needs a source of kind {kind}, '
                        f'{name!r} is {sources[name].kind}')
    return name


def _interval(item: _Section, key: str, unit: str):
    """``[low, high]`` of finite numbers within +/-NUMBER_MAX, low <= high; None if absent."""
    if not item.has(key):
        return None
    value = item.raw(key)
    where = item._key(key)
    if not isinstance(value, list) or len(value) != 2:
        raise SpecError(f'{where}: expected [low, high], two numbers from {-NUMBER_MAX:g} to '
                        f'{NUMBER_MAX:g}{_unit(unit)}, got {_show(value)}')
    low, high = (_check_number(v, f'{where}[{i}]', -NUMBER_MAX, NUMBER_MAX, unit)
                 for i, v in enumerate(value))
    if low > high:
        raise SpecError(f'{where}: expected [low, high] with low <= high, got {_show(value)}')
    return (low, high)


def _optional(item: _Section, key: str, high: float, unit: str):
    """An optional number > 0 and at most ``high``; None if absent."""
    return item.float(key, low=0.0, high=high, unit=unit, positive=True) \
        if item.has(key) else None


def _together(item: _Section, keys: tuple) -> bool:
    """Whether all of ``keys`` are given; refuse some without the others."""
    given = [key for key in keys if item.has(key)]
    if given and len(given) != len(keys):
        missing = [key for key in keys if key not in given]
        raise SpecError(f'{item.path}: {", ".join(given)} given without '
                        f'{", ".join(missing)}; expected {", ".join(keys)} together')
    return bool(given)


def _need_one(item: _Section, parts: tuple, what: str) -> None:
    if all(part is None for part in parts):
        raise SpecError(f'{item.path}: {what}')


def _parse_joint_limit(item: _Section, sources: dict) -> JointLimit:
    source = _limit_source(item, sources, 'joint_state', 'a joint limit')
    limit = JointLimit(source=source, joint=item.str('joint'),
                       position=_interval(item, 'position', ''),
                       max_velocity=_optional(item, 'max_velocity', NUMBER_MAX, ''))
    item.finish()
    _need_one(item, (limit.position, limit.max_velocity),
              'a joint limit needs position: [low, high], max_velocity, or both')
    return limit


def _parse_workspace_limit(item: _Section, sources: dict) -> WorkspaceLimit:
    source = _limit_source(item, sources, 'odometry', 'a workspace limit')
    limit = WorkspaceLimit(source=source, x=_interval(item, 'x', 'm'),
                           y=_interval(item, 'y', 'm'),
                           max_lateral=_optional(item, 'max_lateral', RANGE_MAX_M, 'm'))
    item.finish()
    _need_one(item, (limit.x, limit.y, limit.max_lateral),
              'a workspace limit needs x: [low, high], y: [low, high], max_lateral (the '
              'largest distance from the track centerline), or several of them')
    return limit


def _parse_safety(top: _Section, sources: dict):
    """The optional ``safety`` block: joint limits and workspace limits."""
    if not top.has('safety'):
        return None
    section = top.section('safety')
    safety = SafetySpec(
        joints=tuple(_parse_joint_limit(i, sources) for i in section.items('joints', [])),
        workspace=tuple(_parse_workspace_limit(i, sources)
                        for i in section.items('workspace', [])))
    section.finish()
    if not safety.joints and not safety.workspace:
        raise SpecError('safety: expected joints, workspace or both, each a list of limits')
    return safety


def _parse_joint_target(item: _Section, sources: dict) -> JointTarget:
    source = _limit_source(item, sources, 'joint_state', 'a joint target')
    joint = item.str('joint')
    near = _together(item, ('position', 'tolerance'))
    target = JointTarget(
        source=source, joint=joint,
        position=item.float('position') if near else None,
        tolerance=_optional(item, 'tolerance', NUMBER_MAX, '') if near else 0.0,
        wrap=item.bool('wrap', False),
        max_velocity=_optional(item, 'max_velocity', NUMBER_MAX, ''))
    item.finish()
    _need_one(item, (target.position, target.max_velocity),
              'a joint target needs position with tolerance, max_velocity, or both')
    return target


def _parse_pose_target(item: _Section, sources: dict) -> PoseTarget:
    source = _limit_source(item, sources, 'odometry', 'a pose target')
    near = _together(item, ('x', 'y', 'tolerance'))
    facing = _together(item, ('yaw', 'yaw_tolerance'))
    target = PoseTarget(
        source=source,
        x=item.float('x', unit='m') if near else None,
        y=item.float('y', unit='m') if near else None,
        tolerance=_optional(item, 'tolerance', RANGE_MAX_M, 'm') if near else 0.0,
        yaw=item.float('yaw', low=-2.0 * math.pi, high=2.0 * math.pi, unit='rad')
        if facing else None,
        yaw_tolerance=_optional(item, 'yaw_tolerance', math.pi, 'rad') if facing else 0.0,
        max_lateral=_optional(item, 'max_lateral', RANGE_MAX_M, 'm'),
        max_heading_error=_optional(item, 'max_heading_error', math.pi, 'rad'),
        max_speed=_optional(item, 'max_speed', NUMBER_MAX, 'm/s'),
        max_turn_rate=_optional(item, 'max_turn_rate', NUMBER_MAX, 'rad/s'))
    item.finish()
    _need_one(item, (target.x, target.yaw, target.max_lateral, target.max_heading_error,
                     target.max_speed, target.max_turn_rate),
              'a pose target needs x, y and tolerance; yaw and yaw_tolerance; max_lateral; '
              'max_heading_error; max_speed; max_turn_rate; or several of them')
    return target


def _parse_reset(top: _Section, sources: dict):
    """The optional ``reset`` block: what a start state is, for reset controllers."""
    if not top.has('reset'):
        return None
    section = top.section('reset')
    reset = ResetSpec(
        hold_s=section.float('hold_s', 0.0, low=0.0, high=DURATION_MAX_S, unit='s'),
        joints=tuple(_parse_joint_target(i, sources) for i in section.items('joints', [])),
        poses=tuple(_parse_pose_target(i, sources) for i in section.items('poses', [])))
    section.finish()
    if not reset.joints and not reset.poses:
        raise SpecError('reset: expected joints, poses or both, each a list of targets')
    return reset


# What a simulator this package does not ship may take in robot.params: a scalar, or a short
# flat list of scalars.
_ANY_PARAM = (f'a number from {-NUMBER_MAX:g} to {NUMBER_MAX:g}, a string, true/false, null, '
              f'or a list of up to 64 of those')


def _check_any_param(value: Any, where: str) -> None:
    values = value if isinstance(value, list) and len(value) <= 64 else [value]
    for v in values:
        number = _as_float(v)
        if number is not None and not -NUMBER_MAX <= number <= NUMBER_MAX:
            raise SpecError(f'{where}: expected {_ANY_PARAM}, got {_show(value)}')
        if number is None and not (v is None or isinstance(v, (bool, str))):
            raise SpecError(f'{where}: expected {_ANY_PARAM}, got {_show(value)}')


def _check_posts(value: Any, where: str, most: int) -> None:
    """Check a list of round posts, each {s, lateral (optional), radius} in metres."""
    wanted = f'a list of at most {most} posts, each {{s, lateral, radius}} in metres'
    if not isinstance(value, list) or len(value) > most:
        raise SpecError(f'{where}: expected {wanted}, got {_show(value)}')
    for i, post in enumerate(value):
        if not isinstance(post, dict) or not {'s', 'radius'} <= set(post) \
                or not set(post) <= {'s', 'lateral', 'radius'}:
            raise SpecError(f'{where}[{i}]: expected a mapping with s, radius and optionally '
                            f'lateral (metres), got {_show(post)}')
        _check_number(post['s'], f'{where}[{i}].s', -NUMBER_MAX, NUMBER_MAX, 'm')
        _check_number(post.get('lateral', 0.0), f'{where}[{i}].lateral', -5.0, 5.0, 'm')
        _check_number(post['radius'], f'{where}[{i}].radius', 0.0, 5.0, 'm', positive=True)


def _parse_robot_params(sim: str, params: _Section) -> dict:
    """Check ``robot.params`` against the limits of the simulator that reads them."""
    table = ROBOT_PARAMS.get(sim)
    if table is None:
        for key in params.data:
            _check_any_param(params.raw(key), params._key(key))
        return dict(params.data)
    if sim == 'mujoco' and not params.has('env'):
        raise SpecError(f'{params._key("env")}: missing; a mujoco robot names its gymnasium '
                        f'MuJoCo environment, one of {", ".join(MUJOCO_ENVS)}')
    for key, (kind, *limits) in table.items():
        if not params.has(key):
            params.raw(key, None)  # absent: the simulator's default; listed as known
            continue
        where = params._key(key)
        if kind == 'name':
            params.str(key)
        elif kind == 'choice':
            params.str(key, choices=limits[0])
        elif kind == 'number':
            params.float(key, low=limits[0], high=limits[1], unit=limits[2])
        elif kind == 'count':
            params.int(key, *limits)
        elif kind == 'posts':
            _check_posts(params.raw(key), where, limits[0])
        else:
            low, high, unit, size = limits
            value = params.raw(key)
            values = value if isinstance(value, list) else [value]
            if not 1 <= len(values) <= size:
                raise SpecError(f'{where}: expected one number or a list of 1 to {size}, '
                                f'got {_show(value)}')
            for v in values:
                _check_number(v, where, low, high, unit)
    if 'start_max_lateral' in table and params.has('start_max_lateral'):
        # Starts must lie inside the corridor (1 m wide unless robot.params.width says).
        half = 0.5 * float(params.data.get('width', 1.0))
        if float(params.data['start_max_lateral']) >= half:
            raise SpecError(f'{params._key("start_max_lateral")}: expected less than half the '
                            f'corridor width ({half:g} m), got '
                            f'{_show(params.data["start_max_lateral"])}')
    params.finish()
    return dict(params.data)


def _with_action_history(observation: ObservationSpec, action_fields: tuple) -> ObservationSpec:
    """The observation with the action's fields named, once the action is known."""
    extra = observation.action_history * len(action_fields)
    if observation.fields_size + extra > OBSERVATION_MAX_SIZE:
        raise SpecError(f'observation.action_history: {observation.action_history} past '
                        f'commands of {len(action_fields)} values add {extra} values to the '
                        f'{observation.fields_size} of the fields; expected at most '
                        f'{OBSERVATION_MAX_SIZE} values in all')
    return dataclasses.replace(observation, action_fields=tuple(action_fields))


def parse_spec(data: Any, origin: str = 'spec') -> TaskSpec:
    """Validate a spec mapping (as loaded from YAML) and build a ``TaskSpec``.

    The document's shape (depth, number of values, types) is checked first, without
    recursion; every size is checked before anything of that size is allocated.
    """
    try:
        _check_document(data)
        raw = copy.deepcopy(data)
        top = _Section(data, '')
        name = top.str('name')
        rate = top.float('control_rate_hz', low=CONTROL_RATE_MIN_HZ, high=CONTROL_RATE_MAX_HZ,
                         unit='Hz', positive=True)
        robot = top.section('robot')
        sim = robot.str('sim')
        sim_params = _parse_robot_params(sim, robot.section('params', {}))
        robot.finish()

        sources_section = top.section('sources')
        if len(sources_section.data) > SOURCES_MAX:
            raise SpecError(f'sources: {len(sources_section.data)} sources; expected at most '
                            f'{SOURCES_MAX}')
        sources = {}
        for source_name in sources_section.data:
            entry = sources_section.section(source_name)
            if not source_name:
                raise SpecError('sources: a source needs a non-empty name')
            kind = entry.str('kind', choices=tuple(READING_TYPES))
            # format is read for image sources only, so elsewhere it is an unknown key.
            image_format = entry.str('format', 'raw', choices=IMAGE_FORMATS) \
                if kind == 'image' else 'raw'
            sources[source_name] = Source(name=source_name, topic=entry.topic('topic'),
                                          kind=kind, format=image_format)
            entry.finish()
        if not sources:
            raise SpecError('sources: at least one source is required')
        topics = [s.topic for s in sources.values()]
        if len(set(topics)) != len(topics):
            raise SpecError(_shorten(f'sources: two sources share a topic: {topics}'))
        sources_section.finish()

        obs = top.section('observation')
        fields, room = [], OBSERVATION_MAX_SIZE
        for item in obs.items('fields', limit=FIELDS_MAX):
            fields.append(_parse_field(item, sources, room))
            room -= fields[-1].size
        if not fields:
            raise SpecError('observation.fields: at least one field is required')
        observation = ObservationSpec(
            fields=tuple(fields),
            max_age_s=obs.float('max_age_s', 0.5, low=MAX_AGE_MIN_S, high=DURATION_MAX_S,
                                unit='s'),
            sync_tolerance_s=obs.float('sync_tolerance_s', 0.0, low=0.0, high=DURATION_MAX_S,
                                       unit='s'),
            action_history=_check_count(
                obs.raw('action_history', 0), 'observation.action_history', 0,
                ACTION_HISTORY_MAX, 'past commands'))
        obs.finish()

        act = top.section('action')
        action_type = act.str('type', choices=ACTION_TYPES)
        if action_type == 'twist':
            action_fields = act.str_list('fields', choices=TWIST_FIELDS)
        else:
            action_fields = act.str_list('fields', limit=ACTION_MAX_SIZE)
        low = act.floats('low', len(action_fields))
        high = act.floats('high', len(action_fields))
        if np.any(low > high):
            raise SpecError(_shorten(f'action.low must not exceed action.high; got '
                                     f'low={low.tolist()} high={high.tolist()}'))
        stamped = act.bool('stamped', False)
        if stamped and action_type != 'twist':
            raise SpecError('action.stamped: only a twist action can be stamped')
        action = ActionSpec(type=action_type, topic=act.topic('topic'), fields=action_fields,
                            low=low, high=high, stamped=stamped,
                            max_delta=_parse_max_delta(act, len(action_fields)))
        observation = _with_action_history(observation, action_fields)
        act.finish()

        reward = tuple(_parse_term(item, 'term', REWARD_TERMS, sources, True)
                       for item in top.items('reward'))
        term = top.section('termination')
        termination = TerminationSpec(
            timeout_s=term.float('timeout_s', low=0.0, high=DURATION_MAX_S, unit='s',
                                 positive=True),
            success=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                          for i in term.items('success', [])),
            failure=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                          for i in term.items('failure', [])),
            success_at_timeout=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                                     for i in term.items('success_at_timeout', [])))
        term.finish()
        safety = _parse_safety(top, sources)
        reset = _parse_reset(top, sources)
        description = top.raw('description', '')
        if not isinstance(description, str):
            raise SpecError(f'description: expected text, got {_show(description)}')
        top.finish()
    except SpecError as error:
        raise SpecError(f'{origin}: {error}') from None
    return TaskSpec(name=name, control_rate_hz=rate, sim=sim, sim_params=sim_params,
                    sources=sources, observation=observation, action=action, reward=reward,
                    termination=termination, raw=raw, safety=safety, reset=reset)


def tasks_dir() -> Path:
    """Return the folder of the bundled task specs (installed share dir or source tree)."""
    here = Path(__file__).resolve().parent.parent
    # A source checkout, then the share folder of the prefix this Python runs in (where a
    # pip or colcon install puts the package's data), then the ament index.
    for candidate in (here.parent / 'config' / 'tasks',
                      Path(sys.prefix) / 'share' / 'ilrl_ros' / 'config' / 'tasks'):
        if candidate.is_dir():
            return candidate
    try:
        from ament_index_python.packages import get_package_share_directory
        return Path(get_package_share_directory('ilrl_ros')) / 'config' / 'tasks'
    except Exception:  # noqa: BLE001 - any failure means: not installed as a ROS package
        return here.parent / 'config' / 'tasks'


def bundled_tasks() -> list:
    """The names of the task specs that ship with the package (config/tasks/*.yaml)."""
    return sorted(p.stem for p in tasks_dir().glob('*.yaml'))


def resolve_spec_path(task: str) -> Path:
    """Turn a task name (``track_follow``) or a path to a YAML file into a spec path."""
    try:
        path = Path(task)
        if path.suffix in ('.yaml', '.yml') or path.exists():
            if not path.exists():
                raise SpecError(f'task spec {task!r}: no such file')
            if not path.is_file():
                raise SpecError(f'task spec {task!r}: not a regular file (no such file to '
                                f'read a spec from)')
            return path
    except (OSError, ValueError) as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError(f'task spec {task!r}: cannot be opened: {error}') from None
    candidate = tasks_dir() / f'{task}.yaml'
    if not candidate.is_file():
        known = bundled_tasks()
        raise SpecError(f'task {task!r}: not a spec file and not a bundled task; '
                        f'bundled tasks: {", ".join(known) or "none found"}')
    return candidate


class _SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader that refuses deep nesting, explicit tags and repeated keys.

    PyYAML composes and constructs nested collections by recursion; stopping at
    ``SPEC_MAX_DEPTH`` keeps a 5000-deep document from reaching Python's recursion limit.
    """

    def __init__(self, stream):
        super().__init__(stream)
        self._depth = 0

    def fetch_flow_collection_start(self, token_class):
        # Counted where the scanner meets '[' or '{': past this point PyYAML's scanner keeps
        # one pending simple key per open bracket and slows down with the square of the depth.
        if self.flow_level >= SPEC_MAX_DEPTH:
            mark = self.get_mark()
            raise SpecError(f'line {mark.line + 1}, column {mark.column + 1}: {_NESTED}')
        super().fetch_flow_collection_start(token_class)

    def compose_node(self, parent, index):
        event = self.peek_event()
        where = f'line {event.start_mark.line + 1}, column {event.start_mark.column + 1}'
        # Explicit tags (!!int, !!binary, !!set, !!python/...) make PyYAML's constructors
        # fail in ways of their own (an empty '!!int' raises IndexError); a spec needs none.
        if getattr(event, 'tag', None) not in (None, '!'):
            raise SpecError(f'{where}: the YAML tag {_show(event.tag)} has no place in a task '
                            f'spec; write the value plainly')
        opens = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        self._depth += opens
        try:
            if self._depth > SPEC_MAX_DEPTH:
                raise SpecError(f'{where}: {_NESTED}')
            return super().compose_node(parent, index)
        finally:
            self._depth -= opens

    def construct_mapping(self, node, deep=False):
        # YAML lets a repeated key silently replace the first; in a spec that hides a typo.
        seen = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != 'tag:yaml.org,2002:merge':
                if (key_node.tag, key_node.value) in seen:
                    raise SpecError(f'line {key_node.start_mark.line + 1}: the key '
                                    f'{_show(key_node.value)} appears twice in one mapping; '
                                    f'expected each key once')
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


def _unique_keys(pairs: list) -> dict:
    """Build a JSON object, refusing a key that appears twice (json keeps the last)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise SpecError(f'the key {_show(key)} appears twice in one object; expected each '
                            f'key once')
        out[key] = value
    return out


# A JSON string (escapes included) or a bracket: what the nesting scan needs to see.
_JSON_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]')


def _check_json_depth(text: str) -> None:
    """Refuse JSON nested deeper than ``SPEC_MAX_DEPTH`` by one linear scan, before parsing."""
    depth = 0
    for match in _JSON_TOKEN.finditer(text):
        token = match.group()
        if token == '[' or token == '{':
            depth += 1
            if depth > SPEC_MAX_DEPTH:
                raise SpecError(f'character {match.start() + 1}: {_NESTED}')
        elif token == ']' or token == '}':
            depth -= 1


def _check_text(text: Any, what: str, limit: int) -> str:
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError as error:
            raise SpecError(f'{what} is not UTF-8 text: {error}') from None
    if not isinstance(text, str):
        raise SpecError(f'{what}: expected text, got {type(text).__name__}')
    if len(text) > limit:
        raise SpecError(f'{what} has {len(text)} characters; expected at most {limit} '
                        f'({limit // 1024} KiB)')
    return text


def spec_from_yaml(text: str, origin: str = 'spec') -> TaskSpec:
    """Load and validate a spec from YAML text; ``origin`` starts every error message."""
    try:
        text = _check_text(text, 'the spec', SPEC_MAX_BYTES)
        data = yaml.load(text, Loader=_SpecLoader)
    except SpecError as error:
        raise SpecError(f'{origin}: {error}') from None
    except (yaml.YAMLError, ValueError) as error:
        # ValueError: a YAML integer of more than 4300 digits, a date that does not exist.
        raise SpecError(_shorten(f'{origin}: not valid YAML: {error}', 600)) from None
    return parse_spec(data, origin=origin)


def load_spec(task: str) -> TaskSpec:
    """Load and validate a spec by bundled task name or YAML path."""
    path = resolve_spec_path(task)
    try:
        with path.open('rb') as stream:
            content = stream.read(SPEC_MAX_BYTES + 1)
    except OSError as error:
        raise SpecError(f'{path}: cannot be read: {error.strerror or error}') from None
    if len(content) > SPEC_MAX_BYTES:
        raise SpecError(f'{path}: larger than {SPEC_MAX_BYTES // 1024} KiB; a task spec is a '
                        f'few kilobytes')
    return spec_from_yaml(content, origin=str(path))


def spec_from_json(text: str, origin: str = 'checkpoint') -> TaskSpec:
    """Rebuild a spec stored as JSON (in a checkpoint or dataset)."""
    try:
        text = _check_text(text, 'the stored task spec', SPEC_MAX_JSON_BYTES)
        _check_json_depth(text)
        data = json.loads(text, object_pairs_hook=_unique_keys)
    except SpecError as error:
        raise SpecError(f'{origin}: {error}') from None
    except ValueError as error:
        # JSONDecodeError, or an integer of more than 4300 digits.
        raise SpecError(_shorten(f'{origin}: the stored task spec is not valid JSON: {error}',
                                 600)) from None
    return parse_spec(data, origin=origin)
