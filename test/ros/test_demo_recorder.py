"""Tests of the demo_recorder node over real rclpy and DDS: in-process and as a process."""

import contextlib
import datetime
import json
import os
from pathlib import Path
import signal
import subprocess
import sys
import threading
import time

from builtin_interfaces.msg import Time
from geometry_msgs.msg import Twist
from mcap.reader import make_reader
import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Header, Int32, String
from std_srvs.srv import Trigger
import yaml

from ilrl_ros.bag import open_bag
from ilrl_ros.nodes.demo_recorder import (
    adapt_qos,
    default_bag_name,
    DemoRecorder,
    is_stricter,
    RecorderConfig,
)
from ilrl_ros.qos import COMMAND, LATCHED, SENSOR

REPO_ROOT = Path(__file__).resolve().parents[2]
RELIABLE_100 = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)


def wait_for(predicate, timeout=10.0, what='condition'):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f'timed out after {timeout} s waiting for {what}')


@contextlib.contextmanager
def spinning(context, *nodes):
    """Spin the nodes in a background thread for the duration of the block."""
    executor = SingleThreadedExecutor(context=context)
    for node in nodes:
        executor.add_node(node)
    stop = threading.Event()

    def run():
        while not stop.is_set() and context.ok():
            executor.spin_once(timeout_sec=0.05)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield executor
    finally:
        stop.set()
        thread.join(timeout=5)
        executor.shutdown()


def call(node, service, timeout=5.0):
    client = node.create_client(Trigger, service)
    try:
        assert client.wait_for_service(timeout_sec=timeout), f'{service} not available'
        response = client.call(Trigger.Request(), timeout_sec=timeout)
        assert response is not None, f'{service} did not answer'
        return response
    finally:
        node.destroy_client(client)


def recorder_params(tmp_path, topics, **extra):
    values = {'topics': topics, 'output_dir': str(tmp_path), 'bag_name': 'demo',
              'flush_interval_s': 0.2, 'discovery_period_s': 0.1, **extra}
    return [Parameter(name, value=value) for name, value in values.items()]


def test_qos_is_adapted_to_what_publishers_offer():
    assert adapt_qos([COMMAND, COMMAND]).reliability == ReliabilityPolicy.RELIABLE
    assert adapt_qos([COMMAND, SENSOR]).reliability == ReliabilityPolicy.BEST_EFFORT
    assert adapt_qos([LATCHED]).durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert adapt_qos([LATCHED, COMMAND]).durability == DurabilityPolicy.VOLATILE
    assert adapt_qos([LATCHED, COMMAND]).reliability == ReliabilityPolicy.RELIABLE
    assert is_stricter(adapt_qos([COMMAND]), adapt_qos([COMMAND, SENSOR]))
    assert is_stricter(adapt_qos([LATCHED]), adapt_qos([LATCHED, COMMAND]))
    assert not is_stricter(adapt_qos([SENSOR]), adapt_qos([COMMAND]))


def test_config_is_validated():
    with pytest.raises(ValueError, match='topics'):
        RecorderConfig(topics=())
    with pytest.raises(ValueError, match='flush_interval_s'):
        RecorderConfig(topics=('/a',), flush_interval_s=0.0)
    moment = datetime.datetime(2025, 1, 31, 14, 25, 1, tzinfo=datetime.timezone.utc)
    assert default_bag_name(moment) == 'demo_20250131T142501Z'


def test_node_without_topics_explains_what_to_pass(ros_context):
    with pytest.raises(ValueError, match='topics:='):
        DemoRecorder(context=ros_context)


