"""Fuzzing the spec checker: generated specs may only be refused or be runnable.

Every generated spec goes through the loaders the package uses (``parse_spec`` on the
mapping, ``spec_from_yaml`` and ``spec_from_json`` on its text). The only outcomes allowed
are a ``SpecError`` or a spec whose derived sizes are within the stated limits, whose
observation space and zero observation can be built without allocating beyond them, and
which survives its own JSON round trip. Inputs generated per run (per target):

- mutations of the bundled specs (keys dropped, values replaced by anything or by a value of
  the same kind, keys and list entries added, nesting up to 5000 deep), each as a mapping,
  YAML and JSON: 400 (about a tenth of them valid);
- arbitrary documents, Python values JSON cannot hold included: 300;
- arbitrary text, and bundled YAML with fragments of YAML syntax spliced in: 300 each;
- topic names against rclpy's own validation and expansion: 400.

That is 1700 generated inputs per run.
"""

import copy
import json
import math
import tracemalloc

import gymnasium as gym
from hypothesis import event, given, settings, strategies as st
import numpy as np
import pytest
from rclpy.exceptions import InvalidTopicNameException
from rclpy.expand_topic_name import expand_topic_name
from rclpy.validate_full_topic_name import validate_full_topic_name
from rclpy.validate_topic_name import validate_topic_name
import yaml

from ilrl_ros.core import spec as limits
from ilrl_ros.core.spec import (
    parse_spec,
    spec_from_json,
    spec_from_yaml,
    SpecError,
    tasks_dir,
    topic_name_error,
)

from fuzzing import at, paths_of

TASKS = sorted(p.stem for p in tasks_dir().glob('*.yaml'))
BUNDLED_TEXT = {task: (tasks_dir() / f'{task}.yaml').read_text() for task in TASKS}
BUNDLED = {task: yaml.safe_load(text) for task, text in BUNDLED_TEXT.items()}
# What parsing a spec and building its observation space and a zero observation may take at
# most: the largest observation is 1 MiB of float64, its scale and offset as much again.
MEMORY_BOUND = 64 * 1024 * 1024

# Placeholder for a value nested `depth` levels deep, substituted after generation so that
# neither hypothesis nor the YAML and JSON writers have to recurse through it.
DEEP = '__deep__'

SPECIAL_VALUES = [0, 1, -1, 36, 36.0, 0.5, 1e9, 10 ** 9, 2 ** 63, 10 ** 400, -10 ** 400,
                  1e308, -1e308, 1e-300, math.inf, -math.inf, math.nan, True, False, None, '',
                  [], {}]
# Words the spec reads, so that generated documents get past the first checks.
WORDS = ['scan', 'odom', 'camera', 'joint_states', 'pendulum_joint', 'laser_scan', 'odometry',
         'joint_state', 'image', 'twist', 'float64_multi_array', 'linear.x', 'angular.z', 'cos',
         'vx', 'wz', 'track_progress', 'living_cost', 'collision', 'lap_complete', 'joint_near',
         'track_follow', 'pendulum', 'default', '~/scan', '/scan', 'a//b', '{node}', '2scan',
         'cmd vel', '~', DEEP]
KEYS = ['name', 'control_rate_hz', 'robot', 'sim', 'params', 'sources', 'topic', 'kind',
        'observation', 'fields', 'source', 'bins', 'max_range', 'scale', 'offset', 'width',
        'height', 'joints', 'components', 'max_age_s', 'sync_tolerance_s', 'action', 'type',
        'low', 'high', 'stamped', 'reward', 'term', 'weight', 'threshold', 'termination',
        'timeout_s', 'success', 'failure', 'condition', 'joint', 'tolerance', 'hold_s',
        'scan_rays', 'camera_width', 'actuation_noise_std', 'description']

scalars = st.one_of(
    st.sampled_from(SPECIAL_VALUES),
    st.integers(-10 ** 400, 10 ** 400),
    st.integers(-5, 5000),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(WORDS))
