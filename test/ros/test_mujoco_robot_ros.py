"""The MuJoCo robot over real DDS: joint states by the MJCF's names, efforts as commands.

A lock-step mock robot serving gymnasium's Reacher-v5 is the in-process simulator step for
step, seen through ``sensor_msgs/JointState`` and driven by ``Float64MultiArray`` efforts;
the expert node reaches the target through the graph.
"""

import gymnasium as gym
import numpy as np
import pytest
from sensor_msgs.msg import JointState

from ilrl_ros import qos
from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env, make_expert
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.ros_env import RosEnv
from ilrl_testing import Probe, wait_for

pytest.importorskip('mujoco')
TASK = 'mujoco_reacher'


def test_lock_step_mujoco_robot_publishes_joint_states_and_applies_efforts():
    spec = load_spec(TASK)
    graph = Graph(GraphConfig(task=TASK, robot_mode='lock_step', expert=False,
                              observation_node=False, seed=11)).start()
    states = []
    graph.nodes['mock_robot'].create_subscription(JointState, 'joint_states', states.append,
                                                  qos.SENSOR_EVERY)
    env = RosEnv(spec, context=graph.context)
    sim = make_env(spec)
    reference = gym.make('Reacher-v5').unwrapped
    expert = make_expert(spec)
    try:
        obs, _ = env.reset()
        robot = graph.nodes['mock_robot']
        expected, _ = sim.reset(seed=robot.params.seed + robot.episode - 1)
        reference.reset(seed=robot.params.seed + robot.episode - 1)
        assert np.array_equal(obs, expected)
        done, steps = False, 0
        while not done:
            # The expert's efforts, from the in-process state: the same as the robot's.
            action = expert.act(sim.current_readings())
            obs, reward, terminated, truncated, info = env.step(action)
            s_obs, s_reward, s_terminated, s_truncated, s_info = sim.step(action)
            reference.step(action)
            assert np.array_equal(obs, s_obs), steps
            assert reward == s_reward, steps
            assert (terminated, truncated, info['outcome']) == \
                (s_terminated, s_truncated, s_info['outcome'])
            steps += 1
            done = terminated or truncated
        assert (steps, info['outcome']) == (50, 'success')
        # The episode ended: the episode manager's reset may already have followed it, so
        # the last step's message need not be the newest.
        final = list(sim.current_readings()['joint_states'].position)
        last = wait_for(lambda: next((m for m in reversed(list(states))
                                      if list(m.position) == final), None), 10,
                        'the joint states of the last step')
        assert list(last.name) == ['joint0', 'joint1', 'target_x', 'target_y']
        # The state the efforts led to is gymnasium's after the same actions.
        np.testing.assert_allclose(last.position, reference.data.qpos, atol=1e-12)
        np.testing.assert_allclose(last.velocity, reference.data.qvel, atol=1e-12)
        # The effort each motor applied: 200 N m (its gear) per unit of command.
        np.testing.assert_allclose(last.effort, [*(200.0 * action), 0.0, 0.0], atol=1e-9)
    finally:
        env.close()
        graph.close()


def test_expert_reaches_the_target_through_the_graph():
    graph = Graph(GraphConfig(task=TASK, expert_drive=True, max_episodes=2, seed=3))
    probe = Probe(TASK, graph.context)
    graph.add_node(probe)
    with graph:
        wait_for(lambda: len(probe.results) >= 2, 60, 'two Reacher episodes')
    assert [(r['outcome'], r['length']) for r in probe.results] == [('success', 50)] * 2
    # Random efforts score about -43 an episode.
    assert all(-12.0 < r['return'] < -1.0 for r in probe.results), probe.results
    # The commands went out as Float64MultiArray efforts within the bounds.
    efforts = np.array([v for _, v in probe.commands])
    assert efforts.shape[1] == 2 and np.all(np.abs(efforts) <= 1.0)
