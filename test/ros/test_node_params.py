"""Node parameters from one schema per node, and rclpy's on-set / post-set pattern.

Each parameter is declared with its range (``ros2 param describe`` shows it), checked at
start-up and at runtime; the policy validates a checkpoint on-set and swaps it post-set.
"""

import math

from hypothesis import given, strategies as st
import pytest
from rclpy.parameter import Parameter

from ilrl_ros.nodes.common import SYNC_TOLERANCE
from ilrl_ros.nodes.episode_manager import EpisodeManager
from ilrl_ros.nodes.expert import Expert
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_ros.nodes.params import Param
from ilrl_ros.nodes.policy import PARAMETERS as POLICY_PARAMETERS, Policy
from ilrl_testing import constant_checkpoint


def param(schema, name):
    (found,) = [p for p in schema if p.name == name]
    return found


RATE = param(POLICY_PARAMETERS, 'control_rate_hz')


@pytest.mark.parametrize('value, allowed', [
    (0.0, True), (0.1, True), (500.0, True), (10000.0, True), (0.05, False), (1e308, False),
    (-1.0, False), (math.inf, False), (math.nan, False), (True, False)])
def test_a_range_with_a_special_value(value, allowed):
    problem = RATE.problem(value)
    assert (problem is None) == allowed
    if problem:
        assert problem.startswith(f'parameter control_rate_hz is {value!r}; expected a number '
                                  'from 0.1 to 10000 or 0.0')


def test_choices_and_whole_numbers_are_stated_in_the_refusal():
    mode = param(POLICY_PARAMETERS, 'mode')
    assert mode.problem('event') is None
    assert mode.problem('bogus') == "parameter mode is 'bogus'; expected one of 'timer', 'event'"
    count = Param('max_episodes', 0, 'n', low=0, high=10)
    assert 'a whole number from 0 to 10' in count.problem(11)


@given(st.one_of(st.floats(allow_nan=True), st.integers(), st.booleans(), st.text()))
def test_a_value_is_either_allowed_or_refused_with_its_name(value):
    for schema_param in (RATE, SYNC_TOLERANCE, param(POLICY_PARAMETERS, 'status_period_s')):
        problem = schema_param.problem(value)
        assert problem is None or problem.startswith(f'parameter {schema_param.name} is ')


def test_ranges_are_declared_for_ros2_param_describe(ros_context):
    policy = Policy(context=ros_context, parameter_overrides=[
        Parameter('task', value='pendulum')])
    try:
        (descriptor,) = policy.describe_parameters(['status_period_s'])
        assert descriptor.floating_point_range[0].from_value == 0.01
        assert descriptor.read_only
        assert 'a number from 0.01 to 3600' in descriptor.additional_constraints
        (rate,) = policy.describe_parameters(['control_rate_hz'])
        assert 'or 0.0' in rate.additional_constraints   # checked by the schema, not by rcl
    finally:
        for node in policy.executor_nodes:
            node.destroy_node()


@pytest.mark.parametrize('node_class, name, value, message', [
    (Policy, 'control_rate_hz', 1e308, 'parameter control_rate_hz is 1e+308'),
    (Policy, 'mode', 'fast', "parameter mode is 'fast'; expected one of 'timer', 'event'"),
    (MockRobot, 'real_time_factor', 0.0, 'parameter real_time_factor'),
    (MockRobot, 'clock', 'gps', "parameter clock is 'gps'"),
    (EpisodeManager, 'max_episodes', -3, 'parameter max_episodes'),
    (Expert, 'sync_tolerance_s', -5.0, 'parameter sync_tolerance_s'),
])
def test_a_start_up_value_out_of_range_is_refused_with_the_name(ros_context, node_class, name,
                                                               value, message):
    with pytest.raises(ValueError, match=message.replace('(', r'\(').replace('+', r'\+')):
        node_class(context=ros_context, parameter_overrides=[
            Parameter('task', value='pendulum'), Parameter(name, value=value)])


def test_a_refused_checkpoint_changes_nothing_and_a_good_one_is_swapped_after_it_is_set(
        ros_context, tmp_path):
    good = constant_checkpoint(tmp_path / 'good', 'pendulum', 1.0)
    other = constant_checkpoint(tmp_path / 'other', 'track_follow', 0.1)
    policy = Policy(context=ros_context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('checkpoint', value=str(good))])
    try:
        (result,) = policy.set_parameters([Parameter('checkpoint', value=str(other))])
        assert not result.successful and "trained for task 'track_follow'" in result.reason
        assert policy.get_parameter('checkpoint').value == str(good)
        assert policy.current_checkpoint == good
        assert policy.status_counts()['refused'] == 1
        again = constant_checkpoint(tmp_path / 'again', 'pendulum', -1.0)
        (result,) = policy.set_parameters([Parameter('checkpoint', value=str(again))])
        assert result.successful
        assert policy.current_checkpoint == again
        assert policy.status_counts()['swaps'] == 2
        (result,) = policy.set_parameters([Parameter('checkpoint', value='')])
        assert result.successful and policy.current_checkpoint is None
    finally:
        for node in policy.executor_nodes:
            node.destroy_node()


def test_a_runtime_change_is_checked_before_the_nodes_own_callback(ros_context):
    expert = Expert(context=ros_context, parameter_overrides=[
        Parameter('task', value='pendulum')])
    try:
        (result,) = expert.set_parameters([Parameter('noise_seed', value=5)])
        assert not result.successful   # read-only
        (result,) = expert.set_parameters([Parameter('drive', value=True)])
        assert result.successful and expert.drive
    finally:
        expert.destroy_node()
