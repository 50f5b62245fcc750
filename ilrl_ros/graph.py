"""The ilrl_ros node graph in one process, for machines without ``ros2 launch``.

``launch/sim.launch.py`` starts the same nodes with the same parameters as separate
processes; this module builds them in one process on one rclpy Context and spins them on a
single-threaded executor per node. The nodes still talk through real DDS topics and services.
"""

from dataclasses import dataclass

import rclpy
from rclpy.parameter import Parameter

from ilrl_ros.core.spec import load_spec
from ilrl_ros.nodes.common import Spinner, stop_nodes

# What a demonstration bag holds besides the task's own sources and command topic.
EXTRA_RECORDED = ('expert/action', 'reward', 'reward/terms', 'return', 'episode/event',
                  'episode/result')


@dataclass
class GraphConfig:
    """Which nodes to run and how; mirrors the arguments of launch/sim.launch.py."""

    task: str = 'track_follow'
    checkpoint: str = ''
    robot: bool = True
    robot_mode: str = 'lock_step'
    clock: str = 'sim'
    real_time_factor: float = 1.0
    policy_mode: str = 'event'
    expert: bool = True
    expert_drive: bool = False
    record: bool = False
    record_autostart: bool = True
    bag_dir: str = 'bags'
    bag_name: str = ''
    seed: int = 0
    max_episodes: int = 0
    observation_node: bool = True
    record_topics: tuple = ()


def recorded_topics(task: str) -> list:
    """The topics a demonstration recording of ``task`` holds."""
    spec = load_spec(task)
    return [s.topic for s in spec.sources.values()] + [spec.action.topic, *EXTRA_RECORDED]


def node_parameters(config: GraphConfig) -> dict:
    """Parameter overrides per node name, as plain values (shared with the launch file)."""
    sim_time = config.robot and config.clock == 'sim'
    common = {'task': config.task, 'use_sim_time': sim_time}
    out = {
        'policy': {**common, 'checkpoint': config.checkpoint, 'mode': config.policy_mode},
        'reward_monitor': dict(common),
        'episode_manager': {**common, 'max_episodes': config.max_episodes,
                            'reset_service': 'mock_robot/reset' if config.robot else ''},
    }
    if config.robot:
        out['mock_robot'] = {'task': config.task, 'mode': config.robot_mode,
                             'clock': config.clock, 'seed': config.seed,
                             'real_time_factor': config.real_time_factor}
    if config.observation_node:
        out['observation'] = dict(common)
    if config.expert:
        out['expert'] = {**common, 'drive': config.expert_drive}
    if config.record:
        topics = recorded_topics(config.task)
        # Extra topics, e.g. a teleoperator's labels for DAgger.
        topics += [t for t in config.record_topics if t not in topics]
        out['demo_recorder'] = {'use_sim_time': sim_time, 'topics': topics,
                                'output_dir': config.bag_dir, 'bag_name': config.bag_name,
                                'autostart': config.record_autostart}
    return out


def truthy(text: str) -> bool:
    """A launch argument's text as a boolean ('true', '1', 'yes', 'on')."""
    return str(text).strip().lower() in ('1', 'true', 'yes', 'on')


def launch_nodes(config: GraphConfig, params_file: str) -> list:
    """launch_ros Node actions for the graph: the parameter file, then the per-node values."""
    from launch_ros.actions import Node
    return [Node(package='ilrl_ros', executable=name, name=name, output='screen',
                 parameters=[params_file, overrides])
            for name, overrides in node_parameters(config).items()]


def _node_class(name: str):
    if name == 'mock_robot':
        from ilrl_ros.nodes.mock_robot import MockRobot
        return MockRobot
    if name == 'observation':
        from ilrl_ros.nodes.observation import Observation
        return Observation
    if name == 'policy':
        from ilrl_ros.nodes.policy import Policy
        return Policy
    if name == 'reward_monitor':
        from ilrl_ros.nodes.reward_monitor import RewardMonitor
        return RewardMonitor
    if name == 'episode_manager':
        from ilrl_ros.nodes.episode_manager import EpisodeManager
        return EpisodeManager
    if name == 'expert':
        from ilrl_ros.nodes.expert import Expert
        return Expert
    if name == 'demo_recorder':
        from ilrl_ros.nodes.demo_recorder import DemoRecorder
        return DemoRecorder
    raise KeyError(name)


class Graph:
    """The nodes of a GraphConfig on one Context, each spun by its own executor thread."""

    def __init__(self, config: GraphConfig, context=None):
        self.config = config
        self._own_context = context is None
        self.context = context or rclpy.Context()
        if self._own_context:
            rclpy.init(context=self.context)
        self.nodes = {}
        self.spinner = None
        try:
            for name, values in node_parameters(config).items():
                overrides = [Parameter(k, value=v) for k, v in values.items()]
                self.nodes[name] = _node_class(name)(context=self.context,
                                                     parameter_overrides=overrides)
        except BaseException:
            self.close()
            raise
        self.spinner = Spinner(self.nodes.values(), context=self.context)

    def start(self) -> 'Graph':
        self.spinner.start()
        return self

    def add_node(self, node) -> None:
        """Spin one more node (a test's probe, an operator) with the graph."""
        self.spinner.add(node)

    def close(self) -> None:
        """Stop spinning, have every node command zero and close its files, then shut down.

        The context goes last: the zero commands and the recorder's bag need it.
        """
        stop_nodes(list(self.nodes.values()), self.spinner)
        self.spinner = None
        self.nodes = {}
        if self._own_context:
            rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'Graph':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