keys = st.one_of(st.sampled_from(KEYS), st.text(max_size=8))
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=6),
                               st.dictionaries(keys, children, max_size=6)),
    max_leaves=24)
any_value = st.one_of(values, st.just(DEEP),
                      st.integers(0, 300).map(lambda n: [0.5] * n))
# A value of the same kind as the one it replaces: keeps more mutated specs valid, so that
# accepted specs are checked against the limits too, not only refusals.
numbers = st.one_of(st.sampled_from([0, 1, 36, 0.5, 1e9, 1e308, 1e-300, math.inf, math.nan]),
                    st.integers(-5, 5000), st.floats(-1e4, 1e4), st.floats(0.0, 10.0))
texts = st.one_of(st.sampled_from(WORDS), st.text(max_size=8))


def nested(depth: int):
    """A list nested ``depth`` levels deep, built without recursion."""
    value = 0
    for _ in range(depth):
        value = [value]
    return value


def substitute_deep(value, depth: int):
    """Replace every DEEP placeholder in a document by a list nested ``depth`` deep."""
    deep = nested(depth)
    root = [value]
    stack = [root]
    while stack:
        node = stack.pop()
        slots = node.items() if isinstance(node, dict) else enumerate(node)
        for key, child in list(slots):
            if isinstance(child, str) and child == DEEP:
                node[key] = deep
            elif isinstance(child, (dict, list)):
                stack.append(child)
    return root[0]


@st.composite
def mutated_specs(draw):
    """A bundled spec with one to four random keys dropped, replaced, tweaked or added."""
    raw = copy.deepcopy(BUNDLED[draw(st.sampled_from(TASKS))])
    for _ in range(draw(st.sampled_from([1, 1, 1, 2, 3, 4]))):
        paths = paths_of(raw)
        if not paths:
            break
        path = draw(st.sampled_from(sorted(paths, key=repr)))
        parent, key = at(raw, path[:-1]), path[-1]
        how = draw(st.sampled_from(['drop', 'replace', 'tweak', 'tweak', 'tweak', 'add']))
        old = parent[key]
        if how == 'drop':
            del parent[key]
        elif how == 'tweak' and isinstance(old, (int, float)) and not isinstance(old, bool):
            parent[key] = draw(numbers)
        elif how == 'tweak' and isinstance(old, str):
            parent[key] = draw(texts)
        elif how == 'replace' or not isinstance(parent[key], (dict, list)):
            parent[key] = draw(any_value)
        elif isinstance(parent[key], dict):
            parent[key][draw(st.one_of(keys, st.integers(0, 3)))] = draw(any_value)
        else:
            parent[key].append(draw(any_value))
    return raw


