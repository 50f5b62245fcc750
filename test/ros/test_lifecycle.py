"""Managed (lifecycle) nodes over real ROS 2 services, and the states the nodes report.

Transitions go through lifecycle_msgs/srv/ChangeState and GetState, as ``ros2 lifecycle set``
and ``ros2 lifecycle get`` call them.
"""

import json
import threading
import time

from lifecycle_msgs.srv import ChangeState, GetState
import pytest
from rcl_interfaces.srv import GetParameters, SetParameters
from rclpy.node import Node
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock as ClockMsg
from geometry_msgs.msg import TwistStamped
from hypothesis import given, settings, strategies as st
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, String
from std_srvs.srv import Trigger

from ilrl_ros import qos
from ilrl_ros.bag import open_bag
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.core.spec import load_spec
from ilrl_ros.messages import (action_from_message, action_message_class, ns_to_stamp,
                               stamp_to_ns)
from ilrl_ros.nodes.common import Spinner, stop_nodes
from ilrl_ros.nodes.demo_recorder import DemoRecorder
from ilrl_ros.nodes.episode_manager import EpisodeManager
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_ros.nodes.policy import Policy
from ilrl_testing import constant_checkpoint, ros_context, wait_for

PENDULUM = Parameter('task', value='pendulum')
UNCONFIGURED = Parameter('start_state', value='unconfigured')


class Manager(Node):
    """A lifecycle manager and operator: ChangeState / GetState, parameters, Trigger, status.

    It records the pendulum's commands and the episode events and results. Each test runs
    in a namespace of its own, so that no node left over from another test (a process
    still stopping) answers its calls.
    """

    def __init__(self, context, namespace: str):
        super().__init__('manager', context=context, namespace=namespace)
        spec = load_spec('pendulum')
        self.commands, self.events, self.results, self.statuses = [], [], [], {}
        self.create_subscription(
            action_message_class(spec.action), spec.action.topic,
            lambda m: self.commands.append((time.monotonic(),
                                            action_from_message(spec.action, m))),
            qos.COMMAND)
        self.create_subscription(String, 'episode/event', lambda m: self.events.append(
            json.loads(m.data)), qos.EVENTS)
        self.create_subscription(String, 'episode/result', lambda m: self.results.append(
            json.loads(m.data)), qos.EVENTS)

    def call(self, srv_type, name: str, request, timeout_s: float = 10.0):
        client = self.create_client(srv_type, name)
        try:
            wait_for(client.service_is_ready, timeout_s, f'service {name}')
            future = client.call_async(request)
            wait_for(future.done, timeout_s, f'an answer from {name}')
            return future.result()
        finally:
            self.destroy_client(client)

    def set(self, node: str, transition: str) -> bool:
        """``ros2 lifecycle set /<node> <transition>``: whether the transition succeeded."""
        request = ChangeState.Request()
        request.transition.label = transition
        return self.call(ChangeState, f'{node}/change_state', request).success

    def get(self, node: str) -> str:
        """``ros2 lifecycle get /<node>``: the state's label."""
        return self.call(GetState, f'{node}/get_state', GetState.Request()).current_state.label

    def set_parameter(self, node: str, name: str, value):
        request = SetParameters.Request()
        request.parameters = [Parameter(name, value=value).to_parameter_msg()]
        return self.call(SetParameters, f'{node}/set_parameters', request).results[0]

    def trigger(self, name: str) -> Trigger.Response:
        return self.call(Trigger, name, Trigger.Request())

    def watch_status(self, node: str) -> list:
        """Every ~/status message of ``node`` from now on, as (arrival time, object)."""
        received = self.statuses.setdefault(node, [])
        self.create_subscription(String, f'{node}/status', lambda m: received.append(
            (time.monotonic(), json.loads(m.data))), qos.LATCHED)
        return received


def _spin(context, *nodes):
    return Spinner(nodes, context=context).start()


