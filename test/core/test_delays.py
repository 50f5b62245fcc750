"""Delays in process: actions applied k steps late, and the past commands in the observation."""

import copy

import gymnasium as gym
from hypothesis import given, strategies as st
import numpy as np
import pytest

from ilrl_ros.core.envs.delays import ActionHistoryObservations, DelayedActions
from ilrl_ros.core.observation import ActionHistory
from ilrl_ros.core.spec import (ACTION_HISTORY_MAX, contract_mismatch, load_spec,
                                OBSERVATION_MAX_SIZE, parse_spec, SpecError)
from ilrl_ros.core.tasks import make_env, make_simulator


def _with_history(task: str, k: int):
    raw = copy.deepcopy(load_spec(task).raw)
    raw['observation']['action_history'] = k
    return parse_spec(raw)


class _Recorder(gym.Env):
    """Records the actions it is stepped with; observes the step count."""

    observation_space = gym.spaces.Box(-np.inf, np.inf, (1,), np.float32)
    action_space = gym.spaces.Box(-10.0, 10.0, (2,), np.float32)

    def __init__(self):
        self.applied = []

    def reset(self, *, seed=None, options=None):
        self.applied = []
        return np.zeros(1, np.float32), {}

    def step(self, action):
        self.applied.append(np.array(action))
        return np.full(1, len(self.applied), np.float32), 0.0, False, False, {}


@pytest.mark.parametrize('k', [0, 1, 2, 5])
def test_delayed_actions_apply_each_action_exactly_k_steps_late(k):
    env = DelayedActions(_Recorder(), k)
    given_actions = [np.array([n + 1.0, -(n + 1.0)]) for n in range(12)]
    for _ in range(2):  # a second episode starts from zeros again
        env.reset()
        for action in given_actions:
            env.step(action)
            action += 100.0  # the wrapper kept a copy, not the caller's array
        applied = env.unwrapped.applied
        expected = [np.zeros(2)] * k + [a - 100.0 for a in given_actions[:len(given_actions) - k]]
        np.testing.assert_array_equal(np.array(applied), np.array(expected))
        assert len(env.pending()) == k
        given_actions = [a - 100.0 for a in given_actions]


def test_a_delayed_pendulum_is_the_bare_pendulum_fed_zeros_first():
    spec = load_spec('pendulum')
    delayed, bare = make_env(spec, action_delay_steps=3), make_env(spec)
    torques = np.random.default_rng(4).uniform(-2.0, 2.0, size=(40, 1))
    obs_delayed, _ = delayed.reset(seed=9)
    obs_bare, _ = bare.reset(seed=9)
    np.testing.assert_array_equal(obs_delayed, obs_bare)
    fed = [np.zeros(1)] * 3 + list(torques[:-3])
    for given_torque, late_torque in zip(torques, fed):
        np.testing.assert_array_equal(delayed.step(given_torque)[0], bare.step(late_torque)[0])
    # The task simulator's own attributes read through the wrapper.
    assert delayed.spec is spec and delayed.stamp_ns == bare.stamp_ns
    assert delayed.current_readings().keys() == bare.current_readings().keys()


@pytest.mark.parametrize('steps', [-1, 1.5, True, '2'])
def test_a_delay_that_is_not_a_whole_number_of_periods_is_refused(steps):
    with pytest.raises(ValueError, match='action_delay_steps must be a whole number'):
        make_env(load_spec('pendulum'), action_delay_steps=steps)


def test_action_history_keeps_the_last_k_commands_oldest_first_and_resets_to_zeros():
    spec = _with_history('track_follow', 3)
    history = ActionHistory(spec)
    assert history.size == 3 * spec.action.size == 6
    assert history.labels() == ['action_history.t-3.linear.x', 'action_history.t-3.angular.z',
                                'action_history.t-2.linear.x', 'action_history.t-2.angular.z',
                                'action_history.t-1.linear.x', 'action_history.t-1.angular.z']
    assert spec.observation.labels() == spec.observation.field_labels() + history.labels()
    fields = np.arange(spec.observation.fields_size, dtype=np.float32)
    np.testing.assert_array_equal(history.augment(fields)[-6:], np.zeros(6))
    for n in range(1, 5):
        history.push([0.05 * n, -0.2 * n])
    out = history.augment(fields)
    assert out.shape == (spec.observation.size,) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:fields.size], fields)
    np.testing.assert_allclose(out[fields.size:], [0.1, -0.4, 0.15, -0.6, 0.2, -0.8], rtol=1e-6)
    # A command is remembered as the robot takes it: clipped to the action bounds.
    history.push([1e3, -1e3])
    np.testing.assert_allclose(history.values()[-2:], [spec.action.high[0], spec.action.low[1]])
    history.reset()
    np.testing.assert_array_equal(history.values(), np.zeros(6))
    with pytest.raises(ValueError, match='the task expects 2'):
        history.push([1.0])
    with pytest.raises(ValueError, match=f'{spec.observation.fields_size} values'):
        history.augment(np.zeros(spec.observation.size))