def check_runnable(spec) -> None:
    """Assert that an accepted spec is within every stated limit."""
    assert limits.CONTROL_RATE_MIN_HZ <= spec.control_rate_hz <= limits.CONTROL_RATE_MAX_HZ
    assert math.isfinite(spec.dt) and spec.dt > 0.0
    obs = spec.observation
    assert 0 < obs.size <= limits.OBSERVATION_MAX_SIZE
    assert 0 < len(obs.fields) <= limits.FIELDS_MAX
    assert limits.MAX_AGE_MIN_S <= obs.max_age_s <= limits.DURATION_MAX_S
    assert 0.0 <= obs.sync_tolerance_s <= limits.DURATION_MAX_S
    for field in obs.fields:
        assert field.scale.shape == field.offset.shape == (field.size,)
        assert np.all(np.isfinite(field.scale)) and np.all(np.isfinite(field.offset))
        assert np.all(np.abs(field.scale) >= limits.SCALE_MIN)
        assert field.bins <= limits.BINS_MAX
        assert len(field.joints) <= limits.JOINTS_MAX
        assert max(field.width, field.height) <= limits.IMAGE_MAX_SIDE
        assert len(set(field.joints)) == len(field.joints)
    assert len(obs.labels()) == obs.size
    assert 0 < spec.action.size <= limits.ACTION_MAX_SIZE
    assert np.all(np.isfinite(spec.action.low)) and np.all(spec.action.low <= spec.action.high)
    assert 0.0 < spec.termination.timeout_s <= limits.DURATION_MAX_S
    assert len(spec.sources) <= limits.SOURCES_MAX
    for topic in [s.topic for s in spec.sources.values()] + [spec.action.topic]:
        assert topic_name_error(topic) == ''
    for value in spec.sim_params.values():
        for number in (value if isinstance(value, list) else [value]):
            if isinstance(number, (int, float)):
                assert abs(number) <= limits.NUMBER_MAX
    if spec.sim in limits.ROBOT_PARAMS:  # a simulator of this package will read them
        assert set(spec.sim_params) <= set(limits.ROBOT_PARAMS[spec.sim])
        rays = spec.sim_params.get('scan_rays', 1)
        assert isinstance(rays, int) and 1 <= rays <= limits.SCAN_RAYS_MAX
    # What a checkpoint stores is strict JSON and loads back to the same contract.
    again = spec_from_json(spec.to_json())
    assert again.contract() == spec.contract()


def parse_within_memory(document) -> str:
    """Parse a mapping; if accepted, build what the nodes build from it, all within bounds."""
    tracemalloc.start()
    try:
        try:
            spec = parse_spec(document)
        except SpecError as error:
            assert str(error)
            return 'refused'
        space = gym.spaces.Box(-np.inf, np.inf, (spec.observation.size,), np.float32)
        zero = np.zeros(spec.observation.size, dtype=np.float32)
        assert space.contains(zero)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= MEMORY_BOUND
    check_runnable(spec)
    return 'accepted'


def load_or_refuse(load, text) -> str:
    try:
        spec = load(text)
    except SpecError as error:
        assert str(error)
        return 'refused'
    check_runnable(spec)
    return 'accepted'


@settings(max_examples=400)
@given(raw=mutated_specs(), depth=st.sampled_from([limits.SPEC_MAX_DEPTH - 2,
                                                   limits.SPEC_MAX_DEPTH + 1, 5000]))
def test_mutated_bundled_specs_are_refused_or_runnable(raw, depth):
    deep_text = '[' * depth + '0' + ']' * depth
    as_json = json.dumps(raw).replace(json.dumps(DEEP), deep_text)
    as_yaml = yaml.safe_dump(raw, sort_keys=False).replace(DEEP, deep_text)
    event(parse_within_memory(substitute_deep(raw, depth)))
    load_or_refuse(spec_from_json, as_json)
    load_or_refuse(spec_from_yaml, as_yaml)


# Values a YAML file or a careless caller may hand over that JSON cannot hold.
odd_values = st.one_of(
    st.sets(st.integers(0, 3), max_size=3), st.binary(max_size=4), st.dates(),
    st.datetimes(), st.tuples(scalars, scalars), st.builds(object), st.complex_numbers(),
    st.just(np.int64(7)), st.just(np.float64(7.0)), st.just(np.zeros(3)))
documents = st.recursive(
    st.one_of(scalars, odd_values),
    lambda children: st.one_of(
        st.lists(children, max_size=5),
        st.dictionaries(st.one_of(keys, st.integers(), st.none(), st.booleans(),
                                  st.tuples(st.integers())), children, max_size=6)),
    max_leaves=30)


@settings(max_examples=300)
@given(document=documents, loop=st.booleans())
def test_arbitrary_documents_are_refused_or_runnable(document, loop):
    if loop and isinstance(document, list):
        document.append(document)  # a structure that contains itself
    event(parse_within_memory(document))


