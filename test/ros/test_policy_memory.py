"""The policy node clears a recurrent policy's memory at an episode start and on stale input."""

import json
import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from sensor_msgs.msg import JointState
from std_msgs.msg import String
import torch

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import save_checkpoint
from ilrl_ros.core.networks.memory import MemoryPolicy
from ilrl_ros.core.spec import load_spec
from ilrl_ros.messages import ns_to_stamp
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.policy import Policy
from ilrl_testing import Probe, ros_context, wait_for

TASK = 'pendulum_angle'


def _gru_checkpoint(path):
    spec = load_spec(TASK)
    torch.manual_seed(0)
    network = MemoryPolicy(spec.observation.size, spec.action.size, hidden=(16,),
                           memory='gru', memory_size=8)
    with torch.no_grad():
        network.act_std.fill_(0.5)  # commands well inside the +/-2 N m bounds
    return save_checkpoint(path, network.eval(), algorithm='test-gru', spec=spec, config={},
                           provenance={'made_by': 'test'}), network


@pytest.mark.parametrize('clear', ['episode_start', 'stale_input'])
def test_the_node_resets_a_gru_policy_at_an_episode_start_and_on_stale_input(tmp_path, clear):
    path, network = _gru_checkpoint(tmp_path / 'gru')
    with torch.no_grad():
        fresh = float(network(torch.tensor([[np.cos(0.3), np.sin(0.3)]],
                                           dtype=torch.float32))[0, 0])
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        Parameter('task', value=TASK), Parameter('mode', value='event'),
        Parameter('checkpoint', value=str(path)),
        # Episode start: no stale input in the test's pauses, only the start may clear. Stale
        # input: a pause of 2 s is a gap in the observations.
        Parameter('max_observation_age_s', value=60.0 if clear == 'episode_start' else 1.0)])
    probe = Probe(TASK, context)
    driver = Node('driver', context=context)
    states = driver.create_publisher(JointState, 'joint_states', qos.SENSOR)
    events = driver.create_publisher(String, 'episode/event', qos.EVENTS)
    spinner = Spinner([policy, probe, driver], context=context).start()

    def command_for(theta: float) -> float:
        # One observation, one command: a second would move the memory on.
        before = len(probe.commands)
        msg = JointState(name=['pendulum_joint'], position=[theta], velocity=[0.0],
                         effort=[0.0])
        msg.header.stamp = ns_to_stamp(driver.get_clock().now().nanoseconds)
        states.publish(msg)

        def answer():
            # Until the first observation the watchdog commands exactly zero (stale input).
            values = [float(v[0]) for _, v in list(probe.commands)[before:] if v[0] != 0.0]
            return values[:1]
        return wait_for(answer, 30, f'a command for the angle {theta}')[0]

    try:
        wait_for(lambda: states.get_subscription_count() and events.get_subscription_count()
                 and policy.command_pub.get_subscription_count(), 30, 'discovery')
        first = command_for(0.3)
        for theta in (1.0, 2.0, 2.5):
            command_for(theta)
        carried = command_for(0.3)
        # The same angle after three others: the GRU's memory changes the command ...
        assert abs(carried - first) > 1e-4
        assert abs(first - fresh) < 1e-5
        if clear == 'episode_start':
            events.publish(String(data=json.dumps(
                {'event': 'start', 'episode': 2,
                 'stamp_ns': driver.get_clock().now().nanoseconds})))
            time.sleep(0.5)
        else:
            stale = policy.status_counts()['stale']
            time.sleep(2.0)
            assert policy.status_counts()['stale'] > stale
        # ... and after the episode start, or the gap, it is a fresh policy's again.
        assert abs(command_for(0.3) - fresh) < 1e-5
    finally:
        spinner.shutdown()
        for node in (*policy.executor_nodes, probe, driver):
            node.destroy_node()
        context.try_shutdown()
