"""Fleets: N robots' graphs, each in its own ROS namespace, on one Context or one launch.

A robot of a fleet is the one-robot graph of ``ilrl_ros.graph`` (mock robot, policy,
episode manager, expert, ...) with every node in the robot's namespace: its relative topics
and services resolve under it (``/robot_2/scan``, ``/robot_2/mock_robot/reset``), and its
simulation clock is ``/robot_2/clock`` (``/clock`` remapped for each of its nodes, so that
robots stepping in lock step each keep their own time). Robot i (from 1) is named
``<namespace>_<i>`` (``robot_<i>`` when no namespace is given) and starts from seed
``seed + i - 1``. With one robot the namespace is used as given ('' for none).

Recording is per robot (a recorder in each namespace writing under ``<bag_dir>/<robot>``)
or shared (one recorder at the root recording every robot's topics into one bag; its log
times are wall time, so only a fleet on the wall clock can share one). Both convert per
robot: ``ilrl_ros.convert.bag_to_dataset(..., namespace=robot)``.
"""

from dataclasses import dataclass, replace
from pathlib import Path

from ilrl_ros.graph import (clock_remap, Graph, GraphConfig, node_parameters,
                            robot_namespace)

DEFAULT_PREFIX = 'robot'


def robot_namespaces(config: GraphConfig) -> list:
    """The namespace of each robot of ``config``, in order (see the module doc)."""
    if not isinstance(config.robots, int) or config.robots < 1:
        raise ValueError(f'robots must be a whole number of at least 1, got {config.robots!r}')
    base = robot_namespace(config.namespace)
    if config.robots == 1:
        return [base]
    return [f'{base or DEFAULT_PREFIX}_{i}' for i in range(1, config.robots + 1)]


def shared_recording(config: GraphConfig) -> bool:
    """Whether ``config`` records every robot with one recorder (checked: it can)."""
    if not (config.record and config.fleet_recorder == 'shared'):
        return False
    if config.robot and config.clock == 'sim':
        raise ValueError('fleet_recorder shared records every robot in one bag, stamped with '
                         'one clock, but each simulated robot has its own sim clock: use '
                         'fleet_recorder per_robot, or clock wall')
    return True


def robot_config(config: GraphConfig, index: int) -> GraphConfig:
    """The one-robot GraphConfig of robot ``index`` (0-based) of ``config``'s fleet."""
    namespaces = robot_namespaces(config)
    shared = shared_recording(config)
    bag_dir = config.bag_dir
    if config.record and not shared and len(namespaces) > 1:
        bag_dir = str(Path(config.bag_dir) / namespaces[index])
    return replace(config, robots=1, namespace=namespaces[index], seed=config.seed + index,
                   record=config.record and not shared, bag_dir=bag_dir)


def shared_recorder_parameters(config: GraphConfig) -> dict:
    """Parameters of the one root-namespace recorder that records every robot's topics."""
    values = None
    topics = []
    for index, namespace in enumerate(robot_namespaces(config)):
        one = node_parameters(replace(robot_config(config, index), record=True))
        values = one['demo_recorder']
        topics += [t if t.startswith('/') else f'/{namespace}/{t}' if namespace else f'/{t}'
                   for t in values['topics']]
    return {**values, 'topics': list(dict.fromkeys(topics)), 'use_sim_time': False,
            'output_dir': config.bag_dir}


def launch_plan(config: GraphConfig) -> list:
    """(node name, namespace, remappings, parameter values) of every node a launch starts.

    ``ilrl_ros.launch_actions.launch_nodes`` turns each into a launch_ros Node; this holds
    what they are, testable without launch_ros.
    """
    plan = []
    for index, namespace in enumerate(robot_namespaces(config)):
        remaps = [clock_remap(namespace)] if namespace else []
        for name, values in node_parameters(robot_config(config, index)).items():
            plan.append((name, namespace, remaps, values))
    if shared_recording(config):
        plan.append(('demo_recorder', '', [], shared_recorder_parameters(config)))
    return plan