# Fragments of YAML syntax, spliced into the bundled specs.
YAML_FRAGMENTS = ['{', '}', '[', ']', ': ', ', ', '- ', '\n', '  ', '&a ', '*a', '<<: ',
                  '!!binary ', '!!set ', '!!int ', '!!float ', '!!timestamp ', '!!omap ',
                  '!!python/object:os.system ', '? ', '"', "'", '#', '|', '>', '---\n', '...\n',
                  '%YAML 1.1\n', '1e9', '.nan', '-.inf', '2024-13-01', '0x7f', '1_000', '9' * 60,
                  'on', 'null', '~', '\t', '\x00', '\ufeff', 'bins: ', 'topic: 2x', '[' * 40]


@st.composite
def spliced_yaml(draw):
    text = BUNDLED_TEXT[draw(st.sampled_from(TASKS))]
    for _ in range(draw(st.integers(1, 6))):
        start = draw(st.integers(0, len(text)))
        end = min(len(text), start + draw(st.integers(0, 8)))
        text = text[:start] + draw(st.sampled_from(YAML_FRAGMENTS)) + text[end:]
    return text


@settings(max_examples=300)
@given(text=spliced_yaml())
def test_bundled_yaml_with_syntax_spliced_in_is_refused_or_runnable(text):
    event(load_or_refuse(spec_from_yaml, text))


@settings(max_examples=300)
@given(text=st.one_of(st.text(max_size=200),
                      st.lists(st.sampled_from(YAML_FRAGMENTS), max_size=40).map(''.join),
                      st.binary(max_size=64)))
def test_arbitrary_text_is_refused_or_runnable(text):
    load_or_refuse(spec_from_yaml, text)
    load_or_refuse(spec_from_json, text)


def rclpy_accepts(name: str) -> bool:
    """Whether a node accepts ``name``: rcl's validation, then the expanded, full name's."""
    try:
        validate_topic_name(name)
        for namespace in ('/', '/ns'):
            validate_full_topic_name(expand_topic_name(name, 'node', namespace))
    except (InvalidTopicNameException, ValueError):
        return False
    return True


# rclpy hands the name to C, where a NUL ends it; the generated names leave NUL out.
token = st.text(alphabet='abZ_019', max_size=5)
topic_names = st.one_of(
    st.text(alphabet='ab_Z09/~{} -.\u00e9', max_size=24),
    st.builds(lambda prefix, parts: prefix + '/'.join(parts),
              st.sampled_from(['', '/', '~/', '~', '/~/']), st.lists(token, min_size=1,
                                                                   max_size=5)))


@settings(max_examples=400)
@given(name=topic_names)
def test_topic_names_agree_with_rclpy(name):
    ours = topic_name_error(name) == ''
    ros = rclpy_accepts(name)
    # Never accept a name ROS 2 refuses.
    assert ros or not ours, f'{name!r}: accepted here, refused by rclpy'
    # On fully qualified, relative and '~/' private names, agree exactly. Substitutions and a
    # bare '~' or '~name' are refused here on purpose (see topic_name_error).
    plain = '{' not in name and '}' not in name and \
        '~' not in (name[2:] if name.startswith('~/') else name)
    if plain:
        assert ours == ros, f'{name!r}: {topic_name_error(name) or "accepted"} here, ' \
                            f'{"accepted" if ros else "refused"} by rclpy'


@pytest.mark.parametrize('name', ['~', '~a', '{node}/scan', 'a/{ns}'])
def test_names_refused_here_that_rclpy_expands_per_node(name):
    # rcl accepts '~' followed by one character other than '/', but not by two.
    assert topic_name_error(name)
    assert validate_topic_name(name)


def test_a_change_within_the_limits_stays_runnable():
    raw = copy.deepcopy(BUNDLED['track_follow'])
    raw['robot']['params']['scan_rays'] = 720
    raw['observation']['fields'][0]['bins'] = 72
    assert parse_within_memory(raw) == 'accepted'
    assert parse_spec(raw).observation.size == 74
