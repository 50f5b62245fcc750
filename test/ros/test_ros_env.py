"""RosEnv against the simulator.

Through a lock-step mock robot it is the simulator, step for step (observations, rewards,
ends); and it fails with what is missing when the graph is.
"""

import numpy as np
import pytest

from ilrl_ros.core.spec import load_spec
from ilrl_ros.core.tasks import make_env
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.ros_env import RosEnv, RosEnvTimeout


def test_lock_step_ros_env_equals_the_simulator_step_for_step():
    spec = load_spec('pendulum')
    graph = Graph(GraphConfig(task='pendulum', robot_mode='lock_step', expert=False,
                              observation_node=False, seed=5)).start()
    env = RosEnv(spec, context=graph.context)
    sim = make_env(spec)
    rng = np.random.default_rng(0)
    try:
        for _ in range(2):
            obs, info = env.reset()
            robot = graph.nodes['mock_robot']
            # The mock robot starts its k-th episode (counting its start-up reset) from
            # seed + k - 1.
            expected, _ = sim.reset(seed=robot.params.seed + robot.episode - 1)
            assert np.array_equal(obs, expected)
            steps, done = 0, False
            while not done:
                action = rng.uniform(-2.0, 2.0, 1)
                obs, reward, terminated, truncated, info = env.step(action)
                s_obs, s_reward, s_terminated, s_truncated, s_info = sim.step(action)
                assert np.array_equal(obs, s_obs), steps
                assert reward == s_reward, steps
                assert (terminated, truncated) == (s_terminated, s_truncated), steps
                assert info['outcome'] == s_info['outcome']
                assert info['skipped'] == 0
                steps += 1
                done = terminated or truncated
            assert steps == 200 and truncated and info['outcome'] in ('timeout', 'success')
        with pytest.raises(RuntimeError, match='reset'):
            env.step([0.0])
        with pytest.raises(ValueError, match='finite'):
            env.reset()
            env.step([np.nan])
    finally:
        env.close()
        graph.close()


def test_without_a_graph_reset_says_what_is_missing(ros_context):
    env = RosEnv('pendulum', context=ros_context, reset_timeout_s=1.0)
    try:
        with pytest.raises(RosEnvTimeout, match='episode manager'):
            env.reset()
    finally:
        env.close()
