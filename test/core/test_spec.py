"""Task specs: the bundled specs load, malformed specs are refused by key path, contracts.

Also the limits: each probe of issue 8 (rates, counts, topic names, nesting, duplicates) is
refused with the key, the value and the allowed range, before anything of that size exists.
"""

import copy
import json
import os
import time
import tracemalloc

import numpy as np
import pytest
import yaml

from ilrl_ros.core import spec as spec_module
from ilrl_ros.core.spec import (
    contract_mismatch,
    load_spec,
    OBSERVATION_MAX_SIZE,
    parse_spec,
    spec_from_json,
    spec_from_yaml,
    SPEC_MAX_DEPTH,
    SpecError,
    tasks_dir,
    topic_name_error,
)


def bundled_raw(task: str) -> dict:
    """The YAML mapping of a bundled spec, to break one key of."""
    return yaml.safe_load((tasks_dir() / f'{task}.yaml').read_text())


def test_both_bundled_specs_load():
    track = load_spec('track_follow')
    pendulum = load_spec('pendulum')
    assert (track.name, pendulum.name) == ('track_follow', 'pendulum')
    bundled = sorted(p.stem for p in tasks_dir().glob('*.yaml'))
    assert {'pendulum', 'track_follow', 'track_follow_camera'} <= set(bundled)
    for task in bundled:
        assert load_spec(task).name == task


def test_track_follow_sizes():
    spec = load_spec('track_follow')
    # 36 lidar bins, then odometry vx and wz.
    assert spec.observation.size == 38
    scan, odom = spec.observation.fields
    assert (scan.kind, scan.bins, scan.max_range, scan.size) == ('laser_scan', 36, 3.5, 36)
    assert (odom.kind, odom.components, odom.size) == ('odometry', ('vx', 'wz'), 2)
    labels = spec.observation.labels()
    assert len(labels) == 38
    assert labels[0] == 'scan.bin0' and labels[35] == 'scan.bin35'
    assert labels[36:] == ['odom.vx', 'odom.wz']
    assert spec.observation.sources == ('scan', 'odom')
    assert spec.action.size == 2
    assert spec.action.fields == ('linear.x', 'angular.z')
    np.testing.assert_array_equal(spec.action.low, [-0.22, -2.84])
    np.testing.assert_array_equal(spec.action.high, [0.22, 2.84])
    assert spec.action.message_type == 'geometry_msgs/msg/TwistStamped'
    assert spec.dt == pytest.approx(0.1)
    assert spec.source_for_topic('odom').kind == 'odometry'
    assert [t.kind for t in spec.reward] == ['track_progress', 'living_cost', 'collision']
    assert spec.termination.timeout_s == 150.0


def test_pendulum_sizes():
    spec = load_spec('pendulum')
    assert spec.observation.size == 3
    assert spec.observation.labels() == ['joint_states.pendulum_joint.cos',
                                         'joint_states.pendulum_joint.sin',
                                         'joint_states.pendulum_joint.velocity']
    assert spec.action.size == 1
    assert spec.action.message_type == 'std_msgs/msg/Float64MultiArray'
    assert spec.dt == pytest.approx(0.05)
    # A scalar bound is broadcast to every action field.
    np.testing.assert_array_equal(spec.action.high, [2.0])