class Fleet:
    """The graphs of a fleet's robots on one Context (``ilrl sim --robots N``).

    Each robot is a ``Graph`` (so it starts, runs and stops as one); ``graphs`` maps each
    robot's namespace to it.
    """

    def __init__(self, config: GraphConfig, context=None):
        import rclpy
        self.config = config
        self.namespaces = robot_namespaces(config)
        self.shared = shared_recording(config)
        self._own_context = context is None
        self.context = context or rclpy.Context()
        if self._own_context:
            rclpy.init(context=self.context)
        self.graphs = {}
        self.recorder = None
        self._spinner = None
        try:
            for index, namespace in enumerate(self.namespaces):
                self.graphs[namespace] = Graph(robot_config(config, index),
                                               context=self.context, namespace=namespace)
            if self.shared:
                from rclpy.parameter import Parameter

                from ilrl_ros.nodes.common import Spinner
                from ilrl_ros.nodes.demo_recorder import DemoRecorder
                values = shared_recorder_parameters(config)
                self.recorder = DemoRecorder(
                    context=self.context,
                    parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
                self._spinner = Spinner([self.recorder], context=self.context)
        except BaseException:
            self.close()
            raise

    def start(self) -> 'Fleet':
        for graph in self.graphs.values():
            graph.start()
        if self._spinner is not None:
            self._spinner.start()
        return self

    def episode_managers(self) -> dict:
        """Each robot's episode manager node, by namespace."""
        return {ns: graph.nodes['episode_manager'] for ns, graph in self.graphs.items()}

    def done(self) -> bool:
        """Whether every robot has run its max_episodes (never, with max_episodes 0)."""
        wanted = self.config.max_episodes
        return bool(wanted) and all(len(m.results) >= wanted and m.state != 'running'
                                    for m in self.episode_managers().values())

    def close(self) -> None:
        """Stop every robot's graph (each commands zero, closes its bag), then the context."""
        import rclpy

        from ilrl_ros.nodes.common import stop_nodes
        if self.recorder is not None:
            stop_nodes([self.recorder], self._spinner)
            self.recorder, self._spinner = None, None
        for graph in self.graphs.values():
            graph.close()
        self.graphs = {}
        if self._own_context:
            rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'Fleet':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


def file_parameters(params_file: str, name: str, namespace: str) -> list:
    """What a launched node takes from the parameter file: the file, or its values.

    A parameter file's node keys (``policy:``) match only the node of that name in the root
    namespace, so a namespaced node is given the values of its section (and ``/**``) instead.
    """
    if not namespace:
        return [params_file]
    import yaml
    with open(params_file) as file:
        data = yaml.safe_load(file) or {}
    values = {}
    for key in ('/**', name, '/' + name):
        values.update((data.get(key) or {}).get('ros__parameters') or {})
    return [values] if values else []


@dataclass
class FleetCollection:
    """What ``collect`` gathered: the merged dataset and each robot's part of it."""

    data: object
    """The merged ``Demonstrations``; ``data.info['robots']`` maps each robot to its bag,
    rows and episode ids (episode ids are unique across robots)."""
    robots: list
    """One dict per robot: namespace, bag, episodes (results), steps, rows, seconds (its wall
    time from its first episode's start to its last one's end) and steps_per_s."""
    seconds: float
    """Wall time from the first robot's start to the last robot's end."""

    @property
    def steps(self) -> int:
        return sum(robot['steps'] for robot in self.robots)

    @property
    def steps_per_s(self) -> float:
        return self.steps / self.seconds if self.seconds > 0 else 0.0


def collection_config(config: GraphConfig, out) -> GraphConfig:
    """The fleet graph that ``collect`` runs: the expert drives, each robot records."""
    if config.record and config.fleet_recorder == 'shared':
        raise ValueError('collect records each robot with its own recorder; leave '
                         'fleet_recorder per_robot')
    return replace(config, expert=True, expert_drive=True, record=True,
                   record_autostart=False, fleet_recorder='per_robot',
                   bag_dir=str(Path(out) / 'bags'), bag_name='collect', max_episodes=0)


def _episodes_only(data, episodes: list):
    """The rows of ``data`` that belong to the given episode numbers."""
    import numpy as np
    keep = np.isin(data.episode, episodes)
    return replace(data, observations=data.observations[keep], actions=data.actions[keep],
                   episode=data.episode[keep], stamp_ns=data.stamp_ns[keep],
                   reward=data.reward[keep])


def collect(config: GraphConfig, episodes: int, out, context=None,
            episode_timeout_s: float = None) -> FleetCollection:
    """Expert demonstrations from every robot of ``config`` at once, through the real graph.

    Each robot's expert drives its mock robot; in parallel (a thread per robot), each
    robot's recorder is started and matched, its episode restarted, ``episodes`` finished
    episodes are awaited, and the recorder stopped. Every bag is converted in its robot's
    namespace and the datasets merged, episode ids kept apart per robot.
    """
    from concurrent.futures import ThreadPoolExecutor
    import time

    from ilrl_ros.convert import bag_to_dataset
    from ilrl_ros.core.rollouts import aggregate
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.graph_client import Operator
    if episodes < 1:
        raise ValueError(f'episodes must be at least 1, got {episodes}')
    spec = load_spec(config.task)
    timeout_s = (episode_timeout_s or spec.termination.timeout_s * 4 + 60) * episodes
    config = collection_config(config, out)
    with Fleet(config, context) as fleet:
        operators = {ns: Operator(fleet.context, name='ilrl_collect', namespace=ns or None)
                     for ns in fleet.namespaces}

        def run_robot(namespace: str) -> dict:
            op = operators[namespace]
            bag = Path(op.trigger('demo_recorder/start'))
            op.wait_recorder_matched()
            started = time.monotonic()
            after = op.restart_episode()
            results = op.wait_episodes(episodes, namespace or 'robot', timeout_s,
                                       after_episode=after)
            seconds = time.monotonic() - started
            op.trigger('demo_recorder/stop')
            steps = sum(int(r['length']) for r in results)
            return {'namespace': namespace, 'bag': str(bag), 'episodes': results,
                    'steps': steps, 'seconds': seconds, 'steps_per_s': steps / seconds,
                    'started': started}

        try:
            with ThreadPoolExecutor(len(operators)) as pool:
                robots = list(pool.map(run_robot, fleet.namespaces))
        finally:
            for op in operators.values():
                op.close()
    first = min(r['started'] for r in robots)
    seconds = max(r['started'] + r['seconds'] for r in robots) - first
    datasets, parts = [], {}
    offset = 0
    for robot in robots:
        data, _ = bag_to_dataset(robot['bag'], spec, namespace=robot['namespace'])
        # The bag also holds the episode the restart aborted and the start of the one after
        # the last: only the awaited episodes are kept.
        data = _episodes_only(data, [int(r['episode']) for r in robot['episodes']])
        datasets.append(replace(data, info={**data.info, 'robot': robot['namespace']}))
        robot['rows'] = len(data)
        del robot['started']
        parts[robot['namespace']] = {'bag': robot['bag'], 'rows': len(data),
                                     'episode_ids': [offset, offset + data.num_episodes - 1]}
        offset += data.num_episodes
    merged = aggregate(datasets)
    merged = replace(merged, info={**merged.info, 'robots': parts})
    return FleetCollection(data=merged, robots=robots, seconds=seconds)
