"""The mock robot looks like a driver: stamped, framed sensor topics, /clock, a reset service."""

import json
import time

import numpy as np
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Float32MultiArray, Float64, String
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.core.observation import extract_observation
from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.messages import reading_from_message, stamp_to_ns
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_testing import Probe, ros_context, wait_for


class Listener(Node):
    def __init__(self, context):
        super().__init__('listener', context=context)
        self.scans, self.odoms, self.clocks, self.observations, self.returns = [], [], [], [], []
        self.create_subscription(LaserScan, 'scan', self.scans.append, qos.SENSOR_EVERY)
        self.create_subscription(Odometry, 'odom', self.odoms.append, qos.SENSOR_EVERY)
        self.create_subscription(Clock, '/clock', lambda m: self.clocks.append(
            (time.monotonic(), stamp_to_ns(m.clock))), qos.SENSOR_EVERY)
        self.create_subscription(Float32MultiArray, 'observation', self.observations.append,
                                 qos.SENSOR_EVERY)
        self.create_subscription(Float64, 'return', self.returns.append, qos.COMMAND)
        self.terms = []
        self.create_subscription(String, 'reward/terms',
                                 lambda m: self.terms.append(json.loads(m.data)), qos.COMMAND)
        self.reset = self.create_client(Trigger, 'mock_robot/reset')


def test_free_running_robot_publishes_stamped_framed_sensors_and_a_fast_clock():
    context = ros_context()
    robot = MockRobot(context=context, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('mode', value='free_run'),
        Parameter('clock', value='sim'), Parameter('real_time_factor', value=4.0)])
    listener = Listener(context)
    spinner = Spinner([robot, listener], context=context).start()
    try:
        wait_for(lambda: len(listener.clocks) > 60, 30, '/clock messages')
        scan, odom = listener.scans[-1], listener.odoms[-1]
        assert scan.header.frame_id == 'base_scan' and len(scan.ranges) == 360
        assert odom.header.frame_id == 'odom' and odom.child_frame_id == 'base_link'
        assert stamp_to_ns(scan.header.stamp) > 0
        # Simulated time runs 4x faster than the wall clock.
        (w0, s0), (w1, s1) = listener.clocks[10], listener.clocks[-1]
        assert 2.5 < (s1 - s0) / 1e9 / (w1 - w0) < 5.0
        # The reset answers with the first stamp of the new episode, as JSON.
        wait_for(listener.reset.service_is_ready, 10, 'the reset service')
        future = listener.reset.call_async(Trigger.Request())
        response = wait_for(lambda: future.result() if future.done() else None, 10, 'reset')
        assert response.success
        answer = json.loads(response.message)
        assert answer['stamp_ns'] >= s1 and answer['episode'] == 2
    finally:
        spinner.shutdown()
        for node in (robot, listener):
            node.destroy_node()
        context.try_shutdown()


def _odometry_of_a_lock_step_run(steps: int):
    graph = Graph(GraphConfig(task='track_follow', expert_drive=True, seed=7))
    listener = Listener(graph.context)
    probe = Probe('track_follow', graph.context)
    graph.add_node(listener)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: any(e['event'] == 'start' for e in list(probe.events)), 60,
                 'the first episode to start')
        start_ns = [e for e in list(probe.events) if e['event'] == 'start'][0]['stamp_ns']
        wait_for(lambda: sum(stamp_to_ns(o.header.stamp) >= start_ns
                             for o in list(listener.odoms)) > steps + 20, 60,
                 f'{steps} lock-step steps')
        observations = list(listener.observations)
        scans = list(listener.scans)
        odoms = list(listener.odoms)
    return odoms, scans, observations, start_ns


def test_lock_step_runs_are_deterministic_and_the_observation_node_matches_the_core():
    first, scans, observations, start_a = _odometry_of_a_lock_step_run(80)
    second, _, _, start_b = _odometry_of_a_lock_step_run(80)
    # Compare the episodes from their start (the episode manager's start-up reset): the
    # expert may drive the robot a few steps before that reset, so the sim time at which
    # the episode starts differs from run to run; what follows it must not.
    def track(odoms, start_ns):
        return {stamp_to_ns(o.header.stamp) - start_ns:
                (o.pose.pose.position.x, o.pose.pose.position.y)
                for o in odoms if stamp_to_ns(o.header.stamp) >= start_ns}
    a, b = track(first, start_a), track(second, start_b)
    common = sorted(set(a) & set(b))[-60:]
    assert len(common) == 60
    assert all(np.allclose(a[s], b[s], atol=1e-12) for s in common)
    # Every vector the observation node published is the core's extract_observation of a
    # scan and an odometry message of one stamp.
    spec = load_spec('track_follow')
    scan_by_stamp = {stamp_to_ns(m.header.stamp): m for m in scans}
    odom_by_stamp = {stamp_to_ns(m.header.stamp): m for m in first}
    expected = np.array([extract_observation(spec, {
        'scan': reading_from_message('laser_scan', scan_by_stamp[stamp]),
        'odom': reading_from_message('odometry', odom_by_stamp[stamp])})
        for stamp in sorted(set(scan_by_stamp) & set(odom_by_stamp))])
    published = np.array([np.asarray(o.data) for o in observations[-40:]])
    assert len(published) == 40
    distance = np.abs(published[:, None, :] - expected[None, :, :]).max(axis=2).min(axis=1)
    assert distance.max() < 1e-6


def test_reward_monitor_return_matches_the_episode_managers():
    graph = Graph(GraphConfig(task='pendulum', expert_drive=True, max_episodes=1))
    listener = Listener(graph.context)
    probe = Probe('pendulum', graph.context)
    graph.add_node(listener)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: probe.events and probe.events[-1]['event'] == 'end', 60,
                 'one pendulum episode')
        end = probe.events[-1]['stamp_ns']
        wait_for(lambda: any(t['stamp_ns'] == end for t in list(listener.terms)), 10,
                 'the reward monitor to score the last step')
    result = probe.results[0]
    monitored = [t for t in listener.terms if t['stamp_ns'] == end][-1]
    assert abs(monitored['return'] - result['return']) < 1e-9, (monitored, result)
