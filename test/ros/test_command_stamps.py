"""Effort commands name the observation they answer (layout label), so conversion loses none."""

import threading
import time

from hypothesis import given, settings, strategies as st
import numpy as np
from rclpy.node import Node
from rclpy.parameter import Parameter
import pytest
from sensor_msgs.msg import JointState
from std_msgs.msg import Float64MultiArray, MultiArrayDimension

from ilrl_ros import qos
from ilrl_ros.convert import bag_to_dataset
from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.messages import (action_from_message, action_message, command_stamp_ns,
                               STAMP_LABEL, stamp_to_ns)
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_testing import ros_context, wait_for

PENDULUM = load_spec('pendulum')
REACHER = load_spec('mujoco_reacher')
INT64_MAX = 2 ** 63 - 1


def effort(values, dims=()):
    msg = Float64MultiArray()
    msg.data = [float(v) for v in values]
    msg.layout.dim = [MultiArrayDimension(label=label, size=size, stride=size)
                      for label, size in dims]
    return msg


@pytest.mark.parametrize('stamp_ns', [1, 1_500_000_000, 1796577940162372808, INT64_MAX])
def test_an_effort_command_carries_its_stamp_and_reads_back_unchanged(stamp_ns):
    action = np.array([0.25, -1.5])
    msg = action_message(REACHER.action, action, stamp_ns)
    # One dimension describing the data, as ros2_control's forward controller ignores it.
    assert [(d.label, d.size, d.stride) for d in msg.layout.dim] == [
        (f'stamp_ns={stamp_ns}', 2, 2)]
    assert command_stamp_ns(REACHER.action, msg) == stamp_ns
    np.testing.assert_array_equal(action_from_message(REACHER.action, msg), action)


def test_an_unstamped_effort_command_is_read_as_before():
    assert action_message(PENDULUM.action, np.array([0.5])).layout.dim == []
    assert command_stamp_ns(PENDULUM.action, effort([0.5])) is None
    # Layout labels that claim no stamp (a driver naming its joints) are not stamps.
    named = effort([0.5], [('joint1', 1)])
    assert command_stamp_ns(PENDULUM.action, named) is None
    assert action_from_message(PENDULUM.action, named).tolist() == [0.5]


def _malformed_layouts():
    stamp = st.integers(1, INT64_MAX)
    bad_value = st.one_of(
        st.text(max_size=12).filter(lambda t: not (t.isascii() and t.isdigit()
                                                   and t[:1] not in ('', '0'))),
        st.integers(0, 9).map(lambda d: f'0{d}'),                 # leading zero
        st.integers(INT64_MAX + 1, 10 ** 30).map(str),             # beyond int64
        st.integers(-10 ** 12, 0).map(str))                        # zero or negative
    label_claims = st.one_of(
        bad_value.map(lambda v: f'{STAMP_LABEL}{v}'),
        stamp.map(lambda s: f'stamp_ns:{s}'),                      # wrong separator
        stamp.map(lambda s: f' stamp_ns={s}'),                     # not at the start
        stamp.map(lambda s: f'STAMP_NS={s}'))                      # wrong case
    one_bad_label = st.tuples(label_claims, st.just(1)).map(lambda d: [d])
    wrong_size = st.tuples(stamp.map(lambda s: f'{STAMP_LABEL}{s}'),
                           st.integers(0, 2 ** 32 - 1).filter(lambda n: n != 1)).map(
                               lambda d: [d])
    extra_dim = st.tuples(stamp.map(lambda s: f'{STAMP_LABEL}{s}'),
                          st.text(max_size=8)).map(lambda d: [(d[0], 1), (d[1], 1)])
    return st.one_of(one_bad_label, wrong_size, extra_dim)


