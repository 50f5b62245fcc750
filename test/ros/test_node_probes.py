"""The probes that used to kill the policy node, sent to a running policy process over DDS.

A policy process (timer and event mode) runs a task that reads a JointState and an Odometry.
A feeder publishes good input at 50 Hz and, one at a time, the probes: a joint position of
inf, a quaternion of 1e200, joints named twice, a reading stamped 3600 s in the future.
The process must stay alive, command only zero or the policy's own in-bounds value, answer
each probe with zero and recover when good input returns; when the feed stops it must go
to zero (event mode too); on SIGINT it must exit 0, without a traceback, after a zero
command.
"""

import json
import math
from pathlib import Path
import threading
import time

import numpy as np
import pytest
from nav_msgs.msg import Odometry
from rclpy.node import Node
from sensor_msgs.msg import JointState
from std_msgs.msg import String
import yaml

from ilrl_ros import qos
from ilrl_ros.messages import ns_to_stamp
from ilrl_ros.nodes.common import Spinner
from ilrl_testing import (constant_checkpoint, node_process, Probe, REPO, ros_context,
                          stop_process, wait_for)

VALUE = 1.5  # what the checkpoint commands on every good observation (bounds: +/-2)


def pendulum_with_odometry(path: Path) -> Path:
    """The pendulum task reading odometry too, so one node has both kinds of probe."""
    spec = yaml.safe_load((REPO / 'config/tasks/pendulum.yaml').read_text())
    spec['name'] = 'pendulum_odom'
    spec['sources']['odom'] = {'topic': 'odom', 'kind': 'odometry'}
    spec['observation']['fields'].append({'source': 'odom', 'components': ['vx']})
    path.write_text(yaml.safe_dump(spec))
    return path


class Feeder(Node):
    """Good joint states and odometry at 50 Hz, stamped together; probes replace one message."""

    def __init__(self, context):
        super().__init__('probe_feeder', context=context)
        self.joints = self.create_publisher(JointState, 'joint_states', qos.SENSOR)
        self.odom = self.create_publisher(Odometry, 'odom', qos.SENSOR)
        self.feeding = True
        self.probe = None
        self._lock = threading.Lock()
        self.status = {}
        self.create_subscription(String, 'policy/status', self._on_status, qos.LATCHED)
        self.create_timer(0.02, self._tick)

    def _on_status(self, msg):
        self.status = json.loads(msg.data)

    def send_probe(self, probe) -> None:
        with self._lock:
            self.probe = probe

    def _tick(self):
        if not self.feeding:
            return
        now = self.get_clock().now().nanoseconds
        joints = JointState(name=['pendulum_joint'], position=[0.3], velocity=[0.0])
        odom = Odometry()
        odom.pose.pose.orientation.w = 1.0
        odom.twist.twist.linear.x = 0.1
        joints.header.stamp = odom.header.stamp = ns_to_stamp(now)
        with self._lock:
            probe, self.probe = self.probe, None
        if probe is not None:
            probe(joints, odom)
        self.joints.publish(joints)
        self.odom.publish(odom)


def inf_position(joints, odom):
    joints.position = [math.inf]


def huge_quaternion(joints, odom):
    odom.pose.pose.orientation.z = 1e200


def duplicate_joints(joints, odom):
    joints.name = ['pendulum_joint', 'pendulum_joint']
    joints.position = [0.3, 2.0]
    joints.velocity = [0.0, 0.0]


def far_future(joints, odom):
    stamp = joints.header.stamp
    joints.header.stamp = ns_to_stamp(stamp.sec * 10**9 + stamp.nanosec + 3600 * 10**9)


PROBES = [(inf_position, 'position is inf'), (huge_quaternion, 'beyond +/-1e+06'),
          (duplicate_joints, 'more than once'), (far_future, 'ahead of this node')]


@pytest.mark.slow
@pytest.mark.parametrize('mode', ['timer', 'event'])
def test_a_running_policy_survives_the_probes_commands_zero_and_recovers(tmp_path, mode):
    task = pendulum_with_odometry(tmp_path / 'pendulum_odom.yaml')
    checkpoint = constant_checkpoint(tmp_path / 'constant', str(task), VALUE)
    log_path = tmp_path / 'policy.log'
    context = ros_context()
    probe = Probe(str(task), context)
    feeder = Feeder(context)
    spinner = Spinner([probe, feeder], context=context).start()
    with open(log_path, 'wb') as log:
        process = node_process('policy', f'task:={task}', f'mode:={mode}',
                               'control_rate_hz:=50.0', f'checkpoint:={checkpoint}', log=log)
        try:
            wait_for(lambda: VALUE in probe.values_since(0), 60, 'the policy commanding')
            for send, reason in PROBES:
                t0 = time.monotonic()
                # The probe goes out again each half second until the policy reports it: a
                # best-effort sample can be lost on the way, and in event mode a bad odometry
                # sample can be replaced by the next good one before a joint state uses it.
                deadline = t0 + 10
                while reason not in feeder.status.get('last_error', ''):
                    assert time.monotonic() < deadline, f'the policy to report {reason!r}'
                    feeder.send_probe(send)
                    wait_for(lambda: feeder.probe is None, 5, 'the probe to go out')
                    time.sleep(0.5)
                time.sleep(0.3)
                answered = probe.values_since(t0)
                assert process.poll() is None, f'the policy died on {send.__name__}'
                assert 0.0 in answered, f'no zero command answered {send.__name__}'
                assert answered[-1][0] == VALUE, f'no recovery after {send.__name__}'
            # The feed stops: zero within the 0.25 s age limit and a tick, in both modes.
            feeder.feeding = False
            stopped = time.monotonic()
            time.sleep(0.8)
            after = probe.values_since(stopped + 0.35)
            assert len(after) and np.all(after == 0.0), after
            wait_for(lambda: feeder.status.get('state') == 'stale', 5, 'state stale')
            everything = np.array([v for _, v in probe.commands])
            assert set(np.unique(everything)) <= {0.0, VALUE}, np.unique(everything)
            feeder.feeding = True
            wait_for(lambda: probe.values_since(time.monotonic() - 0.1).tolist()[-1:] ==
                     [[VALUE]], 10, 'commands again after the feed resumed')
            stop_process(process)
            assert process.returncode == 0
            time.sleep(0.3)
            assert probe.commands[-1][1][0] == 0.0, 'the last command was not zero'
        finally:
            stop_process(process)
            spinner.shutdown()
            for node in (probe, feeder):
                node.destroy_node()
            context.try_shutdown()
    output = log_path.read_text()
    assert 'Traceback' not in output, output[-3000:]
