"""Task specs: the one contract every node, simulator, dataset and checkpoint agrees on.

A spec is a YAML file naming the control rate, the sources (topics and what they carry),
the observation vector built from them, the action and its bounds, the reward terms and the
termination conditions. ``load_spec`` validates it and every error names the offending key
and what was expected.
"""

import copy
from dataclasses import dataclass
import json
import math
from pathlib import Path
import sys
from typing import Any

import numpy as np
import yaml

from ilrl_ros.core.readings import READING_TYPES

TWIST_FIELDS = ('linear.x', 'linear.y', 'linear.z', 'angular.x', 'angular.y', 'angular.z')
ODOM_COMPONENTS = ('x', 'y', 'yaw', 'cos_yaw', 'sin_yaw', 'vx', 'vy', 'wz')
JOINT_COMPONENTS = ('position', 'velocity', 'effort', 'cos', 'sin')
ACTION_TYPES = ('twist', 'float64_multi_array')
REWARD_TERMS = ('track_progress', 'living_cost', 'collision', 'pendulum_cost', 'action_cost')
CONDITIONS = ('lap_complete', 'collision', 'joint_near')
# Smallest and largest side, in pixels, of an image field (a policy input, not a photo).
IMAGE_MIN_SIDE, IMAGE_MAX_SIDE = 4, 256


class SpecError(ValueError):
    """A task spec is malformed; the message names the key and what was expected."""


class _Section:
    """Reads one mapping of a spec, remembering its key path for error messages."""

    def __init__(self, data: Any, path: str):
        if not isinstance(data, dict):
            raise SpecError(f'{path}: expected a mapping, got {type(data).__name__} {data!r}')
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

    def str(self, key: str, default: Any = ..., choices: tuple = ()) -> str:
        value = self.raw(key, default)
        if not isinstance(value, str) or not value:
            raise SpecError(f'{self._key(key)}: expected a non-empty string, got {value!r}')
        if choices and value not in choices:
            raise SpecError(f'{self._key(key)}: {value!r} is not one of {", ".join(choices)}')
        return value

    def bool(self, key: str, default: Any = ...) -> bool:
        value = self.raw(key, default)
        if not isinstance(value, bool):
            raise SpecError(f'{self._key(key)}: expected true or false, got {value!r}')
        return value

    def float(self, key: str, default: Any = ..., minimum: float = -math.inf,
              positive: bool = False) -> float:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f'{self._key(key)}: expected a number, got {value!r}')
        value = float(value)
        if not math.isfinite(value):
            raise SpecError(f'{self._key(key)}: expected a finite number, got {value!r}')
        if positive and value <= 0.0:
            raise SpecError(f'{self._key(key)}: expected a number > 0, got {value!r}')
        if value < minimum:
            raise SpecError(f'{self._key(key)}: expected a number >= {minimum}, got {value!r}')
        return value

    def int(self, key: str, default: Any = ..., minimum: int = 1) -> int:
        value = self.raw(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise SpecError(f'{self._key(key)}: expected a whole number >= {minimum}, '
                            f'got {value!r}')
        return value

    def str_list(self, key: str, default: Any = ..., choices: tuple = ()) -> tuple:
        value = self.raw(key, default)
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list) or not value or not all(
                isinstance(v, str) and v for v in value):
            raise SpecError(f'{self._key(key)}: expected a non-empty list of strings, '
                            f'got {value!r}')
        for v in value:
            if choices and v not in choices:
                raise SpecError(f'{self._key(key)}: {v!r} is not one of {", ".join(choices)}')
        if len(set(value)) != len(value):
            raise SpecError(f'{self._key(key)}: entries must be unique, got {value!r}')
        return tuple(value)

    def floats(self, key: str, size: int, default: Any = ...) -> np.ndarray:
        """Read a number or a list of `size` numbers as a float vector of that size."""
        value = self.raw(key, default)
        values = value if isinstance(value, list) else [value]
        if (not values or any(isinstance(v, bool) or not isinstance(v, (int, float))
                              for v in values)):
            raise SpecError(f'{self._key(key)}: expected a number or a list of numbers, '
                            f'got {value!r}')
        array = np.asarray(values, dtype=np.float64)
        if not np.all(np.isfinite(array)):
            raise SpecError(f'{self._key(key)}: expected finite numbers, got {value!r}')
        if array.size == 1:
            return np.full(size, array[0])
        if array.size != size:
            raise SpecError(f'{self._key(key)}: expected 1 or {size} numbers, '
                            f'got {array.size}')
        return array

    def items(self, key: str, default: Any = ...) -> list:
        value = self.raw(key, default)
        if not isinstance(value, list):
            raise SpecError(f'{self._key(key)}: expected a list, got {value!r}')
        return [_Section(item, f'{self._key(key)}[{i}]') for i, item in enumerate(value)]

    def finish(self) -> None:
        """Refuse keys nobody read: a typo must not silently fall back to a default."""
        unknown = sorted(set(self.data) - self._used)
        if unknown:
            raise SpecError(f'{self.path or "spec"}: unknown key(s) {", ".join(unknown)}; '
                            f'expected only {", ".join(sorted(self._used))}')


