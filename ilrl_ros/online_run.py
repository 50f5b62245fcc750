"""Online RL runs over the ROS 2 graph, asynchronous and synchronous.

Asynchronous: the policy node acts, a learner trains beside it. Synchronous: one process
acts through ``RosEnv``, then updates.

``ilrl learn`` and ``bench/online_rl.py`` call these. The graph runs as ``ros2 launch``
would run it, one process per node, so that learning and the control loop never share an
interpreter (the world does not wait for the learner) and no node's work delays another's.
"""

from dataclasses import dataclass, field, replace
import os
from pathlib import Path
import signal
import subprocess
import sys
import time
from typing import Callable, Optional

from ilrl_ros.graph import config_from_launch, GraphConfig, node_parameters, truthy


def _parameter_text(value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, str) and (value == '' or value.strip() != value):
        return f"'{value}'"
    if isinstance(value, (list, tuple)):
        return '[' + ', '.join(f"'{v}'" for v in value) + ']'
    return str(value)


def node_command(name: str, values: dict) -> list:
    """The command line that runs node ``name`` with parameters ``values``, as ``ros2 run``."""
    command = [sys.executable, '-m', 'ilrl_ros.nodes.start', name, '--ros-args']
    for key, value in values.items():
        command += ['-p', f'{key}:={_parameter_text(value)}']
    return command


class GraphProcesses:
    """A graph's nodes, each in a process of its own; their output goes to one log file."""

    def __init__(self, config: GraphConfig, log_path: Path):
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self.log_path = log_path
        self._log = open(log_path, 'w')
        self.processes = {}
        for name, values in node_parameters(config).items():
            self.processes[name] = subprocess.Popen(
                node_command(name, values), stdout=self._log, stderr=subprocess.STDOUT,
                env=dict(os.environ))

    def poll(self):
        """None while every node runs, else the exit code of one that stopped."""
        for process in self.processes.values():
            if process.poll() is not None:
                return process.returncode
        return None

    def stop(self, timeout_s: float = 20.0) -> None:
        """Stop every node as Ctrl-C would: zero commands, the bag finished."""
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + timeout_s
        for process in self.processes.values():
            try:
                process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._log.close()


def start_graph(config: GraphConfig, log_path: Path) -> GraphProcesses:
    """Run ``config``'s nodes, one process each; their output goes to ``log_path``."""
    return GraphProcesses(config, log_path)


def stop_graph(graph: GraphProcesses) -> None:
    graph.stop()


@dataclass
class OnlineRun:
    """What an online run did: counts, timings, swaps and the episodes it saw."""

    mode: str
    env_steps: int
    seconds: float
    updates: int
    final_checkpoint: Optional[Path]
    episodes: list = field(default_factory=list)
    """(env steps so far, seconds, return, outcome) per finished training episode."""
    swaps: list = field(default_factory=list)
    """(updates, env steps, seconds, checkpoint, accepted) per checkpoint swapped in."""
    robot: dict = field(default_factory=dict)
    """The mock robot's last status (steps, commands on time / missing)."""
    skipped: int = 0


def learning_graph(task: str, seed: int, clock: str, real_time_factor: float, *,
                   actor: bool, record: bool = False, bag_dir: str = 'bags',
                   teleop_topic: str = '') -> GraphConfig:
    """The graph an online run needs: a free-running mock robot and the loop's nodes.

    ``actor``: the policy node acts and the transition publisher runs (asynchronous);
    otherwise the policy node stays idle and ``RosEnv`` commands (synchronous).
    """
    return GraphConfig(task=task, robot_mode='free_run', clock=clock,
                       real_time_factor=real_time_factor, policy_mode='event', expert=False,
                       observation_node=False, seed=seed, transitions=actor, record=record,
                       bag_dir=bag_dir, teleop_topic=teleop_topic)


def learning_graph_from_launch(values: dict) -> GraphConfig:
    """``learn.launch.py``'s graph: its launch argument texts over ``learning_graph``."""
    base = learning_graph('pendulum', 0, 'sim', 1.0, actor=True)
    fixed = {name: getattr(base, name) for name in ('robot_mode', 'policy_mode', 'expert',
                                                    'observation_node', 'transitions')}
    return config_from_launch(values, robot=truthy(values.get('robot', 'true')), **fixed)


def learner_parameters(values: dict) -> dict:
    """The learner node's parameters from ``learn.launch.py``'s argument texts."""
    config = learning_graph_from_launch(values)
    return {'task': config.task, 'use_sim_time': config.robot and config.clock == 'sim',
            'algorithm': values['algorithm'], 'output_dir': values['output_dir'],
            'swap_every': int(values['swap_every']),
            'updates_per_transition': float(values['updates_per_transition']),
            'max_transitions': int(values['max_transitions']), 'seed': config.seed,
            'demonstrations': values['demonstrations'],
            'exploration': config.exploration}


class _RobotStatus:
    """Keeps the mock robot's latched status (its on-time counters)."""

    def __init__(self, node):
        import json

        from std_msgs.msg import String

        from ilrl_ros import qos
        self.last = {}
        node.create_subscription(String, 'mock_robot/status',
                                 lambda m: self.last.update(json.loads(m.data)), qos.LATCHED)


