"""The episode manager as the safety supervisor of learning, over real rclpy and DDS.

A free-running mock robot (the pendulum, simulated time) and the episode manager, built in
one process on their own Context: leaving the spec's safe set ends the episode as
``unsafe`` and a zero command reaches the robot; the e-stop ends an episode as ``estop`` and
none starts before it is released; a reset controller drives the pendulum to the spec's
start state and the next episode begins, and one given too little time reports
``reset_failed`` and waits for an operator.
"""

from contextlib import contextmanager
import copy
import json
import math
import time

import numpy as np
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float64MultiArray, String
from std_srvs.srv import Trigger
import yaml

from ilrl_ros import qos
from ilrl_ros.core.spec import load_spec
from ilrl_ros.messages import stamp_to_ns
from ilrl_ros.nodes.common import Spinner, stop_nodes
from ilrl_ros.nodes.episode_manager import EpisodeManager
from ilrl_ros.nodes.mock_robot import MockRobot
from ilrl_testing import constant_checkpoint, Probe, ros_context, wait_for

EFFORT_TOPIC = 'effort_controller/commands'


def pendulum_variant(tmp_path, name: str, **blocks) -> str:
    """The bundled pendulum spec with top-level blocks replaced, as a YAML file."""
    raw = copy.deepcopy(load_spec('pendulum').raw)
    raw.update(blocks)
    path = tmp_path / f'{name}.yaml'
    path.write_text(yaml.safe_dump(raw))
    return str(path)


class RecordingRobot(MockRobot):
    """The mock robot, noting every command that reaches it."""

    def __init__(self, **kwargs):
        self.received = []
        super().__init__(**kwargs)

    def _on_command(self, msg) -> None:
        self.received.append(list(msg.data))
        super()._on_command(msg)


class Operator(Probe):
    """Watches episodes and joint states, presses the e-stop, calls services, may drive.

    With ``drive`` set it commands that effort at 20 Hz while an episode runs (between a
    ``start`` and an ``end`` event), as a policy would.
    """

    def __init__(self, task: str, context):
        super().__init__(task, context, name='operator')
        self.steps = []
        self.joints = {}
        self.drive = None
        self.create_subscription(String, 'episode/step',
                                 lambda m: self.steps.append(json.loads(m.data)), qos.STEPS)
        self.create_subscription(JointState, 'joint_states', self._on_joints, qos.SENSOR_EVERY)
        self.estop = self.create_publisher(Bool, 'e_stop', qos.COMMAND)
        self.effort = self.create_publisher(Float64MultiArray, EFFORT_TOPIC, qos.COMMAND)
        self.confirm = self.create_client(Trigger, 'episode_manager/confirm_reset')
        self.create_timer(0.05, self._drive)

    def _on_joints(self, msg) -> None:
        self.joints[stamp_to_ns(msg.header.stamp)] = (msg.position[0], msg.velocity[0])

    def _drive(self) -> None:
        running = self.events and self.events[-1]['event'] == 'start'
        if self.drive is not None and running:
            self.effort.publish(Float64MultiArray(data=[self.drive]))

    def named(self, event: str) -> list:
        return [e for e in list(self.events) if e['event'] == event]

    def call(self, client) -> Trigger.Response:
        wait_for(client.service_is_ready, 10, f'{client.srv_name}')
        future = client.call_async(Trigger.Request())
        wait_for(future.done, 10, f'an answer from {client.srv_name}')
        return future.result()

    def press(self, pressed: bool) -> None:
        wait_for(lambda: self.estop.get_subscription_count() > 0, 10,
                 'the episode manager to subscribe to e_stop')
        self.estop.publish(Bool(data=pressed))

    def joint_at(self, stamp_ns: int) -> tuple:
        """The joint state published at ``stamp_ns`` (or the newest before it)."""
        before = [s for s in list(self.joints) if s <= stamp_ns]
        assert before, f'no joint state at or before {stamp_ns}'
        return self.joints[max(before)]