def test_action_check_and_clip():
    spec = load_spec('track_follow')
    np.testing.assert_array_equal(spec.action.clip([1.0, -5.0]), [0.22, -2.84])
    np.testing.assert_array_equal(spec.action.clip([0.1, 0.2]), [0.1, 0.2])
    with pytest.raises(ValueError, match='3 values; the task expects 2'):
        spec.action.check([0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match='not finite'):
        spec.action.check([np.nan, 0.0])


def _set(path: tuple, value):
    """Return a mutation that sets the value at a key path (strings and list indices)."""
    def mutate(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
    return mutate


def _delete(path: tuple):
    def mutate(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]
    return mutate


def _rename(path: tuple, new_key: str):
    def mutate(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[new_key] = node.pop(path[-1])
    return mutate


MALFORMED = [
    # (bundled spec, one broken key, what the message must contain)
    ('track_follow', _set(('action', 'low'), 'fast'), 'action.low: expected a number'),
    ('track_follow', _set(('action', 'low'), [-0.2, -0.2, -0.2]),
     'action.low: expected 1 or 2 numbers, got 3'),
    ('track_follow', _set(('action', 'high'), [0.22, float('inf')]),
     'action.high: expected finite numbers'),
    ('track_follow', _set(('action', 'low'), [0.3, -2.84]),
     'action.low must not exceed action.high'),
    ('track_follow', _set(('action', 'fields'), ['linear.x', 'angular.w']),
     "action.fields: 'angular.w' is not one of"),
    ('track_follow', _set(('action', 'fields'), ['linear.x', 'linear.x']),
     'action.fields: entries must be unique'),
    ('track_follow', _set(('observation', 'fields', 0, 'bins'), 0),
     'observation.fields[0].bins: expected a whole number from 1 to 4096 sectors, got 0'),
    ('track_follow', _set(('observation', 'fields', 0, 'bins'), 36.5),
     'observation.fields[0].bins'),
    ('track_follow', _set(('observation', 'fields', 0, 'max_range'), -1.0),
     'observation.fields[0].max_range: expected a number > 0'),
    ('track_follow', _set(('observation', 'fields', 0, 'scale'), 0.0),
     'observation.fields[0].scale'),
    ('track_follow', _set(('observation', 'fields', 0, 'source'), 'lidar'),
     "observation.fields[0].source: 'lidar' is not a declared source"),
    ('track_follow', _set(('observation', 'fields', 1, 'components'), ['vx', 'speed']),
     "observation.fields[1].components: 'speed' is not one of"),
    ('track_follow', _set(('observation', 'fields', 1, 'scale'), [1.0, 2.0, 3.0]),
     'observation.fields[1].scale: expected 1 or 2 numbers'),
    ('track_follow', _set(('observation', 'fields'), []),
     'observation.fields: at least one field is required'),
    ('track_follow', _set(('sources', 'scan', 'kind'), 'lidar'),
     "sources.scan.kind: 'lidar' is not one of"),
    ('track_follow', _delete(('sources', 'odom', 'topic')),
     'sources.odom.topic: missing'),
    ('track_follow', _set(('sources', 'odom', 'topic'), 'scan'),
     'sources: two sources share a topic'),
    ('track_follow', _set(('control_rate_hz',), 0), 'control_rate_hz: expected a number > 0'),
    ('track_follow', _set(('control_rate_hz',), 'fast'), 'control_rate_hz: expected a number'),
    ('track_follow', _delete(('name',)), 'name: missing'),
    ('track_follow', _set(('robot',), 'turtlebot'), 'robot: expected a mapping'),
    # Typos of optional keys: refused, never silently replaced by the default.
    ('track_follow', _rename(('observation', 'max_age_s'), 'max_agee_s'),
     'observation: unknown key(s) max_agee_s'),
    ('track_follow', _rename(('observation', 'fields', 0, 'scale'), 'scales'),
     'observation.fields[0]: unknown key(s) scales'),
    ('track_follow', _rename(('description',), 'descripton'),
     'spec: unknown key(s) descripton'),
    ('track_follow', _rename(('action', 'stamped'), 'stampd'),
     'action: unknown key(s) stampd'),
    # Reward and termination terms.
    ('track_follow', _set(('reward', 0, 'source'), 'scan'),
     "reward[0].source: track_progress needs a odometry source, 'scan' is laser_scan"),
    ('track_follow', _delete(('reward', 0, 'source')),
     'reward[0]: track_progress needs a source of kind odometry'),
    ('track_follow', _set(('reward', 0, 'term'), 'speed_bonus'),
     "reward[0].term: 'speed_bonus' is not one of"),
    ('track_follow', _set(('reward', 1, 'weight'), 'high'), 'reward[1].weight: expected a number'),
    ('track_follow', _delete(('reward', 2, 'threshold')),
     'reward[2].threshold: missing; collision requires it'),
    ('track_follow', _set(('termination', 'failure', 0, 'condition'), 'crash'),
     "termination.failure[0].condition: 'crash' is not one of"),
    ('track_follow', _set(('termination', 'success', 0, 'source'), 'scan'),
     'termination.success[0].source: lap_complete needs a odometry source'),
    ('track_follow', _delete(('termination', 'timeout_s')), 'termination.timeout_s: missing'),
    ('pendulum', _delete(('reward', 0, 'joint')),
     'reward[0].joint: missing; pendulum_cost requires it'),
    ('pendulum', _delete(('termination', 'success_at_timeout', 0, 'tolerance')),
     'termination.success_at_timeout[0].tolerance: missing; joint_near requires it'),
    ('pendulum', _set(('action', 'stamped'), True),
     'action.stamped: only a twist action can be stamped'),
    ('pendulum', _set(('observation', 'fields', 0, 'components'), ['cos', 'angle']),
     "observation.fields[0].components: 'angle' is not one of"),
    ('pendulum', _set(('observation', 'fields', 0, 'joints'), []),
     'observation.fields[0].joints: expected a non-empty list of strings'),
]


@pytest.mark.parametrize('task, mutate, message', MALFORMED,
                         ids=[f'{i}-{m[2].split(":")[0][:40]}' for i, m in enumerate(MALFORMED)])
def test_malformed_spec_names_the_key(task, mutate, message):
    raw = bundled_raw(task)
    parse_spec(copy.deepcopy(raw))  # the unbroken spec is fine
    mutate(raw)
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, origin='broken.yaml')
    text = str(caught.value)
    assert message in text
    # Every message says which spec it is about.
    assert text.startswith('broken.yaml: ')


def test_a_spec_that_is_not_a_mapping():
    with pytest.raises(SpecError, match='expected a mapping'):
        parse_spec(['name', 'track_follow'])


def test_bad_yaml_file(tmp_path):
    path = tmp_path / 'broken.yaml'
    path.write_text('name: track_follow\nsources: [scan, {topic: \n')
    with pytest.raises(SpecError) as caught:
        load_spec(str(path))
    assert str(path) in str(caught.value)
    assert 'not valid YAML' in str(caught.value)


def test_a_spec_file_is_validated_with_its_path_in_the_message(tmp_path):
    raw = bundled_raw('pendulum')
    raw['control_rate_hz'] = -5
    path = tmp_path / 'mine.yaml'
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(SpecError, match=r'mine\.yaml: control_rate_hz: expected a number > 0'):
        load_spec(str(path))


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match='no such file'):
        load_spec(str(tmp_path / 'absent.yaml'))


def test_unknown_task_lists_the_bundled_ones():
    with pytest.raises(SpecError) as caught:
        load_spec('track_folow')
    text = str(caught.value)
    assert "'track_folow'" in text
    assert 'bundled tasks: mujoco_inverted_pendulum, mujoco_reacher, pendulum, '\
        'pendulum_angle, track_follow' in text


def test_json_round_trip_keeps_the_contract():
    for task in ('track_follow', 'pendulum'):
        spec = load_spec(task)
        again = spec_from_json(spec.to_json())
        assert again.contract() == spec.contract()
        assert contract_mismatch(spec.contract(), again.contract()) == ''
    with pytest.raises(SpecError, match='stored task spec is not valid JSON'):
        spec_from_json('{not json')


def _changed(task: str, mutate):
    raw = bundled_raw(task)
    mutate(raw)
    return parse_spec(raw)


def test_contract_reports_the_first_differing_key():
    base = load_spec('track_follow').contract()
    cases = [
        (_set(('observation', 'fields', 0, 'bins'), 18),
         'observation.fields[0].bins is 18, expected 36'),
        (_set(('action', 'high'), [0.3, 2.84]), 'action.high[0] is 0.3, expected 0.22'),
        (_set(('control_rate_hz',), 20.0), 'control_rate_hz is 20.0, expected 10.0'),
        (_set(('sources', 'scan', 'topic'), 'base_scan'),
         "sources.scan.topic is 'base_scan', expected 'scan'"),
        (_set(('action', 'stamped'), False), 'action.stamped is False, expected True'),
    ]
    for mutate, expected in cases:
        assert contract_mismatch(base, _changed('track_follow', mutate).contract()) == expected


def test_contract_ignores_what_a_policy_does_not_depend_on():
    base = load_spec('track_follow').contract()
    for mutate in (_set(('reward', 0, 'weight'), 5.0),
                   _set(('termination', 'timeout_s'), 60.0),
                   _set(('description',), 'another text'),
                   _set(('robot', 'params', 'scan_noise_std'), 0.01)):
        assert contract_mismatch(base, _changed('track_follow', mutate).contract()) == ''
    # An int where a float was written is the same number.
    assert contract_mismatch(base, _changed('track_follow',
                                            _set(('control_rate_hz',), 10)).contract()) == ''


def test_contract_mismatch_between_tasks():
    track = load_spec('track_follow').contract()
    pendulum = load_spec('pendulum').contract()
    # Keys are compared in sorted order: action.fields comes first.
    assert contract_mismatch(track, pendulum) == 'action.fields has 1 entries, expected 2'
    assert contract_mismatch({'a': 1}, {'a': 1, 'b': 2}) == \
        'b is present in one spec and missing in the other'
    assert contract_mismatch({'a': 1, 'b': 2}, {'a': 1}) == \
        'b is missing in one spec and present in the other'


# Limits ------------------------------------------------------------------------------------


def _append(path: tuple, value):
    """Return a mutation that appends to the list at a key path."""
    def mutate(raw):
        node = raw
        for key in path:
            node = node[key]
        node.append(value)
    return mutate


def _many_joints(count: int):
    return _set(('observation', 'fields', 0, 'joints'), [f'j{i}' for i in range(count)])


OUT_OF_LIMITS = [
    # The probes of issue 8.
    ('track_follow', _set(('control_rate_hz',), 1e308),
     'control_rate_hz: expected a number > 0 (from 0.1 to 10000 Hz), got 1e+308'),
    ('track_follow', _set(('control_rate_hz',), 1e-300),
     'control_rate_hz: expected a number > 0 (from 0.1 to 10000 Hz), got 1e-300'),
    ('track_follow', _set(('sources', 'scan', 'topic'), 'scan//front'),
     "sources.scan.topic: 'scan//front' is not a valid ROS 2 topic name: a topic name must "
     "not contain '//'"),
    ('track_follow', _set(('action', 'topic'), 'cmd-vel'),
     "action.topic: 'cmd-vel' is not a valid ROS 2 topic name: '-' is not allowed"),
    ('track_follow', _set(('robot', 'params', 'scan_rays'), 1e9),
     'robot.params.scan_rays: expected a whole number from 1 to 8192 rays, got 1000000000.0'),
    ('track_follow', _set(('robot', 'params', 'scan_rays'), 10 ** 9),
     'robot.params.scan_rays: expected a whole number from 1 to 8192 rays, got 1000000000'),
    ('track_follow', _set(('observation', 'fields', 0, 'bins'), 1_000_000_000),
     'observation.fields[0].bins: expected a whole number from 1 to 4096 sectors, '
     'got 1000000000'),
    ('pendulum', _set(('observation', 'fields', 0, 'joints'), ['pendulum_joint'] * 2),
     "observation.fields[0].joints: entries must be unique; 'pendulum_joint' is listed 2 times"),
    # Durations.
    ('track_follow', _set(('observation', 'max_age_s'), float('inf')),
     'observation.max_age_s: expected a finite number (a number from 0.001 to 86400 s), '
     'got inf'),
    ('track_follow', _set(('observation', 'max_age_s'), 1e-300),
     'observation.max_age_s: expected a number from 0.001 to 86400 s, got 1e-300'),
    ('track_follow', _set(('observation', 'sync_tolerance_s'), -0.1),
     'observation.sync_tolerance_s: expected a number from 0 to 86400 s, got -0.1'),
    ('track_follow', _set(('termination', 'timeout_s'), 1e308),
     'termination.timeout_s: expected a number > 0 and at most 86400 s, got 1e+308'),
    ('pendulum', _set(('termination', 'success_at_timeout', 0, 'hold_s'), float('nan')),
     'termination.success_at_timeout[0].hold_s: expected a finite number'),
    # Counts are whole numbers, never floats or booleans.
    ('track_follow', _set(('observation', 'fields', 0, 'bins'), True),
     'observation.fields[0].bins: expected a whole number from 1 to 4096 sectors, got True'),
    ('track_follow', _set(('observation', 'fields', 0, 'bins'), 36.0),
     'observation.fields[0].bins: expected a whole number from 1 to 4096 sectors, got 36.0'),
    ('track_follow', _set(('control_rate_hz',), True),
     'control_rate_hz: expected a number > 0 (from 0.1 to 10000 Hz), got True'),
    # Sizes.
    ('pendulum', _many_joints(257),
     'observation.fields[0].joints: 257 entries; expected 1 to 256'),
    ('pendulum', _set(('action', 'fields'), [f'j{i}' for i in range(257)]),
     'action.fields: 257 entries; expected 1 to 256'),
    ('pendulum', _set(('observation', 'fields'), [{'source': 'joint_states', 'joints': ['a'],
                                                   'components': ['cos']}] * 65),
     'observation.fields: 65 entries; expected at most 64'),
    ('pendulum', _set(('sources',), {f's{i}': {'topic': f't{i}', 'kind': 'joint_state'}
                                     for i in range(65)}),
     'sources: 65 sources; expected at most 64'),
    ('track_follow', _set(('reward',), [{'term': 'living_cost'}] * 65),
     'reward: 65 entries; expected at most 64'),
    # Every other number is finite and within +-1e9; a scale is not vanishingly small.
    ('track_follow', _set(('action', 'low'), [-1e300, -2.84]),
     'action.low: expected numbers from -1e+09 to 1e+09, got -1e+300'),
    ('track_follow', _set(('action', 'high'), [10 ** 5000, 2.84]),
     'action.high: expected numbers from -1e+09 to 1e+09, got <a whole number of about 5000'),
    ('track_follow', _set(('observation', 'fields', 0, 'scale'), 1e-300),
     'observation.fields[0].scale: a scale of 0 (or of magnitude below 1e-09) would erase'),
    ('track_follow', _set(('observation', 'fields', 0, 'max_range'), 1e6),
     'observation.fields[0].max_range: expected a number > 0 and at most 1000 m, got 1000000.0'),
    ('track_follow', _set(('reward', 0, 'weight'), float('-inf')),
     'reward[0].weight: expected a finite number'),
    ('track_follow', _set(('reward', 2, 'threshold'), 1e10),
     'reward[2].threshold: expected a number from -1e+09 to 1e+09, got 10000000000.0'),
    # Robot params, within what the simulators can run.
    ('track_follow', _set(('robot', 'params', 'actuation_noise_std'), [0.1, 0.2, 0.3]),
     'robot.params.actuation_noise_std: expected one number or a list of 1 to 2'),
    ('track_follow', _set(('robot', 'params', 'actuation_noise_std'), [0.01, -0.3]),
     'robot.params.actuation_noise_std: expected a number from 0 to 10 m/s and rad/s, '
     'got -0.3'),
    ('track_follow', _set(('robot', 'params', 'start_max_lateral'), 0.5),
     'robot.params.start_max_lateral: expected less than half the corridor width (0.5 m)'),
    ('track_follow', _set(('robot', 'params', 'start_max_heading_error'), 7.0),
     'robot.params.start_max_heading_error: expected a number from 0 to 3.14159 rad, got 7.0'),
    ('track_follow', _set(('robot', 'params', 'scan_range_max'), 0.0),
     'robot.params.scan_range_max: expected a number from 0.01 to 1000 m, got 0.0'),
    ('track_follow', _set(('robot', 'params', 'width'), float('nan')),
     'robot.params.width: expected a finite number'),
    ('track_follow', _set(('robot', 'params', 'camera_width'), 100_000),
     'robot.params.camera_width: expected a whole number from 4 to 1024 pixels, got 100000'),
    ('track_follow', _set(('robot', 'params', 'wheel_slip'), 0.1),
     'robot.params: unknown key(s) wheel_slip; expected only actuation_noise_std'),
    ('pendulum', _set(('robot', 'params', 'g'), -9.81),
     'robot.params.g: expected a number from 0 to 100 m/s^2, got -9.81'),
    ('pendulum', _set(('robot', 'sim'), 'my_arm'), None),  # another simulator: accepted ...
    ('pendulum', lambda raw: raw['robot'].update(sim='my_arm', params={'mass': 1e300}),
     'robot.params.mass: expected a number from -1e+09 to 1e+09'),  # ... within limits
    # What YAML may hold but a spec may not.
    ('track_follow', _set(('description',), ['a', 'list']),
     "description: expected text, got ['a', 'list']"),
    ('track_follow', _set(('sources', 1), {'topic': 'x', 'kind': 'odometry'}),
     'sources: the key 1 is a int; keys must be text (quote it in YAML)'),
    ('track_follow', _set(('robot', 'params', 'track'), {1, 2}),
     'robot.params.track: {1, 2} is a set; a task spec holds only mappings, lists'),
]


@pytest.mark.parametrize('task, mutate, message', OUT_OF_LIMITS,
                         ids=[f'{i}-{(m[2] or "accepted").split(":")[0][:40]}'
                              for i, m in enumerate(OUT_OF_LIMITS)])
def test_values_beyond_the_limits_are_refused_with_key_value_and_range(task, mutate, message):
    raw = bundled_raw(task)
    mutate(raw)
    if message is None:
        parse_spec(raw)
        return
    with pytest.raises(SpecError) as caught:
        parse_spec(raw, origin='broken.yaml')
    assert message in str(caught.value)
    assert str(caught.value).startswith('broken.yaml: ')


def test_the_limits_themselves_are_accepted():
    raw = bundled_raw('track_follow')
    raw['control_rate_hz'] = 10_000
    raw['observation']['fields'][0]['bins'] = 4096
    raw['robot']['params'].update(scan_rays=8192, actuation_noise_std=[0.0, 10.0])
    raw['observation']['max_age_s'] = 86_400
    assert parse_spec(raw).observation.size == 4096 + 2
    raw['control_rate_hz'] = 0.1
    assert parse_spec(raw).dt == pytest.approx(10.0)


def test_the_observation_size_is_bounded_in_all():
    # Two 256 x 256 images fill the observation exactly; two odometry values more do not.
    raw = bundled_raw('track_follow_camera')
    image = {'source': 'camera', 'width': 256, 'height': 256}
    raw['observation']['fields'] = [image, dict(image)]
    assert parse_spec(copy.deepcopy(raw)).observation.size == OBSERVATION_MAX_SIZE
    raw['observation']['fields'].append({'source': 'odom', 'components': ['vx', 'wz']})
    with pytest.raises(SpecError, match=r'observation.fields\[2\]: adds 2 values to the '
                                        r'observation, which has room for 0 more; expected '
                                        r'at most 131072 values in all'):
        parse_spec(raw)


def test_a_huge_count_is_refused_before_anything_is_allocated():
    # bins: 1e9 once made the loader allocate 7.45 GiB for the field's scale vector.
    raw = bundled_raw('track_follow')
    raw['observation']['fields'][0]['bins'] = 1_000_000_000
    tracemalloc.start()
    try:
        with pytest.raises(SpecError, match='bins'):
            parse_spec(raw)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024


def _nested(depth: int):
    """A list nested ``depth`` levels deep, built without recursion."""
    value = 0
    for _ in range(depth):
        value = [value]
    return value


@pytest.mark.parametrize('depth', [5000, SPEC_MAX_DEPTH])
def test_deep_nesting_is_a_spec_error_in_every_form(depth):
    # 5000-deep nesting once raised RecursionError. The spec's own mapping is level 1, so a
    # list nested SPEC_MAX_DEPTH - 1 levels under a top-level key is the deepest allowed.
    raw = bundled_raw('pendulum')
    raw['extra'] = _nested(depth)
    as_json = json.dumps(bundled_raw('pendulum'))[:-1] + \
        ', "extra": ' + '[' * depth + '0' + ']' * depth + '}'
    as_yaml = yaml.safe_dump(bundled_raw('pendulum')) + \
        'extra: ' + '[' * depth + '0' + ']' * depth + '\n'
    for load in (lambda: parse_spec(raw), lambda: spec_from_json(as_json),
                 lambda: spec_from_yaml(as_yaml)):
        with pytest.raises(SpecError) as caught:
            load()
        assert f'nested more than {SPEC_MAX_DEPTH} levels deep' in str(caught.value)
    # One level less is no longer a nesting error, only an unknown key.
    raw['extra'], depth = _nested(SPEC_MAX_DEPTH - 1), SPEC_MAX_DEPTH - 1
    as_json = as_json[:as_json.index(', "extra"')] + \
        ', "extra": ' + '[' * depth + '0' + ']' * depth + '}'
    as_yaml = as_yaml[:as_yaml.index('extra: ')] + \
        'extra: ' + '[' * depth + '0' + ']' * depth + '\n'
    for load in (lambda: parse_spec(raw), lambda: spec_from_json(as_json),
                 lambda: spec_from_yaml(as_yaml)):
        with pytest.raises(SpecError, match='unknown key'):
            load()


def test_a_recursive_structure_and_an_alias_bomb_are_refused_quickly():
    loop = bundled_raw('pendulum')
    loop['extra'] = []
    loop['extra'].append(loop['extra'])
    with pytest.raises(SpecError, match='nested more than'):
        parse_spec(loop)
    with pytest.raises(SpecError, match='nested more than'):
        spec_from_yaml('a: &a [*a]\n')
    # Nine aliases of nine aliases ...: 9 ** 9 values once expanded.
    lines = ['l0: &l0 [x, x, x, x, x, x, x, x, x]']
    lines += [f'l{i}: &l{i} [' + ', '.join([f'*l{i - 1}'] * 9) + ']' for i in range(1, 9)]
    start = time.perf_counter()
    with pytest.raises(SpecError, match='holds more than 100000 values'):
        spec_from_yaml('\n'.join(lines))
    # A long text, used 200 times: 2 MB once written out as JSON.
    text = 't: &t "' + 'x' * 10_000 + '"\nu: [' + ', '.join(['*t'] * 200) + ']\n'
    with pytest.raises(SpecError, match='holds more than 1048576 characters of text'):
        spec_from_yaml(text)
    assert time.perf_counter() - start < 5.0


def test_repeated_keys_are_refused_in_yaml_and_json():
    text = (tasks_dir() / 'track_follow.yaml').read_text()
    with pytest.raises(SpecError, match=r"line \d+: the key 'timeout_s' appears twice"):
        spec_from_yaml(text + '  timeout_s: 10.0\n', origin='twice.yaml')
    with pytest.raises(SpecError, match="the key 'bins' appears twice in one object"):
        spec_from_json('{"bins": 1, "bins": 2}')
    # A YAML merge key is not a repetition.
    merged = 'base: &base {topic: scan}\nother: {<<: *base, topic: odom}\n'
    with pytest.raises(SpecError, match='unknown key|missing'):
        spec_from_yaml(merged)


@pytest.mark.parametrize('text, message', [
    ('name: 2024-01-01\n', 'name: datetime.date(2024, 1, 1) is a date'),
    ('name: !!binary aGVsbG8=\n', "the YAML tag 'tag:yaml.org,2002:binary' has no place"),
    ('name: !!set {a, b}\n', "the YAML tag 'tag:yaml.org,2002:set' has no place"),
    ('bins: !!int\n', "the YAML tag 'tag:yaml.org,2002:int' has no place"),  # IndexError
    ('name: 2024-13-01\n', 'not valid YAML: month must be in 1..12'),
    ('bins: ' + '9' * 5000 + '\n', 'not valid YAML: Exceeds the limit (4300 digits)'),
    ('on: 1\n', 'the key True is a bool; keys must be text (quote it in YAML)'),
    ('a: !!python/object:os.system {}\n', "the YAML tag 'tag:yaml.org,2002:python/object"),
    ('a: !local x\n', "the YAML tag '!local' has no place"),
    ("a: ! '1'\n", 'name: missing'),
    ('- a\n- b\n', 'expected a mapping, got list'),
    ('', 'expected a mapping, got NoneType'),
])
def test_what_yaml_holds_but_a_spec_cannot(text, message):
    with pytest.raises(SpecError) as caught:
        spec_from_yaml(text, origin='odd.yaml')
    assert message in str(caught.value)


def test_json_beyond_the_limits():
    for text, message in (('{"a": ' + '1' * 5000 + '}', 'not valid JSON: Exceeds the limit'),
                          ('[' * 100_000, 'nested more than'),
                          ('{"a": "' + '[' * 100 + '"}', 'expected a mapping|missing'),
                          (b'\xff\xfe', 'not UTF-8 text'),
                          (12, 'expected text, got int'),
                          (' ' * (spec_module.SPEC_MAX_JSON_BYTES + 1),
                           'expected at most 8388608')):
        with pytest.raises(SpecError, match=message):
            spec_from_json(text)


def test_spec_files_that_cannot_be_specs(tmp_path):
    big = tmp_path / 'big.yaml'
    big.write_bytes(b'#' * (spec_module.SPEC_MAX_BYTES + 1))
    with pytest.raises(SpecError, match='larger than 256 KiB'):
        load_spec(str(big))
    latin = tmp_path / 'latin.yaml'
    latin.write_bytes('name: caf\xe9\n'.encode('latin-1'))
    with pytest.raises(SpecError, match='not UTF-8 text'):
        load_spec(str(latin))
    folder = tmp_path / 'folder.yaml'
    folder.mkdir()
    with pytest.raises(SpecError, match='not a regular file'):
        load_spec(str(folder))
    fifo = tmp_path / 'fifo.yaml'
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match='not a regular file'):
        load_spec(str(fifo))  # refused without opening it: opening a FIFO would block
    with pytest.raises(SpecError, match='no such file'):
        load_spec('nul\x00.yaml')