@dataclass(frozen=True)
class Source:
    """One topic the task reads, and the kind of reading it carries."""

    name: str
    topic: str
    kind: str

    @property
    def message_type(self) -> str:
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


@dataclass(frozen=True)
class ObservationSpec:
    """The observation vector: fields in order, and how old an input may be."""

    fields: tuple
    max_age_s: float
    sync_tolerance_s: float

    @property
    def size(self) -> int:
        return sum(f.size for f in self.fields)

    @property
    def sources(self) -> tuple:
        return tuple(dict.fromkeys(f.source for f in self.fields))

    def labels(self) -> list:
        return [label for f in self.fields for label in f.labels()]

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
            'sources': {k: v for k, v in self.raw['sources'].items() if k in used},
            'observation': {k: v for k, v in self.raw['observation'].items()
                            if k == 'fields'},
            'action': self.raw['action'],
        }

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


def _parse_field(item: _Section, sources: dict) -> ObservationField:
    name = item.str('source')
    if name not in sources:
        raise SpecError(f'{item.path}.source: {name!r} is not a declared source; '
                        f'declared: {", ".join(sources)}')
    kind = sources[name].kind
    bins, max_range, components, joints, width, height = 0, 0.0, (), (), 0, 0
    if kind == 'image':
        width, height = item.int('width'), item.int('height')
        for key, value in (('width', width), ('height', height)):
            if not IMAGE_MIN_SIDE <= value <= IMAGE_MAX_SIDE:
                raise SpecError(f'{item.path}.{key}: expected {IMAGE_MIN_SIDE} to '
                                f'{IMAGE_MAX_SIDE} pixels (the camera image is resized to '
                                f'it for the policy), got {value}')
        size = width * height
    elif kind == 'laser_scan':
        bins = item.int('bins')
        max_range = item.float('max_range', positive=True)
        size = bins
    elif kind == 'odometry':
        components = item.str_list('components', choices=ODOM_COMPONENTS)
        size = len(components)
    else:
        joints = item.str_list('joints')
        components = item.str_list('components', choices=JOINT_COMPONENTS)
        size = len(joints) * len(components)
    scale = item.floats('scale', size, 1.0)
    offset = item.floats('offset', size, 0.0)
    if np.any(scale == 0.0):
        raise SpecError(f'{item.path}.scale: a scale of 0 would erase the input')
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
            raise SpecError(f'{item.path}.source: {source!r} is not a declared source; '
                            f'declared: {", ".join(sources)}')
    weight = item.float('weight', 1.0) if weighted else 1.0
    params = {}
    for name in item.data:
        if name in ('joint',):
            params[name] = item.str(name)
        elif name not in (key, 'source', 'weight'):
            params[name] = item.float(name)
    item.finish()
    needs_source = {'track_progress': 'odometry', 'collision': 'laser_scan',
                    'pendulum_cost': 'joint_state', 'lap_complete': 'odometry',
                    'joint_near': 'joint_state'}
    wanted = needs_source.get(kind)
    if wanted:
        if not source:
            raise SpecError(f'{item.path}: {kind} needs a source of kind {wanted}')
        if sources[source].kind != wanted:
            raise SpecError(f'{item.path}.source: {kind} needs a {wanted} source, '
                            f'{source!r} is {sources[source].kind}')
    required = {'collision': ('threshold',), 'joint_near': ('joint', 'tolerance'),
                'pendulum_cost': ('joint',)}
    for name in required.get(kind, ()):
        if name not in params:
            raise SpecError(f'{item.path}.{name}: missing; {kind} requires it')
    return Term(kind=kind, source=source, weight=weight, params=tuple(sorted(params.items())))