def test_each_managed_node_goes_through_its_lifecycle_over_ros_services(tmp_path):
    """Each of the four goes through every transition, and configures again after cleanup.

    A transition its state does not have is refused, and the node keeps serving.
    """
    checkpoint = constant_checkpoint(tmp_path / 'plus', 'pendulum', 1.0)
    context = ros_context()
    ns = 'lifecycle_all'
    nodes = {
        'mock_robot': MockRobot(context=context, namespace=ns, parameter_overrides=[
            PENDULUM, UNCONFIGURED, Parameter('mode', value='lock_step')]),
        'policy': Policy(context=context, namespace=ns, parameter_overrides=[
            PENDULUM, UNCONFIGURED, Parameter('checkpoint', value=str(checkpoint))]),
        'episode_manager': EpisodeManager(context=context, namespace=ns, parameter_overrides=[
            PENDULUM, UNCONFIGURED]),
        'demo_recorder': DemoRecorder(context=context, namespace=ns, parameter_overrides=[
            UNCONFIGURED, Parameter('topics', value=['joint_states']),
            Parameter('output_dir', value=str(tmp_path / 'bags'))]),
    }
    manager = Manager(context, ns)
    spinner = _spin(context, manager, *nodes.values())
    try:
        # `ros2 lifecycle nodes` lists the nodes that offer lifecycle_msgs GetState.
        wait_for(lambda: {f'/{ns}/{name}/get_state' for name in nodes} <= {
            name for name, types in manager.get_service_names_and_types()
            if 'lifecycle_msgs/srv/GetState' in types}, 10, 'the lifecycle services')
        for name, node in nodes.items():
            assert manager.get(name) == 'unconfigured', name
            assert not manager.set(name, 'activate'), f'{name} activated unconfigured'
            assert manager.get(name) == 'unconfigured', name
            assert manager.set(name, 'configure') and manager.get(name) == 'inactive', name
            assert manager.set(name, 'activate') and manager.get(name) == 'active', name
            assert node.active, name
            assert manager.set(name, 'deactivate') and manager.get(name) == 'inactive', name
            assert not node.active, name
            assert manager.set(name, 'cleanup') and manager.get(name) == 'unconfigured', name
            # Configure again: parameters, callbacks and endpoints were released, not doubled.
            assert manager.set(name, 'configure') and manager.get(name) == 'inactive', name
            assert manager.set(name, 'activate') and manager.get(name) == 'active', name
            assert manager.set(name, 'shutdown') and manager.get(name) == 'finalized', name
            assert not node.active and node.fault_count == 0, (name, node.last_fault)
        # The recorder recorded while active (autostart) and closed each bag on deactivate
        # and on shutdown.
        bags = sorted((tmp_path / 'bags').iterdir())
        assert len(bags) == 2 and all((bag / 'metadata.yaml').is_file() for bag in bags)
        assert nodes['policy'].current_checkpoint is None  # shut down: unloaded
    finally:
        stop_nodes([*nodes.values(), manager], spinner)
        context.try_shutdown()


# The lifecycle state machine (design.ros2.org managed nodes): state -> {transition id: goal}.
MACHINE = {'unconfigured': {1: 'inactive', 5: 'finalized'},
           'inactive': {2: 'unconfigured', 3: 'active', 6: 'finalized'},
           'active': {4: 'inactive', 7: 'finalized'},
           'finalized': {}}


@pytest.fixture(scope='module')
def plus_checkpoint(tmp_path_factory):
    return constant_checkpoint(tmp_path_factory.mktemp('lifecycle') / 'plus', 'pendulum', 1.0)


@settings(max_examples=12)
@given(ids=st.lists(st.integers(1, 7), max_size=10))
def test_any_sequence_of_change_state_requests_leaves_the_policy_where_the_machine_says(
        plus_checkpoint, ids):
    """Refused transitions change nothing, and what the node does follows its state."""
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        PENDULUM, UNCONFIGURED, Parameter('checkpoint', value=str(plus_checkpoint))])
    expected = 'unconfigured'
    try:
        for transition_id in ids:
            request = ChangeState.Request()
            request.transition.id = transition_id
            # The service's own callback, in this thread: what a ChangeState call runs.
            answer = policy._service_change_state.callback(request, ChangeState.Response())
            goal = MACHINE[expected].get(transition_id)
            assert answer.success == (goal is not None), (expected, transition_id)
            expected = goal or expected
            assert policy.lifecycle_state == expected
            assert policy.active == (expected == 'active')
            assert policy.configured == (expected in ('inactive', 'active'))
            assert (policy.current_checkpoint is not None) == policy.configured
            assert (policy.state() == 'inactive') == (expected != 'active')
        assert policy.fault_count == 0, policy.last_fault
    finally:
        policy.stop()
        for member in policy.executor_nodes:
            member.destroy_node()
        context.try_shutdown()