def test_records_topics_and_answers_services(ros_context, tmp_path):
    helper = rclpy.create_node('helper', context=ros_context)
    latched = helper.create_publisher(String, '/latched', LATCHED)
    latched.publish(String(data='map ready'))  # before the recorder exists
    scan_pub = helper.create_publisher(LaserScan, '/scan', SENSOR)
    cmd_pub = helper.create_publisher(Twist, '/cmd_vel', COMMAND)
    statuses = []
    helper.create_subscription(String, '/demo_recorder/status',
                               lambda msg: statuses.append(json.loads(msg.data)), LATCHED)
    recorder = DemoRecorder(context=ros_context, parameter_overrides=recorder_params(
        tmp_path, ['scan', '/cmd_vel', '/latched']))
    try:
        with spinning(ros_context, recorder, helper):
            wait_for(lambda: not recorder.status()['waiting_for'], what='subscriptions')
            wait_for(lambda: min(scan_pub.get_subscription_count(),
                                 cmd_pub.get_subscription_count()) > 0, what='matched publishers')
            # The recorder asks for what the publishers offer, so every one of them is matched.
            qos = {topic: helper.get_subscriptions_info_by_topic(topic)[0].qos_profile
                   for topic in ('/scan', '/cmd_vel', '/latched')}
            assert qos['/scan'].reliability == ReliabilityPolicy.BEST_EFFORT
            assert qos['/cmd_vel'].reliability == ReliabilityPolicy.RELIABLE
            assert qos['/cmd_vel'].durability == DurabilityPolicy.VOLATILE
            assert qos['/latched'].durability == DurabilityPolicy.TRANSIENT_LOCAL
            for i in range(10):
                scan_pub.publish(LaserScan(ranges=[float(i), 2.0 * i]))
                twist = Twist()
                twist.linear.x = 0.5 * i
                cmd_pub.publish(twist)
                time.sleep(0.005)
            expected = {'/scan': 10, '/cmd_vel': 10, '/latched': 1}
            wait_for(lambda: recorder.status()['counts'] == expected, what='all messages')
            wait_for(lambda: statuses and statuses[-1]['counts'] == expected, what='status')
            bag_path = str((tmp_path / 'demo').resolve())
            assert statuses[-1]['recording'] and statuses[-1]['bag'] == bag_path

            stopped = call(helper, '/demo_recorder/stop')
            assert stopped.success and bag_path in stopped.message
            assert '21 messages' in stopped.message and '/scan: 10' in stopped.message
            wait_for(lambda: not statuses[-1]['recording'], what='idle status')
            again = call(helper, '/demo_recorder/stop')
            assert not again.success and 'Not recording' in again.message

            started = call(helper, '/demo_recorder/start')
            assert started.success and started.message == str((tmp_path / 'demo_1').resolve())
            refused = call(helper, '/demo_recorder/start')
            assert not refused.success and 'Already recording' in refused.message
            wait_for(lambda: recorder.status()['counts'].get('/latched') == 1,
                     what='latched message in the second bag')
            assert call(helper, '/demo_recorder/stop').success
    finally:
        recorder.destroy_node()
        helper.destroy_node()

    reader = open_bag(tmp_path / 'demo')
    assert not reader.truncated
    assert {name: info.count for name, info in reader.topics.items()} == expected
    scans = [reader.deserialize(m) for m in reader.messages(['/scan'])]
    assert [list(scan.ranges) for scan in scans] == [[float(i), 2.0 * i] for i in range(10)]
    assert [reader.deserialize(m).linear.x for m in reader.messages(['/cmd_vel'])] == [
        0.5 * i for i in range(10)]
    assert [reader.deserialize(m).data for m in reader.messages(['/latched'])] == ['map ready']
    times = [m.log_time_ns for m in reader.messages()]
    assert times == sorted(times) and abs(times[-1] - time.time_ns()) < 60e9
    info = yaml.safe_load((tmp_path / 'demo' / 'metadata.yaml').read_text())
    offered = {t['topic_metadata']['name']: t['topic_metadata']['offered_qos_profiles'][0]
               for t in info['rosbag2_bagfile_information']['topics_with_message_count']}
    assert offered['/scan']['reliability'] == 'best_effort'
    assert offered['/latched']['durability'] == 'transient_local'
    assert open_bag(tmp_path / 'demo_1').topics['/latched'].count == 1
    # The publisher's source timestamp is kept as the MCAP publish time.
    with open(tmp_path / 'demo' / 'demo_0.mcap', 'rb') as stream:
        delays = [message.log_time - message.publish_time
                  for _, _, message in make_reader(stream).iter_messages(topics=['/cmd_vel'])]
    assert len(delays) == 10 and all(0 <= delay < 5e9 for delay in delays)


