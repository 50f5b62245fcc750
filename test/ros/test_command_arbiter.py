"""The command arbiter over real DDS: one driver reaches the robot, locks hold it at zero."""

import copy
import json
import time

from geometry_msgs.msg import TwistStamped
from hypothesis import given, strategies as st
import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import LaserScan
from std_msgs.msg import Bool, Float64MultiArray, String
import yaml

from ilrl_ros import qos
from ilrl_ros.core.spec import load_spec
from ilrl_ros.graph import Graph, GraphConfig, node_parameters
from ilrl_ros.messages import ns_to_stamp, stamp_to_ns
from ilrl_ros.nodes.command_arbiter import CommandArbiter, command_problem
from ilrl_ros.nodes.common import Spinner, stop_nodes
from ilrl_testing import constant_checkpoint, Probe, wait_for

TRACK = load_spec('track_follow')
PENDULUM = load_spec('pendulum')


class Bench(Node):
    """Publishes on the arbiter's inputs; records what reaches the robot and who drives."""

    def __init__(self, context):
        super().__init__('arbiter_bench', context=context)
        self.inputs = {name: self.create_publisher(TwistStamped, f'arbiter/{name}',
                                                   qos.COMMAND)
                       for name in ('safety', 'teleop', 'expert', 'policy')}
        self.e_stop = self.create_publisher(Bool, 'e_stop', qos.COMMAND)
        self.events = self.create_publisher(String, 'episode/event', qos.EVENTS)
        self.commands = []
        self.active = []
        self.scans = []
        self.create_subscription(TwistStamped, 'cmd_vel', self._on_command, qos.COMMAND)
        self.create_subscription(String, 'command_arbiter/active',
                                 lambda m: self.active.append(m.data), qos.LATCHED)
        self.create_subscription(LaserScan, 'scan',
                                 lambda m: self.scans.append(stamp_to_ns(m.header.stamp)),
                                 qos.SENSOR)

    def _on_command(self, msg) -> None:
        self.commands.append((stamp_to_ns(msg.header.stamp), msg.twist.linear.x))

    def send(self, source: str, stamp_ns: int, speed: float) -> None:
        msg = TwistStamped()
        msg.header.stamp = ns_to_stamp(stamp_ns)
        msg.twist.linear.x = speed
        self.inputs[source].publish(msg)

    def event(self, **fields) -> None:
        self.events.publish(String(data=json.dumps(fields)))


def test_expert_driving_with_a_policy_loaded_gives_one_command_per_observation(tmp_path,
                                                                             ros_context):
    checkpoint = constant_checkpoint(tmp_path / 'policy', 'track_follow', 0.05)
    graph = Graph(GraphConfig(task='track_follow', expert_drive=True, checkpoint=str(checkpoint),
                              observation_node=False, seed=2), context=ros_context)
    bench = Bench(ros_context)
    graph.add_node(bench)
    graph.start()
    try:
        robot, arbiter = graph.nodes['mock_robot'], graph.nodes['command_arbiter']
        wait_for(lambda: robot.steps >= 60, 30.0, '60 lock-step steps')
        counts = arbiter.arbiter.status()
        commands = list(bench.commands)
        scans = set(bench.scans)
    finally:
        graph.close()
    stamps = [s for s, _ in commands]
    # Both the expert and the policy answer every observation; the robot gets one answer.
    # The lock-step sim time starts again with the start-up reset, which the expert may
    # drive a few steps before: stamps may repeat across that reset, never within a run.
    runs = [[]]
    for stamp in stamps:
        if runs[-1] and stamp < runs[-1][-1]:
            runs.append([])
        runs[-1].append(stamp)
    assert len(stamps) >= 50 and len(runs) <= 2, [run[:3] for run in runs]
    assert all(len(set(run)) == len(run) for run in runs), runs
    answered = set(stamps) & scans
    assert len(answered) >= len(set(stamps)) - 1     # (the very first may precede our probe)
    assert counts['active'] == 'expert' and bench.active[-1] == 'expert'
    sources = counts['sources']
    assert sources['policy']['ignored'] >= 50 and sources['policy']['forwarded'] <= 1
    assert sources['expert']['forwarded'] >= 50 and counts['warnings'] >= 1
    # The policy's constant 0.05 never drove past the first step: the expert's speeds did.
    assert sum(1 for _, v in commands if abs(v - 0.05) < 1e-9) <= 1