@pytest.mark.parametrize('name', ['scan', '/scan', 'camera/image_raw', '/robot_1/cmd_vel',
                                  '~/status', '_private', 'a/_1', 'A' * 200])
def test_valid_topic_names(name):
    assert topic_name_error(name) == ''


@pytest.mark.parametrize('name, reason', [
    ('', 'must not be empty'),
    ('scan/', "must not end with '/'"),
    ('/', "must not end with '/'"),
    ('~/', "must not end with '/'"),
    ('a//b', "must not contain '//'"),
    ('2scan', "its part '2scan' starts with a digit"),
    ('/robot/1st', "its part '1st' starts with a digit"),
    ('~/9', "its part '9' starts with a digit"),
    ('cmd vel', "' ' is not allowed"),
    ('caf\u00e9', "'\u00e9' is not allowed"),
    ('a.b', "'.' is not allowed"),
    ('a~b', "a tilde is allowed only as the leading '~/'"),
    ('~', "a tilde is allowed only as the leading '~/'"),
    ('~scan', "a tilde is allowed only as the leading '~/'"),
    ('{node}/scan', 'substitutions such as {node} are not allowed'),
    ('A' * 201, 'it has 201 characters; a topic name here has at most 200'),
])
def test_invalid_topic_names(name, reason):
    assert reason in topic_name_error(name)


def test_bundled_specs_round_trip_through_json():
    for task in sorted(p.stem for p in tasks_dir().glob('*.yaml')):
        spec = load_spec(task)
        again = spec_from_json(spec.to_json())
        assert again.contract() == spec.contract()
        assert again.raw == spec.raw