def run_async(task: str, algorithm: str, steps: int, output: Path, *, seed: int = 0,
              clock: str = 'sim', real_time_factor: float = 1.0, swap_every: int = 500,
              updates_per_transition: float = 1.0, config: dict = None,
              demonstrations: str = '', record: bool = False, teleop_topic: str = '',
              graph: bool = True, progress: Callable = None,
              timeout_s: float = None, keep_checkpoints: int = 5,
              replay: str = '') -> OnlineRun:
    """The policy node acts on a free-running robot; a learner trains and swaps beside it.

    With ``graph`` False the graph is already running (started by ``ros2 launch``).
    """
    import json

    import rclpy
    from rclpy.parameter import Parameter

    from ilrl_ros.nodes.common import Spinner, stop_nodes
    from ilrl_ros.nodes.learner import Learner
    output = Path(output)
    process = start_graph(learning_graph(task, seed, clock, real_time_factor, actor=True,
                                         record=record, bag_dir=str(output / 'bags'),
                                         teleop_topic=teleop_topic),
                          output / 'graph.log') if graph else None
    context = rclpy.Context()
    rclpy.init(context=context)
    learner = spinner = None
    try:
        values = {'task': task, 'algorithm': algorithm, 'output_dir': str(output),
                  'swap_every': swap_every, 'updates_per_transition': updates_per_transition,
                  'max_transitions': steps, 'seed': seed, 'demonstrations': demonstrations,
                  'config': json.dumps(config or {}), 'keep_checkpoints': keep_checkpoints,
                  'replay': replay,
                  'use_sim_time': clock == 'sim'}
        learner = Learner(context=context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
        robot = _RobotStatus(learner)
        spinner = Spinner([learner], context=context).start()
        start = time.monotonic()
        deadline = start + (timeout_s or max(600.0, 10 * steps / 20 / real_time_factor))
        last = 0.0
        while learner.online.transitions < steps:
            if process is not None and process.poll() is not None:
                raise RuntimeError(f'a node of the graph stopped (exit {process.poll()}); '
                                   f'see {output / "graph.log"}')
            if time.monotonic() > deadline:
                raise TimeoutError(f'{learner.online.transitions} of {steps} transitions '
                                   f'after {time.monotonic() - start:.0f} s')
            if progress and time.monotonic() - last > 1.0:
                last = time.monotonic()
                progress(learner.online.transitions, steps,
                         {'rollout/ep_return_mean': learner.online.episodes.recent_mean(),
                          'learner/updates': learner.online.learner.updates})
            time.sleep(0.05)
        seconds = time.monotonic() - start
        robot_status = dict(robot.last)
    finally:
        if learner is not None:
            stop_nodes([learner], spinner)
        rclpy.try_shutdown(context=context)
        if process is not None:
            stop_graph(process)
    final = output / 'checkpoints' / 'final'
    return OnlineRun(mode='async', env_steps=learner.online.transitions, seconds=seconds,
                     updates=learner.online.learner.updates,
                     final_checkpoint=final if final.exists() else None,
                     episodes=list(learner.online.episodes.returns),
                     swaps=[tuple(s) for s in learner.swaps], robot=robot_status)


def run_sync(task: str, algorithm: str, steps: int, output: Path, *, seed: int = 0,
             clock: str = 'sim', real_time_factor: float = 1.0, lock_step: bool = False,
             config: dict = None, demonstrations: str = '', snapshot_every: int = 0,
             on_snapshot: Callable = None, graph: bool = True,
             progress: Callable = None, replay: str = '') -> OnlineRun:
    """Act through ``RosEnv``, then update, in this process (the synchronous learner).

    With ``lock_step`` the mock robot waits for each action (deterministic); otherwise it runs
    free and the world goes on while this process updates.
    """
    import gymnasium as gym

    from ilrl_ros.core.checkpoint import save_checkpoint
    from ilrl_ros.core.rl.configs import config_dict
    from ilrl_ros.core.rl.online import OnlineLearner, train_synchronous
    from ilrl_ros.core.spec import load_spec
    from ilrl_ros.core.training import make_config, PRESET_FOR_TASK
    from ilrl_ros.ros_env import RosEnv
    from ilrl_ros.transitions import read_transitions
    output = Path(output)
    spec = load_spec(task)
    graph_config = learning_graph(task, seed, clock, real_time_factor, actor=False)
    if lock_step:
        graph_config = replace(graph_config, robot_mode='lock_step')
    process = start_graph(graph_config, output / 'graph.log') if graph else None
    env = None
    try:
        env = RosEnv(spec, use_sim_time=clock == 'sim')
        robot = _RobotStatus(env.node)
        settings = make_config(algorithm, PRESET_FOR_TASK.get(spec.name), seed=seed,
                               overrides=config or {})
        replayed = read_transitions(replay, spec.observation.size, spec.action.size)[0] \
            if replay else ()
        online = OnlineLearner(algorithm, spec.observation.size,
                               gym.spaces.Box(spec.action.low.astype('float32'),
                                              spec.action.high.astype('float32')), settings,
                               demos=demonstrations or None, replay=replayed)
        counts = train_synchronous(env, online, steps, seed=seed,
                                   snapshot_every=snapshot_every, on_snapshot=on_snapshot,
                                   progress=progress)
        robot_status = dict(robot.last)
    finally:
        if env is not None:
            env.close()
        if process is not None:
            stop_graph(process)
    final = save_checkpoint(output / 'checkpoints' / 'final', online.policy,
                            algorithm=algorithm, spec=spec, config=config_dict(settings),
                            provenance={'online': 'synchronous', **counts})
    return OnlineRun(mode='sync', env_steps=counts['env_steps'], seconds=counts['seconds'],
                     updates=counts['updates'], final_checkpoint=final,
                     episodes=list(online.episodes.returns), robot=robot_status,
                     skipped=counts['skipped'])