def test_a_transition_that_raises_fails_and_the_node_keeps_serving(tmp_path):
    context = ros_context()
    ns = 'lifecycle_raises'
    policy = Policy(context=context, namespace=ns, parameter_overrides=[
        Parameter('task', value=str(tmp_path / 'no_such_task.yaml')), UNCONFIGURED])
    recorder = DemoRecorder(context=context, namespace=ns, parameter_overrides=[
        UNCONFIGURED, Parameter('output_dir', value=str(tmp_path / 'bags'))])
    manager = Manager(context, ns)
    spinner = _spin(context, manager, policy, recorder)
    try:
        assert not manager.set('policy', 'configure')
        assert manager.get('policy') == 'unconfigured'
        assert 'no_such_task.yaml' in policy.transition_error
        # Still serving: parameters, and configure may be tried again (and fail again).
        answer = manager.call(GetParameters, 'policy/get_parameters',
                              GetParameters.Request(names=['task']))
        assert answer.values[0].string_value.endswith('no_such_task.yaml')
        assert not manager.set('policy', 'configure')
        # A recorder with no topics cannot configure; once they are set, it can.
        assert not manager.set('demo_recorder', 'configure')
        assert 'topic names' in recorder.transition_error
        assert manager.set_parameter('demo_recorder', 'topics', ['joint_states']).successful
        assert manager.set('demo_recorder', 'configure')
        assert manager.get('demo_recorder') == 'inactive'
    finally:
        stop_nodes([policy, recorder, manager], spinner)
        context.try_shutdown()


def test_deactivating_the_policy_commands_zero_and_stops_it_and_swaps_work_while_active(
        tmp_path):
    """`ros2 lifecycle set /policy deactivate` stops the robot.

    Activating again resumes, a swap works while active, and every node's status is
    periodic and latched.
    """
    plus = constant_checkpoint(tmp_path / 'plus', 'pendulum', 1.0)
    minus = constant_checkpoint(tmp_path / 'minus', 'pendulum', -1.0)
    config = GraphConfig(task='pendulum', checkpoint=str(plus), expert=False, clock='wall',
                         robot_mode='free_run')
    with Graph(config, namespace='lifecycle_graph') as graph:
        manager = Manager(graph.context, 'lifecycle_graph')
        # What the policy itself sends (through the command arbiter, when the graph has one),
        # besides what reaches the robot (manager.commands).
        policy_sent = []
        policy_pub = graph.nodes['policy'].command_pub
        manager.create_subscription(policy_pub.msg_type, policy_pub.topic_name,
                                    lambda m: policy_sent.append((time.monotonic(), m.data[0])),
                                    qos.COMMAND)
        graph.add_node(manager)
        wait_for(lambda: any(v[0] == 1.0 for _, v in list(manager.commands)), 20,
                 'the policy to command 1.0')
        assert manager.set('policy', 'deactivate')
        assert manager.get('policy') == 'inactive'
        after = time.monotonic()
        time.sleep(0.7)
        assert policy_sent[-1][1] == 0.0, 'the last command after deactivate is zero'
        assert policy_sent[-1][0] < after, 'the policy commanded after it was deactivated'
        assert list(manager.commands)[-1][1][0] == 0.0, 'the robot is left at zero'
        policy_status = manager.watch_status('policy')
        wait_for(lambda: policy_status and policy_status[-1][1]['state'] == 'inactive', 5,
                 "the policy's status to say inactive")

        assert manager.set('policy', 'activate')
        wait_for(lambda: any(t > after and v[0] == 1.0 for t, v in list(manager.commands)), 10,
                 'commands again once active')
        swapped = manager.set_parameter('policy', 'checkpoint', str(minus))
        assert swapped.successful, swapped.reason
        t_swap = time.monotonic()
        wait_for(lambda: any(t > t_swap and v[0] == -1.0 for t, v in list(manager.commands)),
                 10, 'the swapped policy to command -1.0 while active')
        assert graph.nodes['policy'].state() == 'running'

        # Every ~/status arrives at once (latched) and again (periodic), healthy or not.
        t0 = time.monotonic()
        watched = {name: manager.watch_status(name) for name in
                   ('mock_robot', 'episode_manager', 'observation')}
        wait_for(lambda: all(len([1 for t, _ in got if t > t0]) >= 2
                             for got in watched.values()), 5,
                 'two status messages from every node')
        assert watched['episode_manager'][-1][1]['lifecycle'] == 'active'


