"""Every RL algorithm's checkpoint runs unchanged in the policy node on the same task."""

import time

import numpy as np
import pytest
from rclpy.node import Node
from rclpy.parameter import Parameter
from rcl_interfaces.srv import SetParameters
from sensor_msgs.msg import JointState

from ilrl_ros import qos
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.training import ALGORITHMS, train_rl
from ilrl_ros.messages import ns_to_stamp
from ilrl_ros.nodes.common import Spinner
from ilrl_ros.nodes.policy import Policy
from ilrl_testing import Probe, ros_context, wait_for

# Just enough steps for each algorithm to run its updates once or twice: this checks the
# plumbing from training to the robot, not the learning (the algorithms' tests do that).
TINY_STEPS = {'reinforce': 400, 'a2c': 400, 'ppo': 400, 'dqn': 600, 'ddpg': 600, 'td3': 600,
              'sac': 600, 'mbrl': 700, 'lqr': None, 'recurrent_ppo': 256}
TINY_SETTINGS = {'ppo': {'num_envs': 2, 'num_steps': 128, 'batch_size': 64},
                 'recurrent_ppo': {'num_envs': 2, 'num_steps': 64, 'batch_size': 64,
                                   'seq_len': 16, 'epochs': 2},
                 'mbrl': {'random_steps': 500, 'steps_per_iteration': 200,
                          'first_fit_steps': 100, 'fit_steps': 50}}


@pytest.fixture(scope='module')
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp('rl')
    out = {}
    for algorithm in ALGORITHMS:
        run = train_rl(algorithm, task='pendulum', steps=TINY_STEPS[algorithm], seed=1,
                       eval_episodes=0, overrides=TINY_SETTINGS.get(algorithm))
        out[algorithm] = save_checkpoint(folder / algorithm, run.policy, algorithm=algorithm,
                                         spec=run.spec, config=run.config,
                                         provenance={'test': True})
    return out


def test_every_algorithm_is_covered():
    assert set(TINY_STEPS) == set(ALGORITHMS)


@pytest.mark.parametrize('algorithm', sorted(ALGORITHMS))
def test_checkpoint_loads_for_the_task_and_acts_in_bounds(checkpoints, algorithm):
    spec = load_spec('pendulum')
    loaded = load_checkpoint(checkpoints[algorithm], expected_spec=spec)
    assert loaded.manifest['algorithm'] == algorithm
    for theta in (0.0, 1.0, -2.5, np.pi):
        action = loaded.act(np.array([np.cos(theta), np.sin(theta), 0.5], dtype=np.float32))
        assert action.shape == (1,)
        assert spec.action.low[0] - 1e-6 <= action[0] <= spec.action.high[0] + 1e-6


def test_the_running_policy_node_takes_every_algorithms_checkpoint(checkpoints):
    context = ros_context()
    policy = Policy(context=context, parameter_overrides=[
        Parameter('task', value='pendulum'), Parameter('mode', value='event')])
    probe = Probe('pendulum', context)
    driver = Node('driver', context=context)
    states = driver.create_publisher(JointState, 'joint_states', qos.SENSOR)
    client = driver.create_client(SetParameters, 'policy/set_parameters')
    spinner = Spinner([policy, probe, driver], context=context).start()

    def publish(theta):
        msg = JointState(name=['pendulum_joint'], position=[theta], velocity=[0.0],
                         effort=[0.0])
        msg.header.stamp = ns_to_stamp(driver.get_clock().now().nanoseconds)
        states.publish(msg)

    try:
        wait_for(client.service_is_ready, 30, 'the policy parameter service')
        for algorithm, path in sorted(checkpoints.items()):
            request = SetParameters.Request(parameters=[
                Parameter('checkpoint', value=str(path)).to_parameter_msg()])
            future = client.call_async(request)
            result = wait_for(lambda f=future: f.result() if f.done() else None, 60,
                              f'the swap to {algorithm}')
            assert result.results[0].successful, result.results[0].reason
            t0 = time.monotonic()
            wait_for(lambda t=t0: (publish(0.3), len(probe.values_since(t)))[1], 30,
                     f'a command from the {algorithm} checkpoint')
            values = probe.values_since(t0)
            assert np.all(np.abs(values) <= 2.0 + 1e-6)
            assert policy.current_checkpoint == path
    finally:
        spinner.shutdown()
        for node in (*policy.executor_nodes, probe, driver):
            node.destroy_node()
        context.try_shutdown()