def test_late_topics_are_picked_up_and_type_conflicts_reported(ros_context, tmp_path):
    helper = rclpy.create_node('helper', context=ros_context)
    recorder = DemoRecorder(context=ros_context, parameter_overrides=recorder_params(
        tmp_path, ['/late', '/mixed']))
    # A second participant: DDS will not give one participant a topic with two types.
    other_context = rclpy.Context()
    rclpy.init(context=other_context)
    other = rclpy.create_node('other', context=other_context)
    try:
        with spinning(ros_context, recorder, helper):
            assert recorder.status()['waiting_for'] == ['/late', '/mixed']
            helper.create_publisher(String, '/mixed', COMMAND)
            other.create_publisher(Int32, '/mixed', COMMAND)
            late = helper.create_publisher(Int32, '/late', COMMAND)
            wait_for(lambda: late.get_subscription_count() > 0, what='late topic subscribed')
            wait_for(lambda: 'several types' in recorder.status()['problems'].get('/mixed', ''),
                     what='type conflict report')
            assert recorder.status()['waiting_for'] == ['/mixed']
            for i in range(3):
                late.publish(Int32(data=i))
            wait_for(lambda: recorder.status()['counts'] == {'/late': 3}, what='late messages')
    finally:
        recorder.destroy_node()
        helper.destroy_node()
        other.destroy_node()
        rclpy.try_shutdown(context=other_context)
    reader = open_bag(tmp_path / 'demo')
    assert [reader.deserialize(m).data for m in reader.messages()] == [0, 1, 2]


def test_log_time_follows_sim_time(ros_context, tmp_path):
    helper = rclpy.create_node('helper', context=ros_context)
    clock_pub = helper.create_publisher(Clock, '/clock', 10)
    chatter = helper.create_publisher(String, '/chatter', COMMAND)
    recorder = DemoRecorder(context=ros_context, parameter_overrides=recorder_params(
        tmp_path, ['/chatter'], use_sim_time=True))
    sim_ns = 42_000_000_123
    try:
        with spinning(ros_context, recorder, helper):
            def clock_reached():
                clock_pub.publish(Clock(clock=Time(sec=42, nanosec=123)))
                return recorder.get_clock().now().nanoseconds == sim_ns

            wait_for(clock_reached, what='sim time')
            wait_for(lambda: chatter.get_subscription_count() > 0, what='subscription')
            chatter.publish(String(data='at 42 s'))
            wait_for(lambda: recorder.status()['message_count'] == 1, what='message')
    finally:
        recorder.destroy_node()
        helper.destroy_node()
    (message,) = open_bag(tmp_path / 'demo').messages()
    assert message.log_time_ns == sim_ns


@contextlib.contextmanager
def recorder_process(tmp_path, *parameters):
    """Run demo_recorder as its own process; it is always killed at the end."""
    ros_args = [arg for parameter in parameters for arg in ('-p', parameter)]
    log_path = tmp_path / 'recorder.log'
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            [sys.executable, '-m', 'ilrl_ros.nodes.demo_recorder', '--ros-args', *ros_args],
            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, 'PYTHONPATH': str(REPO_ROOT), 'PYTHONUNBUFFERED': '1'})
        try:
            yield process, log_path
        finally:
            if process.poll() is None:
                process.kill()
            process.wait(timeout=10)


def stamp_ns(stamp):
    return stamp.sec * 1_000_000_000 + stamp.nanosec