def parse_spec(data: Any, origin: str = 'spec') -> TaskSpec:
    """Validate a spec mapping (as loaded from YAML) and build a ``TaskSpec``."""
    raw = copy.deepcopy(data)
    top = _Section(data, '')
    try:
        name = top.str('name')
        rate = top.float('control_rate_hz', positive=True)
        robot = top.section('robot')
        sim = robot.str('sim')
        sim_params = robot.raw('params', {})
        if not isinstance(sim_params, dict):
            raise SpecError(f'robot.params: expected a mapping, got {sim_params!r}')
        robot.finish()

        sources_section = top.section('sources')
        sources = {}
        for source_name in sources_section.data:
            entry = sources_section.section(source_name)
            sources[source_name] = Source(
                name=source_name, topic=entry.str('topic'),
                kind=entry.str('kind', choices=tuple(READING_TYPES)))
            entry.finish()
        if not sources:
            raise SpecError('sources: at least one source is required')
        topics = [s.topic for s in sources.values()]
        if len(set(topics)) != len(topics):
            raise SpecError(f'sources: two sources share a topic: {topics}')
        sources_section.finish()

        obs = top.section('observation')
        fields = tuple(_parse_field(item, sources) for item in obs.items('fields'))
        if not fields:
            raise SpecError('observation.fields: at least one field is required')
        observation = ObservationSpec(
            fields=fields,
            max_age_s=obs.float('max_age_s', 0.5, positive=True),
            sync_tolerance_s=obs.float('sync_tolerance_s', 0.0, minimum=0.0))
        obs.finish()

        act = top.section('action')
        action_type = act.str('type', choices=ACTION_TYPES)
        if action_type == 'twist':
            action_fields = act.str_list('fields', choices=TWIST_FIELDS)
        else:
            action_fields = act.str_list('fields')
        low = act.floats('low', len(action_fields))
        high = act.floats('high', len(action_fields))
        if np.any(low > high):
            raise SpecError(f'action.low must not exceed action.high; got low={low.tolist()} '
                            f'high={high.tolist()}')
        stamped = act.bool('stamped', False)
        if stamped and action_type != 'twist':
            raise SpecError('action.stamped: only a twist action can be stamped')
        action = ActionSpec(type=action_type, topic=act.str('topic'), fields=action_fields,
                            low=low, high=high, stamped=stamped)
        act.finish()

        reward = tuple(_parse_term(item, 'term', REWARD_TERMS, sources, True)
                       for item in top.items('reward'))
        term = top.section('termination')
        termination = TerminationSpec(
            timeout_s=term.float('timeout_s', positive=True),
            success=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                          for i in term.items('success', [])),
            failure=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                          for i in term.items('failure', [])),
            success_at_timeout=tuple(_parse_term(i, 'condition', CONDITIONS, sources, False)
                                     for i in term.items('success_at_timeout', [])))
        term.finish()
        top.raw('description', '')
        top.finish()
    except SpecError as error:
        raise SpecError(f'{origin}: {error}') from None
    return TaskSpec(name=name, control_rate_hz=rate, sim=sim, sim_params=dict(sim_params),
                    sources=sources, observation=observation, action=action, reward=reward,
                    termination=termination, raw=raw)


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


def resolve_spec_path(task: str) -> Path:
    """Turn a task name (``track_follow``) or a path to a YAML file into a spec path."""
    path = Path(task)
    if path.suffix in ('.yaml', '.yml') or path.exists():
        if not path.is_file():
            raise SpecError(f'task spec {task!r}: no such file')
        return path
    candidate = tasks_dir() / f'{task}.yaml'
    if not candidate.is_file():
        known = sorted(p.stem for p in tasks_dir().glob('*.yaml'))
        raise SpecError(f'task {task!r}: not a spec file and not a bundled task; '
                        f'bundled tasks: {", ".join(known) or "none found"}')
    return candidate


def load_spec(task: str) -> TaskSpec:
    """Load and validate a spec by bundled task name or YAML path."""
    path = resolve_spec_path(task)
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise SpecError(f'{path}: not valid YAML: {error}') from None
    return parse_spec(data, origin=str(path))


def spec_from_json(text: str, origin: str = 'checkpoint') -> TaskSpec:
    """Rebuild a spec stored as JSON (in a checkpoint or dataset)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise SpecError(f'{origin}: the stored task spec is not valid JSON: {error}') from None
    return parse_spec(data, origin=origin)