def test_teleop_overrides_e_stop_and_the_unsafe_hold_hold_zero_and_stop_commands_zero(
        ros_context):
    arbiter = CommandArbiter(context=ros_context, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('warn_period_s', value=0.0)])
    bench = Bench(ros_context)
    spinner = Spinner([arbiter], context=ros_context).start()
    bench_spinner = Spinner([bench], context=ros_context).start()
    stamp = [1_000_000_000]

    def drive(source, speed, seconds=0.3, also=None):
        """Publish at 50 Hz for ``seconds``; returns the commands that reached the robot."""
        before = len(bench.commands)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamp[0] += 20_000_000
            bench.send(source, stamp[0], speed)
            if also:
                bench.send(also, stamp[0], -speed)
            time.sleep(0.02)
        time.sleep(0.1)
        return [v for _, v in bench.commands[before:]]

    try:
        wait_for(lambda: arbiter.count_publishers('arbiter/policy') and
                 bench.count_subscribers('cmd_vel') and bench.active, 10.0, 'discovery')
        wait_for(lambda: drive('policy', 0.3, 0.1), 10.0, 'the policy reaching the robot')
        got = drive('policy', 0.3)
        assert got and all(v == 0.3 for v in got) and bench.active[-1] == 'policy'
        # A person takes over: their commands reach the robot, the policy's do not.
        got = drive('teleop', -0.2, also='policy')
        assert got and all(v == -0.2 for v in got[1:]) and bench.active[-1] == 'teleop'
        assert arbiter.arbiter.counts['policy'].ignored >= 5
        assert arbiter.arbiter.warnings >= 1
        # The person lets go: after the teleop timeout (0.5 s) the policy drives again.
        got = drive('policy', 0.3, 0.9)
        assert got[-1] == 0.3 and -0.2 not in got[-5:] and bench.active[-1] == 'policy'
        # E-stop: one zero at once, then zero in place of every command, until released.
        bench.e_stop.publish(Bool(data=True))
        wait_for(lambda: bench.active[-1] == 'e_stop', 5.0, 'the e-stop engaged')
        got = drive('policy', 0.3) + drive('teleop', 0.4)
        assert len(got) >= 10 and all(v == 0.0 for v in got)
        bench.e_stop.publish(Bool(data=False))
        time.sleep(0.6)                                # teleop's last zeroed command ages
        got = drive('policy', 0.3)
        assert got and got[-1] == 0.3
        # An unsafe end: the policy is held at zero, the episode manager's own commands pass,
        # until the next episode starts.
        bench.event(event='end', episode=1, outcome='unsafe', stamp_ns=stamp[0])
        wait_for(lambda: bench.active[-1] == 'safety_hold', 5.0, 'the safety hold')
        got = drive('policy', 0.3)
        assert len(got) >= 5 and all(v == 0.0 for v in got)
        got = drive('safety', 0.1)
        assert got and all(v == 0.1 for v in got)
        bench.event(event='start', episode=2, stamp_ns=stamp[0])
        got = drive('policy', 0.3)
        assert got and got[-1] == 0.3 and bench.active[-1] == 'policy'
        received = len(bench.commands)
    finally:
        stop_nodes([arbiter], spinner)
        time.sleep(0.3)
        stop_nodes([bench], bench_spinner)
    # Stopping commands zero, stamped with the newest stamp seen (never 0).
    assert bench.commands[received:] == [(stamp[0], 0.0)]


def test_a_zero_before_any_command_and_any_clock_is_not_stamped_0(ros_context):
    arbiter = CommandArbiter(context=ros_context, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('use_sim_time', value=True)])
    bench = Bench(ros_context)
    spinner = Spinner([arbiter, bench], context=ros_context).start()
    try:
        wait_for(lambda: bench.count_subscribers('e_stop') and
                 bench.count_subscribers('cmd_vel'), 10.0, 'discovery')
        time.sleep(0.3)
        bench.e_stop.publish(Bool(data=True))   # nothing seen, no /clock: the sim time is 0
        wait_for(lambda: bench.commands, 5.0, 'the e-stop zero')
    finally:
        stop_nodes([arbiter, bench], spinner)
    stamp, speed = bench.commands[0]
    assert speed == 0.0 and abs(stamp - time.time_ns()) < 60e9


def test_after_an_unsafe_end_the_policy_is_held_at_zero(tmp_path, ros_context):
    raw = copy.deepcopy(PENDULUM.raw)
    raw['safety']['joints'][0]['max_velocity'] = 1.0    # a constant 2 N m breaks it at once
    task = tmp_path / 'tight.yaml'
    task.write_text(yaml.safe_dump(raw))
    checkpoint = constant_checkpoint(tmp_path / 'policy', str(task), 2.0)
    graph = Graph(GraphConfig(task=str(task), checkpoint=str(checkpoint), expert=False,
                              observation_node=False, max_episodes=1, seed=1),
                  context=ros_context)
    probe = Probe(str(task), ros_context)
    graph.add_node(probe)
    graph.start()
    try:
        arbiter = graph.nodes['command_arbiter'].arbiter
        wait_for(lambda: probe.results and arbiter.counts['policy'].zeroed >= 20, 30.0,
                 'an unsafe end and 20 policy commands after it')
        values = [float(v[0]) for _, v in list(probe.commands)]
        status = arbiter.status()
    finally:
        graph.close()
    assert probe.results[0]['outcome'] == 'unsafe'
    # The lock-step robot kept stepping, on zeros only, from the episode manager's zero on.
    first_zero = values.index(0.0)
    assert set(values[:first_zero]) == {2.0} and set(values[first_zero:]) == {0.0}
    assert len(values) - first_zero >= 20
    assert status['active'] == 'safety_hold' and status['locks'] == ['safety_hold']
    # The episode manager's own zero answers the step that left the safe set: it goes out
    # once, or not at all when the policy's answer to that step reached the arbiter first (a
    # second answer to one observation is a duplicate). Either way the hold's own zero, sent
    # as it engages, stopped the robot (asserted above).
    assert status['sources']['safety']['forwarded'] <= 1
    assert status['sources']['safety']['forwarded'] + \
        status['sources']['safety']['duplicates'] >= 1