class Clocked(Node):
    """Publishes <namespace>/clock by hand and an e-stop, and feeds the pendulum's joints."""

    def __init__(self, context, namespace: str):
        super().__init__('clocked', context=context, namespace=namespace)
        self.clock = self.create_publisher(ClockMsg, 'clock', qos.SENSOR)
        self.joints = self.create_publisher(JointState, 'joint_states', qos.SENSOR)
        self.estop = self.create_publisher(Bool, 'e_stop', qos.COMMAND)

    def tick(self, ns: int) -> None:
        self.clock.publish(ClockMsg(clock=ns_to_stamp(ns)))

    def joint_state(self, stamp_ns: int) -> None:
        msg = JointState(name=['pendulum_joint'], position=[0.1], velocity=[0.0], effort=[0.0])
        msg.header.stamp = ns_to_stamp(stamp_ns)
        self.joints.publish(msg)


def test_policy_states_stamps_and_missed_ticks_are_honest_on_a_sim_clock(tmp_path):
    """The policy's states, the stamps of its zeros and its missed ticks say what happened.

    Waiting before any observation (and silent), estop, running; a zero before any
    observation is stamped with the clock, never 0; no missed ticks while /clock is paused.
    """
    checkpoint = constant_checkpoint(tmp_path / 'plus', 'pendulum', 1.0)
    track = constant_checkpoint(tmp_path / 'track', 'track_follow', 0.1)
    context = ros_context()
    ns = 'lifecycle_states'
    # A clock of this test's own: no other node's /clock moves it.
    policy = Policy(context=context, namespace=ns,
                    cli_args=['--ros-args', '-r', f'/clock:=/{ns}/clock'], parameter_overrides=[
        PENDULUM, Parameter('checkpoint', value=str(checkpoint)), Parameter('mode', value='timer'),
        Parameter('use_sim_time', value=True), Parameter('control_rate_hz', value=20.0),
        Parameter('max_observation_age_s', value=0.5)])
    # A stamped command (track_follow's TwistStamped) shows the stamp of a zero it sends
    # before any observation.
    stamped = Policy(context=context, namespace=ns, parameter_overrides=[
        Parameter('task', value='track_follow'), Parameter('checkpoint', value=str(track))])
    manager = Manager(context, ns)
    clocked = Clocked(context, ns)
    stamps = []
    manager.create_subscription(TwistStamped, 'cmd_vel', lambda m: stamps.append(
        stamp_to_ns(m.header.stamp)), qos.COMMAND)
    spinner = _spin(context, manager, clocked, policy, stamped)
    sim_ns = 100 * 10**9
    try:
        wait_for(lambda: clocked.clock.get_subscription_count() > 0, 10, 'a /clock subscriber')
        # Simulated time runs in control periods, then pauses for a while (wall clock).
        for _ in range(10):
            sim_ns += 50_000_000
            clocked.tick(sim_ns)
            time.sleep(0.02)
        time.sleep(0.6)
        assert policy.state() == 'waiting'
        assert not manager.commands, 'the policy commanded before any observation'
        wait_for(lambda: clocked.estop.get_subscription_count() >= 2, 10, 'e-stop subscribers')
        clocked.estop.publish(Bool(data=True))
        wait_for(lambda: policy.state() == 'estop', 5, 'the e-stop state')
        wait_for(lambda: stamps, 5, "the track policy's zero on the e-stop")
        assert stamped.state() == 'estop' and stamps[0] > 0, stamps
        clocked.estop.publish(Bool(data=False))
        wait_for(lambda: policy.state() == 'waiting', 5, 'the e-stop released')
        for _ in range(10):
            sim_ns += 50_000_000
            clocked.tick(sim_ns)
            clocked.joint_state(sim_ns)
            time.sleep(0.03)
        wait_for(lambda: policy.state() == 'running', 5, 'running on observations')
        time.sleep(0.6)   # /clock paused again
        assert policy.status_counts()['missed_ticks'] == 0, policy.status_counts()
        # A jump of 10 periods is 9 missed ticks on the timer's own clock.
        sim_ns += 500_000_000
        clocked.tick(sim_ns)
        wait_for(lambda: policy.status_counts()['missed_ticks'] > 0, 5, 'the missed ticks')
        assert policy.status_counts()['missed_ticks'] == 9
    finally:
        stop_nodes([policy, stamped, manager, clocked], spinner)
        context.try_shutdown()