@contextmanager
def pendulum_loop(task: str, robot: dict, manager: dict):
    """A free-running mock robot, the episode manager and an operator, spinning."""
    context = ros_context()
    nodes = []
    spinner = None
    try:
        nodes.append(RecordingRobot(context=context, parameter_overrides=[
            Parameter('task', value=task), Parameter('mode', value='free_run'),
            *(Parameter(k, value=v) for k, v in robot.items())]))
        nodes.append(EpisodeManager(context=context, parameter_overrides=[
            Parameter('task', value=task), Parameter('use_sim_time', value=True),
            *(Parameter(k, value=v) for k, v in manager.items())]))
        operator = Operator(task, context)
        nodes.append(operator)
        spinner = Spinner(nodes, context=context).start()
        yield nodes[0], nodes[1], operator
    finally:
        stop_nodes(nodes, spinner)
        context.try_shutdown()


def test_leaving_the_safe_set_ends_the_episode_as_unsafe_and_stops_the_robot(tmp_path):
    # A tight speed limit: a pendulum driven with 2 N m passes 1.5 rad/s within a second.
    task = pendulum_variant(tmp_path, 'pendulum_slow', safety={'joints': [
        {'source': 'joint_states', 'joint': 'pendulum_joint', 'max_velocity': 1.5}]})
    with pendulum_loop(task, {'real_time_factor': 2.0, 'seed': 4},
                       {'max_episodes': 2}) as (robot, manager, operator):
        operator.drive = 2.0
        wait_for(lambda: len(operator.results) >= 2, 20, 'two episodes')
        received = list(robot.received)
        episodes_begun = robot.episode
    assert [r['outcome'] for r in operator.results] == ['unsafe', 'unsafe']
    assert not any(r['success'] for r in operator.results)
    ends = [s for s in operator.steps if s['outcome'] is not None]
    assert [(s['outcome'], s['terminated'], s['truncated']) for s in ends] == \
        [('unsafe', True, False)] * 2
    (end, *_) = operator.named('end')
    assert end['outcome'] == 'unsafe'
    assert 'faster than safety.joints[0].max_velocity 1.5' in end['reason'], end
    # The manager's zero reached the robot, between the driver's efforts.
    assert [0.0] in received and [2.0] in received
    assert episodes_begun >= 3        # its start-up reset, then one after each episode


def test_the_e_stop_ends_an_episode_and_none_starts_until_it_is_released():
    with pendulum_loop('pendulum', {'real_time_factor': 1.0, 'seed': 1},
                       {}) as (robot, manager, operator):
        wait_for(lambda: operator.named('start'), 15, 'the first episode to start')
        time.sleep(0.3)
        operator.press(True)
        wait_for(lambda: operator.results, 5, 'the e-stopped episode to end')
        assert operator.results[0]['outcome'] == 'estop'
        assert operator.named('end')[0]['reason'] == 'the e-stop was pressed'
        resets = robot.episode
        time.sleep(1.5)
        # Stopped: no reset asked for, no episode begun, an operator's confirmation refused.
        assert robot.episode == resets and manager.state == 'resetting'
        assert len(operator.named('start')) == 1 and len(operator.results) == 1
        answer = operator.call(operator.confirm)
        assert not answer.success and 'e-stop is engaged' in answer.message
        assert [0.0] in robot.received
        operator.press(False)
        wait_for(lambda: len(operator.named('start')) >= 2, 10,
                 'a new episode after the release')
        assert robot.episode == resets + 1
    assert operator.named('start')[1]['episode'] == 2


def test_a_reset_controller_brings_the_pendulum_to_rest_before_each_episode(tmp_path):
    # 2 s episodes (simulated), driven with 2 N m: the pendulum swings when each one ends.
    task = pendulum_variant(tmp_path, 'pendulum_short', termination={'timeout_s': 2.0})
    with pendulum_loop(task, {'real_time_factor': 4.0, 'seed': 2},
                       {'reset_controller': 'pendulum_rest', 'reset_timeout_s': 15.0,
                        'max_episodes': 2}) as (robot, manager, operator):
        operator.drive = 2.0
        wait_for(lambda: len(operator.named('start')) >= 2, 20,
                 'two episodes begun after controller resets')
        events = list(operator.events)
        received = list(robot.received)
        starts = operator.named('start')
        states = [operator.joint_at(start['stamp_ns']) for start in starts]
    kinds = [e['event'] for e in events]
    assert kinds[:4] == ['reset', 'start', 'end', 'reset'] and kinds[4] == 'start', kinds
    assert {e['by'] for e in events if e['event'] == 'reset'} == {'pendulum_rest'}
    assert 'reset_failed' not in kinds
    # Each episode starts hanging down, nearly at rest, as the spec's reset block says.
    for theta, theta_dot in states:
        assert abs(math.remainder(theta - math.pi, 2 * math.pi)) <= 0.1 + 0.05
        assert abs(theta_dot) <= 0.2 + 0.1
    # The controller drove (damping torques within the bounds), then handed over at zero.
    driven = np.array([c[0] for c in received])
    assert np.any((driven != 0.0) & (np.abs(driven) < 2.0)) and np.all(np.abs(driven) <= 2.0)
    assert [0.0] in received


