"""Task specs: the bundled specs load, malformed specs are refused by key path, contracts."""

import copy

import numpy as np
import pytest
import yaml

from ilrl_ros.core.spec import (
    contract_mismatch,
    load_spec,
    parse_spec,
    spec_from_json,
    SpecError,
    tasks_dir,
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
     'observation.fields[0].bins: expected a whole number >= 1'),
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
    assert 'bundled tasks: pendulum, track_follow' in text


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