def test_recorder_start_parameters_set_at_runtime_apply_to_the_next_bag(tmp_path):
    context = ros_context()
    ns = 'lifecycle_recorder'
    recorder = DemoRecorder(context=context, namespace=ns, parameter_overrides=[
        Parameter('topics', value=['first']), Parameter('output_dir', value=str(tmp_path / 'a')),
        Parameter('bag_name', value='one'), Parameter('discovery_period_s', value=0.05)])
    manager = Manager(context, ns)
    first = manager.create_publisher(String, 'first', qos.EVENTS)
    second = manager.create_publisher(String, 'second', qos.EVENTS)
    spinner = _spin(context, manager, recorder)
    stop = threading.Event()

    def publish():
        while not stop.is_set():
            first.publish(String(data='1'))
            second.publish(String(data='2'))
            time.sleep(0.02)
    feeder = threading.Thread(target=publish, daemon=True)
    feeder.start()
    try:
        wait_for(lambda: recorder.status()['message_count'] > 0, 10, 'a first recording')
        refused = manager.set_parameter('demo_recorder', 'topics', [''])
        assert not refused.successful and 'topic names' in refused.reason
        for name, value in (('output_dir', str(tmp_path / 'b')), ('bag_name', 'two'),
                            ('topics', ['second'])):
            result = manager.set_parameter('demo_recorder', name, value)
            assert result.successful, (name, result.reason)
        assert manager.trigger('demo_recorder/stop').success
        started = manager.trigger('demo_recorder/start')
        assert started.success and started.message == str((tmp_path / 'b' / 'two').resolve())
        wait_for(lambda: recorder.status()['message_count'] > 0, 10, 'the next recording')
        assert manager.trigger('demo_recorder/stop').success
    finally:
        stop.set()
        feeder.join()
        stop_nodes([recorder, manager], spinner)
        context.try_shutdown()
    assert set(open_bag(tmp_path / 'a' / 'one').topics) == {f'/{ns}/first'}
    assert set(open_bag(tmp_path / 'b' / 'two').topics) == {f'/{ns}/second'}


def test_robot_mode_episode_numbers_agree_across_confirm_and_restart():
    """Without a reset service (a real robot), the answers name the episodes that then run.

    A restart before the first observation aborts nothing and keeps the next number.
    """
    context = ros_context()
    ns = 'lifecycle_robot'
    em = EpisodeManager(context=context, namespace=ns, parameter_overrides=[
        PENDULUM, Parameter('reset_service', value='')])
    manager = Manager(context, ns)
    clocked = Clocked(context, ns)
    spinner = _spin(context, manager, clocked, em)
    try:
        wait_for(lambda: em.state == 'resetting', 5, 'the first reset')
        assert manager.trigger('episode_manager/confirm_reset').message == \
            'episode 1 starts with the next observation'
        # No robot yet: nothing runs, nothing is aborted, and the next is still episode 1.
        answer = manager.trigger('episode_manager/restart').message
        assert 'aborted' not in answer.replace('none is aborted', '') \
            and answer.endswith('the next is episode 1'), answer
        assert manager.trigger('episode_manager/confirm_reset').message == \
            'episode 1 starts with the next observation'
        wait_for(lambda: (clocked.joint_state(clocked.get_clock().now().nanoseconds),
                          manager.events)[1], 10, 'the start of episode 1')
        assert manager.events[0] == {**manager.events[0], 'event': 'start', 'episode': 1}
        assert manager.trigger('episode_manager/restart').message == \
            'episode 1 aborted; resetting'
        wait_for(lambda: manager.results, 5, 'the result of episode 1')
        assert (manager.results[0]['episode'], manager.results[0]['outcome']) == (1, 'aborted')
        assert manager.trigger('episode_manager/confirm_reset').message == \
            'episode 2 starts with the next observation'
        wait_for(lambda: (clocked.joint_state(clocked.get_clock().now().nanoseconds),
                          len(manager.events) >= 3)[1], 10, 'the start of episode 2')
        assert [(e['event'], e['episode']) for e in manager.events] == \
            [('start', 1), ('end', 1), ('start', 2)]
    finally:
        stop_nodes([em, manager, clocked], spinner)
        context.try_shutdown()