@settings(max_examples=200, deadline=None)
@given(dims=_malformed_layouts())
def test_a_layout_that_claims_a_stamp_unreadably_is_refused_with_the_expected_form(dims):
    msg = effort([0.5], dims)
    with pytest.raises(ValueError) as stamp_error:
        command_stamp_ns(PENDULUM.action, msg)
    text = str(stamp_error.value)
    assert "'effort_controller/commands'" in text and 'stamp_ns=<ns>' in text
    # The command itself is refused too: the robot and the converter never guess its pairing.
    with pytest.raises(ValueError, match='stamp_ns=<ns>'):
        action_from_message(PENDULUM.action, msg)


@settings(max_examples=200, deadline=None)
@given(dims=st.lists(st.tuples(st.text(max_size=30), st.integers(0, 2 ** 32 - 1)),
                     max_size=3),
       values=st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=1,
                       max_size=3))
def test_reading_a_stamp_is_total_over_any_layout(dims, values):
    # Whatever a publisher puts in the layout: a stamp, None, or a ValueError, nothing else.
    try:
        stamp = command_stamp_ns(PENDULUM.action, effort(values, dims))
    except ValueError:
        return
    assert stamp is None or 1 <= stamp <= INT64_MAX


class Commander(Node):
    """Answers the lock-step pendulum's observations with the command a test chooses."""

    def __init__(self, context):
        super().__init__('commander', context=context)
        self.lock = threading.Lock()
        self.stamps = []
        self.pub = self.create_publisher(Float64MultiArray, PENDULUM.action.topic, qos.COMMAND)
        self.create_subscription(JointState, 'joint_states', self._on_state, qos.SENSOR_EVERY)

    def _on_state(self, msg) -> None:
        with self.lock:
            stamp = stamp_to_ns(msg.header.stamp)
            if not self.stamps or self.stamps[-1] != stamp:
                self.stamps.append(stamp)

    def new_observation(self, after: int, what: str) -> int:
        return wait_for(lambda: self.stamps[-1] if len(self.stamps) > after else None, 10, what)


def test_the_lock_step_robot_steps_on_unstamped_and_matching_commands_only():
    context = ros_context()
    robot = MockRobot(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('mode', value='lock_step')])
    commander = Commander(context)
    spinner = Spinner([robot, commander], context=context).start()
    try:
        wait_for(lambda: commander.pub.get_subscription_count() > 0 and commander.stamps, 10,
                 'the robot to hear commands and publish its first observation')
        first = commander.stamps[-1]
        # An unstamped effort command (a driver stack, an old script) steps it, as ever.
        commander.pub.publish(effort([0.1]))
        second = commander.new_observation(1, 'a step after an unstamped command')
        assert second > first
        # A command stamped for another observation is stale; a malformed stamp is refused.
        commander.pub.publish(action_message(PENDULUM.action, np.array([0.1]), first))
        commander.pub.publish(effort([0.1], [(f'{STAMP_LABEL}x', 1)]))
        time.sleep(0.5)
        assert commander.stamps[-1] == second and robot.steps == 1
        commander.pub.publish(action_message(PENDULUM.action, np.array([0.1]), second))
        assert commander.new_observation(2, 'a step after the matching command') > second
    finally:
        spinner.shutdown()
        for node in (robot, commander):
            node.destroy_node()
        context.try_shutdown()


def test_a_lock_step_pendulum_recording_converts_with_one_row_per_step(tmp_path):
    # Before effort commands carried their stamp, ~a fifth of these rows were dropped as
    # "a second command for the same observation" (paired by arrival, which cannot tell).
    config = GraphConfig(task='pendulum', expert_drive=True, record=True,
                         bag_dir=str(tmp_path), bag_name='pendulum', max_episodes=1)
    graph = Graph(config).start()
    manager = graph.nodes['episode_manager']
    try:
        wait_for(lambda: manager.results and manager.state != 'running', 30, 'one episode')
    finally:
        graph.close()
    data, report = bag_to_dataset(tmp_path / 'pendulum', PENDULUM)
    steps = manager.results[0].length
    assert report.anchored['log'] == 0
    assert 'a second command for the same observation' not in report.dropped
    assert report.rows == len(data.actions) == steps == 200