def test_sigkill_loses_at_most_the_last_flush_interval(ros_context, tmp_path):
    flush_interval_s = 0.5
    node = rclpy.create_node('sequence_publisher', context=ros_context)
    publisher = node.create_publisher(Header, '/seq', RELIABLE_100)
    sent = {}
    try:
        with recorder_process(tmp_path, 'topics:=[/seq]', f'output_dir:={tmp_path}',
                              'bag_name:=killed', f'flush_interval_s:={flush_interval_s}',
                              'discovery_period_s:=0.1') as (process, log_path):
            wait_for(lambda: publisher.get_subscription_count() > 0 or process.poll(),
                     timeout=30, what='the recorder process to subscribe')
            assert process.poll() is None, log_path.read_text()
            start = time.monotonic()
            for seq in range(300):  # 100 Hz for 3 s
                now = time.time_ns()
                message = Header(frame_id=str(seq))
                message.stamp.sec, message.stamp.nanosec = divmod(now, 1_000_000_000)
                publisher.publish(message)
                sent[seq] = now
                time.sleep(max(0.0, start + (seq + 1) * 0.01 - time.monotonic()))
            kill_ns = time.time_ns()
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
    finally:
        node.destroy_node()

    reader = open_bag(tmp_path / 'killed')
    assert reader.truncated
    received = [reader.deserialize(m) for m in reader.messages(['/seq'])]
    sequence = [int(header.frame_id) for header in received]
    assert sequence == sorted(set(sequence)), 'messages out of order or duplicated'
    # Not corrupted: every message is exactly what was sent under its sequence number.
    assert all(stamp_ns(header.stamp) == sent[int(header.frame_id)] for header in received)
    threshold = kill_ns - 1.5 * flush_interval_s * 1e9
    must_have = {seq for seq, sent_ns in sent.items() if sent_ns < threshold}
    assert len(must_have) > 200
    missing = sorted(must_have - set(sequence))
    assert not missing, f'{len(missing)} messages older than the last flush were lost'
    info = yaml.safe_load((tmp_path / 'killed' / 'metadata.yaml').read_text())
    assert info['rosbag2_bagfile_information']['message_count'] <= len(sequence)


@pytest.mark.parametrize('signum', [signal.SIGINT, signal.SIGTERM])
def test_sigint_and_sigterm_close_the_bag(ros_context, tmp_path, signum):
    node = rclpy.create_node('sequence_publisher', context=ros_context)
    publisher = node.create_publisher(Header, '/seq', RELIABLE_100)
    statuses = []
    node.create_subscription(String, '/demo_recorder/status',
                             lambda msg: statuses.append(json.loads(msg.data)), LATCHED)
    try:
        with spinning(ros_context, node), recorder_process(
                tmp_path, 'topics:=[/seq]', f'output_dir:={tmp_path}', 'bag_name:=clean',
                'flush_interval_s:=5.0') as (process, log_path):
            wait_for(lambda: publisher.get_subscription_count() > 0 or process.poll(),
                     timeout=30, what='the recorder process to subscribe')
            assert process.poll() is None, log_path.read_text()
            for seq in range(50):
                publisher.publish(Header(frame_id=str(seq)))
                time.sleep(0.005)
            wait_for(lambda: statuses and statuses[-1]['counts'].get('/seq') == 50,
                     what='the recorder to receive everything')
            process.send_signal(signum)
            assert process.wait(timeout=10) == 0, log_path.read_text()
    finally:
        node.destroy_node()
    reader = open_bag(tmp_path / 'clean')
    assert not reader.truncated  # footer and summary were written
    assert [int(reader.deserialize(m).frame_id) for m in reader.messages()] == list(range(50))
    info = yaml.safe_load((tmp_path / 'clean' / 'metadata.yaml').read_text())
    assert info['rosbag2_bagfile_information']['message_count'] == 50