def test_without_history_augment_returns_the_vector_unchanged():
    spec = load_spec('pendulum')
    history = ActionHistory(spec)
    history.push([1.0])
    vector = np.ones(spec.observation.size, np.float32)
    assert history.augment(vector) is vector
    assert history.labels() == [] and history.size == 0
    assert spec.observation.size == spec.observation.fields_size


@pytest.mark.parametrize('task', ['pendulum', 'track_follow'])
@pytest.mark.parametrize('delay', [0, 2])
def test_make_env_observations_are_the_policy_input_of_the_spec(task, delay):
    spec = _with_history(task, 2)
    env = make_env(spec, action_delay_steps=delay)
    assert env.observation_space.shape == (spec.observation.size,)
    assert make_simulator(spec).observation_space.shape == (spec.observation.fields_size,)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (spec.observation.size,) and obs.dtype == np.float32
    np.testing.assert_array_equal(obs[spec.observation.fields_size:], 0.0)
    rng = np.random.default_rng(0)
    actions = [rng.uniform(spec.action.low, spec.action.high) for _ in range(3)]
    for action in actions:
        obs = env.step(action)[0]
        assert obs.shape == (spec.observation.size,)
    # The history holds the actions given (the last two), whatever the delay to the robot.
    np.testing.assert_allclose(obs[spec.observation.fields_size:],
                               np.concatenate(actions[1:]), rtol=1e-6)
    obs, _ = env.reset(seed=1)
    np.testing.assert_array_equal(obs[spec.observation.fields_size:], 0.0)


def test_the_history_wraps_the_delay_so_the_simulator_reads_its_fields_alone():
    env = make_env(_with_history('pendulum', 1), action_delay_steps=1)
    assert isinstance(env, ActionHistoryObservations)
    assert isinstance(env.env, DelayedActions)


def test_a_checkpoint_contract_names_the_action_history():
    plain, with_two = load_spec('pendulum'), _with_history('pendulum', 2)
    assert 'action_history' not in plain.contract()['observation']
    assert 'action_history' in contract_mismatch(plain.contract(), with_two.contract())
    assert contract_mismatch(_with_history('pendulum', 0).contract(), plain.contract()) == ''


@given(st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=True), st.booleans(),
                 st.none(), st.text(max_size=5), st.lists(st.integers(0, 3), max_size=3),
                 st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_action_history_is_accepted_as_a_count_up_to_the_limit_or_refused_by_name(value):
    raw = copy.deepcopy(load_spec('track_follow').raw)
    raw['observation']['action_history'] = value
    try:
        spec = parse_spec(raw)
    except SpecError as error:
        assert 'observation.action_history' in str(error)
        assert not (type(value) is int and 0 <= value <= ACTION_HISTORY_MAX)
        return
    assert type(value) is int and 0 <= value <= ACTION_HISTORY_MAX
    assert spec.observation.action_history == value
    assert spec.observation.size == spec.observation.fields_size + 2 * value
    assert len(spec.observation.labels()) == spec.observation.size


def test_a_history_that_overflows_the_observation_is_refused_by_name():
    raw = copy.deepcopy(load_spec('track_follow').raw)
    raw['observation']['fields'][0]['bins'] = 4096
    raw['observation']['fields'].extend(copy.deepcopy(raw['observation']['fields'][:1]) * 30)
    size = parse_spec(copy.deepcopy(raw)).observation.fields_size
    last = copy.deepcopy(raw['observation']['fields'][0])
    last['bins'] = OBSERVATION_MAX_SIZE - size - 10  # room for 5 commands of 2 values
    raw['observation']['fields'].append(last)
    raw['observation']['action_history'] = 5
    assert parse_spec(copy.deepcopy(raw)).observation.size == OBSERVATION_MAX_SIZE
    raw['observation']['action_history'] = 6
    with pytest.raises(SpecError, match='observation.action_history: 6 past commands'):
        parse_spec(raw)