def test_a_reset_controller_drives_through_the_arbiter_and_yields_at_each_start(tmp_path,
                                                                              ros_context):
    raw = copy.deepcopy(PENDULUM.raw)
    raw['termination']['timeout_s'] = 1.0                 # 20-step episodes
    task = tmp_path / 'short.yaml'
    task.write_text(yaml.safe_dump(raw))
    checkpoint = constant_checkpoint(tmp_path / 'policy', str(task), 1.0)
    # Free run: in lock step the policy misses an episode's first observation when it comes
    # before the start event (it yields until then), with or without the arbiter.
    graph = Graph(GraphConfig(task=str(task), checkpoint=str(checkpoint), expert=False,
                              observation_node=False, max_episodes=2, seed=1,
                              reset_controller='pendulum_rest', robot_mode='free_run',
                              real_time_factor=4.0), context=ros_context)
    probe = Probe(str(task), ros_context)
    graph.add_node(probe)
    graph.start()
    try:
        wait_for(lambda: len(probe.results) >= 2, 30.0, 'two episodes')
        status = graph.nodes['command_arbiter'].arbiter.status()
    finally:
        graph.close()
    # Each episode began after pendulum_rest brought the pendulum to rest, and the policy
    # drove them: the episode manager's source handed over at each start.
    assert [(r['outcome'], r['length']) for r in probe.results] == [('timeout', 20)] * 2
    assert [e['event'] for e in probe.events][:3] == ['reset', 'start', 'end']
    sources = status['sources']
    assert sources['safety']['forwarded'] >= 2 and sources['policy']['forwarded'] >= 30
    assert status['active'] == 'policy'


@pytest.mark.parametrize('overrides, problem', [
    ({'source_topics': ['a']}, 'source_topics has 1 topics for 4 sources'),
    ({'source_priorities': [1, 2, 3, 3]}, 'distinct priorities; 3'),
    ({'source_timeouts_s': [0.5, 0.5, 0.5, -1.0]}, "source 'policy': timeout_s"),
    ({'output_topic': 'arbiter/policy'}, 'also a source topic'),
    ({'hold_source': 'operator'}, "unknown command source 'operator'"),
])
def test_bad_sources_stop_the_node_at_start_with_the_reason(ros_context, overrides, problem):
    parameters = [Parameter('task', value='track_follow')] + \
        [Parameter(k, value=v) for k, v in overrides.items()]
    with pytest.raises(ValueError, match=problem):
        CommandArbiter(context=ros_context, parameter_overrides=parameters)


def test_the_graph_routes_every_driver_through_the_arbiter():
    free = node_parameters(GraphConfig(robot_mode='free_run', teleop_topic='teleop/cmd_vel',
                                       record=True))
    assert free['policy']['command_topic'] == 'arbiter/policy'
    assert free['expert']['command_topic'] == 'arbiter/expert'
    assert free['episode_manager']['command_topic'] == 'arbiter/safety'
    arbiter = free['command_arbiter']
    assert dict(zip(arbiter['source_names'], arbiter['source_topics'])) == {
        'safety': 'arbiter/safety', 'teleop': 'teleop/cmd_vel', 'expert': 'arbiter/expert',
        'policy': 'arbiter/policy'}
    assert arbiter['zero_on_timeout'] and 'output_topic' not in arbiter
    assert 'command_arbiter/active' in free['demo_recorder']['topics']
    # Lock step: the policy relays a person's commands stamped; no zero nobody asked for.
    lock = node_parameters(GraphConfig(teleop_topic='teleop/cmd_vel'))['command_arbiter']
    assert 'teleop/cmd_vel' not in lock['source_topics'] and not lock['zero_on_timeout']
    off = node_parameters(GraphConfig(arbiter=False, record=True))
    assert 'command_arbiter' not in off and off['policy']['command_topic'] == ''
    assert off['expert']['command_topic'] == off['episode_manager']['command_topic'] == ''
    assert 'command_arbiter/active' not in off['demo_recorder']['topics']


value = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                  st.floats(-1e6, 1e6))


@given(st.lists(value, max_size=4))
def test_a_command_that_cannot_drive_is_named_and_refused(values):
    problem = command_problem(PENDULUM, Float64MultiArray(data=values))
    good = len(values) == 1 and all(np.isfinite(values)) and abs(values[0]) <= 1e6
    assert (problem is None) == good
    if len(values) != 1:
        assert 'has' in problem and 'pendulum_joint' in problem


@given(value, value)
def test_a_twist_with_a_bad_number_is_refused(linear, angular):
    msg = TwistStamped()
    msg.twist.linear.x, msg.twist.angular.z = linear, angular
    good = all(np.isfinite([linear, angular])) and max(abs(linear), abs(angular)) <= 1e6
    assert (command_problem(TRACK, msg) is None) == good
