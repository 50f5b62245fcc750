"""`ilrl train <algo> --ros`: any algorithm trains through RosEnv on the running graph."""

import pytest

from ilrl_ros.cli import build_parser
from ilrl_ros.core.checkpoint import load_checkpoint, save_checkpoint
from ilrl_ros.core.training import train_rl
from ilrl_ros.graph import Graph, GraphConfig
from ilrl_ros.ros_env import RosEnv


@pytest.mark.parametrize('algorithm, steps, overrides', [
    ('dqn', 300, {'learning_starts': 50, 'batch_size': 32}),     # discretised torques
    ('ppo', 256, {'num_steps': 128, 'batch_size': 64}),          # on-policy, vectorised
])
def test_an_algorithm_trains_through_the_graph_and_writes_a_checkpoint(tmp_path, algorithm,
                                                                       steps, overrides):
    graph = Graph(GraphConfig(task='pendulum', robot_mode='lock_step', expert=False,
                              observation_node=False, seed=3)).start()
    made = []

    def train_env():
        made.append(RosEnv('pendulum', context=graph.context))
        return made[-1]
    try:
        run = train_rl(algorithm, task='pendulum', steps=steps, eval_episodes=1,
                       overrides=overrides, train_env=train_env)
    finally:
        for env in made:
            env.close()
        graph.close()
    assert len(made) == 1
    # Every step went through the robot: RosEnv counted them.
    assert made[0].counts['steps'] >= steps
    assert run.env_steps >= steps and run.evaluation is not None
    path = save_checkpoint(tmp_path / algorithm, run.policy, algorithm=algorithm,
                           spec=run.spec, config=run.config, provenance={})
    load_checkpoint(path, expected_spec=run.spec)


def test_the_ros_flag_needs_a_task():
    args = build_parser().parse_args(['train', 'sac', '--env', 'Pendulum-v1', '--ros'])
    with pytest.raises(ValueError, match='--task'):
        args.func(args)
    args = build_parser().parse_args(['train', 'sac', '--task', 'pendulum', '--ros',
                                      '--ros-clock', 'wall'])
    assert args.ros and args.ros_clock == 'wall'
