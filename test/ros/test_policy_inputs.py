"""The policy node over real DDS: garbage, stale input and the e-stop."""

import math
import time

from geometry_msgs.msg import Quaternion
from nav_msgs.msg import Odometry
import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState, LaserScan
from std_msgs.msg import Bool

from ilrl_ros import qos
from ilrl_ros.messages import ns_to_stamp
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.policy import Policy
from ilrl_testing import constant_checkpoint, Probe, ros_context, wait_for


class Feeder(Node):
    """Publishes hand-made sensor messages, good and bad, straight to the policy node."""

    def __init__(self, context):
        super().__init__('feeder', context=context)
        self.joints = self.create_publisher(JointState, 'joint_states', qos.SENSOR)
        self.scan = self.create_publisher(LaserScan, 'scan', qos.SENSOR)
        self.odom = self.create_publisher(Odometry, 'odom', qos.SENSOR)
        self.estop = self.create_publisher(Bool, 'e_stop', qos.COMMAND)

    def now_stamp(self, age_s=0.0):
        return ns_to_stamp(self.get_clock().now().nanoseconds - int(age_s * 1e9))

    def joint_state(self, position=0.1, velocity=0.0, names=('pendulum_joint',), age_s=0.0,
                    positions=None):
        msg = JointState()
        msg.header.stamp = self.now_stamp(age_s)
        msg.name = list(names)
        msg.position = positions if positions is not None else [position]
        msg.velocity = [velocity]
        msg.effort = [0.0]
        self.joints.publish(msg)


@pytest.fixture
def garbage_rig(tmp_path):
    plus = constant_checkpoint(tmp_path / 'plus', 'pendulum', 1.0)
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('mode', value='event'),
        Parameter('checkpoint', value=str(plus))])
    probe = Probe('pendulum', context)
    feeder = Feeder(context)
    spinner = Spinner([policy, probe, feeder], context=context).start()
    try:
        wait_for(lambda: (feeder.joint_state(), probe.commands)[1], 30,
                 'a first command for a good observation')
        time.sleep(0.3)  # let the messages published while waiting drain
        yield policy, probe, feeder
    finally:
        spinner.shutdown()
        for node in (*policy.executor_nodes, probe, feeder):
            node.destroy_node()
        context.try_shutdown()


def _after(probe, feeder, publish, settle_s=0.15):
    t0 = time.monotonic()
    publish()
    time.sleep(settle_s)
    return probe.values_since(t0)


@pytest.mark.parametrize('bad', [
    dict(position=math.nan),
    dict(velocity=math.inf),
    dict(positions=[]),                       # one name, no position: wrong size
    dict(positions=[0.1, 0.2]),               # one name, two positions: wrong size
    dict(names=('elbow',)),                   # not the joint the task reads
    dict(age_s=2.0),                          # stale: stamped 2 s ago (limit 0.25 s)
])
def test_garbage_or_stale_input_never_yields_a_command_computed_from_it(garbage_rig, bad):
    policy, probe, feeder = garbage_rig
    good = _after(probe, feeder, lambda: feeder.joint_state())
    assert len(good) and good[-1][0] == 1.0
    t0 = time.monotonic()
    # A reading older than the one held is not taken at all: the zero for it comes from the
    # watchdog once max_age_s (0.25 s) has passed without a fresh one, a tick (50 ms) later.
    values = _after(probe, feeder, lambda: feeder.joint_state(**bad),
                    settle_s=0.5 if 'age_s' in bad else 0.15)
    # The node answers garbage with a zero command (hold), never the policy's output.
    assert len(values), 'expected a zero command in answer to bad input'
    assert np.all(values == 0.0), [(round(t - t0, 3), v[0]) for t, v in probe.commands]
    assert policy.status_counts()['errors'] + policy.status_counts()['stale'] > 0
    recovered = _after(probe, feeder, lambda: feeder.joint_state())
    assert len(recovered) and np.all(recovered[-1:] == 1.0)


def test_e_stop_holds_zero_until_released(garbage_rig):
    policy, probe, feeder = garbage_rig
    _after(probe, feeder, lambda: feeder.estop.publish(Bool(data=True)))
    held = _after(probe, feeder, lambda: [feeder.joint_state(position=0.1 * i)
                                          for i in range(5)])
    assert len(held) and np.all(held == 0.0)
    _after(probe, feeder, lambda: feeder.estop.publish(Bool(data=False)))
    resumed = _after(probe, feeder, lambda: feeder.joint_state())
    assert len(resumed) and resumed[-1][0] == 1.0


def test_track_scan_with_nan_or_a_broken_quaternion_is_never_acted_on(tmp_path):
    checkpoint = constant_checkpoint(tmp_path / 'track', 'track_follow', 0.1)
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('mode', value='event'),
        Parameter('checkpoint', value=str(checkpoint))])
    probe = Probe('track_follow', context)
    feeder = Feeder(context)
    spinner = Spinner([policy, probe, feeder], context=context).start()

    def publish(nan_ranges=False, bad_quaternion=False):
        stamp = feeder.now_stamp()
        scan = LaserScan()
        scan.header.stamp = stamp
        scan.angle_min, scan.angle_increment = -math.pi, 2 * math.pi / 360
        scan.range_min, scan.range_max = 0.0, 3.5
        ranges = [1.0] * 360
        if nan_ranges:
            ranges[17] = math.nan
        scan.ranges = ranges
        odom = Odometry()
        odom.header.stamp = stamp
        odom.pose.pose.orientation = Quaternion(w=2.0 if bad_quaternion else 1.0)
        feeder.odom.publish(odom)
        feeder.scan.publish(scan)

    try:
        wait_for(lambda: (publish(), probe.commands)[1], 30, 'a first command')
        time.sleep(0.3)  # let the messages published while waiting drain
        for bad in (dict(nan_ranges=True), dict(bad_quaternion=True)):
            values = _after(probe, feeder, lambda bad=bad: publish(**bad))
            assert len(values) and np.all(values == 0.0), (bad, values)
        good = _after(probe, feeder, lambda: publish())
        assert len(good) and np.allclose(good[-1], 0.1)
    finally:
        spinner.shutdown()
        for node in (*policy.executor_nodes, probe, feeder):
            node.destroy_node()
        context.try_shutdown()


def test_timer_mode_commands_zero_once_input_goes_stale(tmp_path):
    plus = constant_checkpoint(tmp_path / 'plus', 'pendulum', 1.0)
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('mode', value='timer'),
        Parameter('control_rate_hz', value=50.0), Parameter('checkpoint', value=str(plus))])
    probe = Probe('pendulum', context)
    feeder = Feeder(context)
    spinner = Spinner([policy, probe, feeder], context=context).start()
    try:
        wait_for(lambda: (feeder.joint_state(), 1.0 in probe.values_since(0))[1], 30,
                 'a command from the policy')
        last_good = time.monotonic()
        time.sleep(0.8)
        # Within the 0.25 s age limit plus a tick the commands are the policy's; after it,
        # the node keeps commanding, and only zero.
        later = probe.values_since(last_good + 0.35)
        assert len(later) > 10
        assert np.all(later == 0.0)
    finally:
        spinner.shutdown()
        for node in (*policy.executor_nodes, probe, feeder):
            node.destroy_node()
        context.try_shutdown()