def test_a_lock_step_policy_answers_the_first_observation_after_a_reset_controller(tmp_path):
    """A lock-step robot waits for the answer to the episode's first observation.

    That observation can reach the policy before the start event, while it still yields to
    the reset controller.
    """
    from ilrl_ros.graph import Graph, GraphConfig
    task = pendulum_variant(tmp_path, 'pendulum_short', termination={'timeout_s': 1.0})
    checkpoint = constant_checkpoint(tmp_path / 'push', task, 0.5)
    graph = Graph(GraphConfig(task=str(task), checkpoint=str(checkpoint), expert=False,
                              observation_node=False, reset_controller='pendulum_rest',
                              max_episodes=3))
    probe = Probe(str(task), graph.context)
    graph.add_node(probe)
    with graph:
        # Each 20-step episode follows a controller reset; none may wait on a stalled robot.
        wait_for(lambda: len(probe.results) >= 3, 30, 'three episodes after controller resets')
    assert [r['length'] for r in probe.results] == [20, 20, 20], probe.results


def test_a_reset_controller_out_of_time_reports_reset_failed_and_waits_for_an_operator():
    # 0.2 s of wall time cannot hold the start state for the spec's 0.5 s.
    with pendulum_loop('pendulum', {'real_time_factor': 1.0, 'seed': 3},
                       {'reset_controller': 'pendulum_rest', 'reset_timeout_s': 0.2}
                       ) as (robot, manager, operator):
        wait_for(lambda: operator.named('reset_failed'), 10, 'the reset to fail')
        (failed,) = operator.named('reset_failed')
        assert failed['by'] == 'pendulum_rest'
        assert failed['reason'].startswith('no start state within reset_timeout_s 0.2 s: ')
        wait_for(lambda: robot.received and robot.received[-1] == [0.0], 5,
                 'the zero command after the failure')
        commands = len(robot.received)
        time.sleep(0.5)
        # Stopped at zero, waiting: no episode, no more commands from the controller.
        assert not operator.named('start') and manager.state == 'resetting'
        assert len(robot.received) == commands
        answer = operator.call(operator.confirm)
        assert answer.success, answer.message
        wait_for(lambda: operator.named('start'), 5, 'the episode the operator confirmed')


def test_a_reset_controller_that_raises_is_stopped_at_zero_and_reported():
    # Without a reset at start-up the first episode may begin (and be aborted) first.
    with pendulum_loop('pendulum', {'real_time_factor': 1.0, 'seed': 5},
                       {'reset_controller': 'pendulum_rest', 'reset_on_start': False}
                       ) as (robot, manager, operator):
        def broken(readings):
            raise RuntimeError('the arm controller is not answering')

        manager.controller.act = broken
        answer = operator.call(operator.create_client(Trigger, 'episode_manager/restart'))
        assert answer.success, answer.message
        wait_for(lambda: operator.named('reset_failed'), 10, 'the broken reset to be reported')
        (failed,) = operator.named('reset_failed')
        assert 'RuntimeError: the arm controller is not answering' in failed['reason']
        wait_for(lambda: robot.received and robot.received[-1] == [0.0], 5, 'a zero command')
        assert manager.fault_count >= 1 and manager.state == 'resetting'
        # ~/restart tries the controller again; now it works.
        del manager.controller.act
        before = len(operator.events)
        answer = operator.call(operator.create_client(Trigger, 'episode_manager/restart'))
        assert answer.success, answer.message
        wait_for(lambda: 'start' in [e['event'] for e in operator.events[before:]], 15,
                 'an episode after the retried reset')
    assert [e['event'] for e in operator.events[before:]] == ['reset', 'start']
