"""The ilrl_ros node graph in one process, for machines without ``ros2 launch``.

``launch/sim.launch.py`` starts the same nodes with the same parameters as separate
processes; this module builds them in one process on one rclpy Context and spins them on a
single-threaded executor per node. The nodes still talk through real DDS topics and services.
``GraphConfig`` is the one description of the graph that both, and ``ilrl sim``, derive from.
"""

from dataclasses import dataclass, field, fields
import re

from ilrl_ros.core.spec import bundled_tasks, load_spec

# The managed (lifecycle) nodes: configured, then activated, by the graph or the launch file.
# The robot comes last: what it publishes once active finds the others active already.
LIFECYCLE_NODES = ('demo_recorder', 'episode_manager', 'policy', 'mock_robot')
# The command arbiter's input per source (nodes/command_arbiter.py), in the graph's order of
# priority: the episode manager's safety commands > a person's teleop > expert > policy.
ARBITER_INPUTS = {'safety': 'arbiter/safety', 'teleop': 'arbiter/teleop',
                  'expert': 'arbiter/expert', 'policy': 'arbiter/policy'}
# What a demonstration bag holds besides the task's own sources and command topic.
EXTRA_RECORDED = ('expert/action', 'reward', 'reward/terms', 'return', 'episode/event',
                  'episode/result')


def _described(help_text: str, *, flag: str = None, launch: bool = True, cli: bool = True,
               choices: tuple = ()) -> dict:
    """Metadata of a GraphConfig field.

    Its help, its `ilrl sim` flag, whether launch files offer it as an argument (by the
    field's name), and the values it may take.
    """
    return {'help': help_text, 'flag': flag, 'launch': launch, 'cli': cli, 'choices': choices}


@dataclass
class GraphConfig:
    """Which nodes to run and how: the one description of the graph.

    ``ilrl sim``'s flags (``add_graph_flags``), the launch files' arguments
    (``launch_arguments``), the ``ilrl sim`` command lines that demo and DAgger build
    (``sim_argv``) and the nodes' parameters (``node_parameters``) all derive from these
    fields; adding an argument is adding a field here.
    """

    task: str = field(default='track_follow', metadata=_described(
        f'Task spec: a bundled task name ({", ".join(bundled_tasks())}) or a YAML path.'))
    namespace: str = field(default='', metadata=_described(
        "ROS namespace of the robot's nodes and topics (e.g. robot_1: /robot_1/scan); with "
        "--robots N, the prefix of the robots' namespaces <namespace>_1 .. <namespace>_N "
        "(empty: robot_1 ..). Empty with one robot: no namespace."))
    robots: int = field(default=1, metadata=_described(
        'Robots, each with its mock robot, policy, episode manager (and expert, recorder) in '
        'its own namespace, start seed seed + i - 1 and sim clock <namespace>/clock.'))
    fleet_recorder: str = field(default='per_robot', metadata=_described(
        "With --record and several robots: per_robot (a recorder in each robot's namespace, "
        "bags under <bag_dir>/<namespace>) or shared (one recorder of every robot's topics; "
        'clock wall only).', choices=('per_robot', 'shared')))
    checkpoint: str = field(default='', metadata=_described(
        'Checkpoint folder the policy starts with; empty: it commands nothing.'))
    robot: bool = field(default=True, metadata=_described(
        "No mock robot: run the loop against a real robot's topics.", flag='--no-robot',
        launch=False))
    robot_mode: str = field(default='lock_step', metadata=_described(
        'Mock robot stepping: lock_step (deterministic) or free_run.',
        choices=('lock_step', 'free_run')))
    clock: str = field(default='sim', metadata=_described(
        'sim: simulation time on /clock (use_sim_time); wall: real time.',
        choices=('sim', 'wall')))
    real_time_factor: float = field(default=1.0, metadata=_described(
        'free_run speed: simulated seconds per wall second.'))
    policy_mode: str = field(default='event', metadata=_described(
        'Policy: event (each new observation) or timer (fixed rate).',
        choices=('event', 'timer')))
    expert: bool = field(default=True, metadata=_described(
        'Do not run the expert node.', flag='--no-expert', launch=False))
    expert_drive: bool = field(default=False, metadata=_described(
        'The expert drives the robot (demonstrations).'))
    expert_source: str = field(default='scripted', metadata=_described(
        "What the expert node runs: scripted (the task's expert) or checkpoint:<folder> (a "
        "trained teacher acting on its own task's observation).", flag='--expert'))
    record: bool = field(default=False, metadata=_described('Run demo_recorder on the task '
                                                            'topics.'))
    record_autostart: bool = field(default=True, metadata=_described(
        'Whether the recorder starts at once; otherwise (--record-no-autostart, '
        'record_autostart:=false) it waits for its ~/start service.',
        flag='--record-no-autostart'))
    activate: bool = field(default=True, metadata=_described(
        'Bring the lifecycle nodes (policy, mock robot, episode manager, recorder) to active; '
        'otherwise (--no-activate, activate:=false) they are left configured (inactive) for '
        'a lifecycle manager, e.g. `ros2 lifecycle set /policy activate`.',
        flag='--no-activate'))
    bag_dir: str = field(default='bags', metadata=_described('Where the recorder writes bags.'))
    bag_name: str = field(default='', metadata=_described(
        'Bag folder name; empty: timestamped.', launch=False))
    seed: int = field(default=0, metadata=_described('Start-state seed of the mock robot.'))
    max_episodes: int = field(default=0, metadata=_described(
        'Episodes to run: the episode manager stops resetting after this many, and `ilrl sim` '
        'then prints their results and exits (0: run on).', flag='--episodes'))
    observation_node: bool = field(default=True, metadata=_described(
        'Do not run the observation node.', flag='--no-observation-node', launch=False))
    transitions: bool = field(default=False, metadata=_described(
        'Run the transition publisher: the transitions of the loop on the transitions topic '
        '(for an online learner); recorded too with --record.'))
    exploration: str = field(default='none', metadata=_described(
        'How the policy explores (online learning): none, sample or noise.',
        choices=('none', 'sample', 'noise')))
    teleop_topic: str = field(default='', metadata=_described(
        "A person's command topic that takes over from the policy while it is active "
        '(interventions); empty: none.'))
    arbiter: bool = field(default=True, metadata=_described(
        'No command arbiter: the policy, the expert and the episode manager then publish '
        "straight to the robot's command topic (nothing decides who drives).",
        flag='--no-arbiter'))
    reset_controller: str = field(default='', metadata=_described(
        "What brings the robot back to a start state between episodes: empty (the robot's "
        'reset service, or an operator), expert, pendulum_rest or checkpoint:<folder>.'))
    action_delay_s: float = field(default=0.0, metadata=_described(
        'Mock robot: seconds before a command takes effect (lock_step: whole periods).'))
    observation_delay_s: float = field(default=0.0, metadata=_described(
        'Mock robot: seconds before a measurement is published (stamped when measured).'))
    record_topics: tuple = field(default=(), metadata=_described(
        "Also record this topic (repeatable), e.g. a teleoperator's labels teleop/cmd_vel for "
        '`ilrl dagger --label-topic`.', flag='--record-topic', launch=False))


def _flag(spec) -> str:
    return spec.metadata['flag'] or '--' + spec.name.replace('_', '-')


def _graph_fields(kind: str) -> list:
    return [spec for spec in fields(GraphConfig) if spec.metadata[kind]]


def add_graph_flags(parser) -> None:
    """Add a flag for every GraphConfig field `ilrl sim` offers, with its help."""
    for spec in _graph_fields('cli'):
        help_text = spec.metadata['help']
        if spec.type is bool or isinstance(spec.default, bool):
            # A flag says the opposite of a default that is on (--no-robot).
            parser.add_argument(_flag(spec), dest=spec.name, help=help_text,
                                action='store_false' if spec.default else 'store_true')
        elif spec.default == ():
            parser.add_argument(_flag(spec), dest=spec.name, help=help_text, action='append',
                                default=[], metavar=spec.name.upper().rstrip('S'))
        else:
            parser.add_argument(_flag(spec), dest=spec.name, type=type(spec.default),
                                default=spec.default, choices=spec.metadata['choices'] or None,
                                help=f'{help_text} (default: %(default)s)' if spec.default != ''
                                else help_text)


def config_from_flags(args) -> 'GraphConfig':
    """The GraphConfig that ``add_graph_flags``' flags describe."""
    values = {spec.name: getattr(args, spec.name) for spec in _graph_fields('cli')}
    values['record_topics'] = tuple(values.get('record_topics', ()))
    return GraphConfig(**values)


def sim_argv(config: 'GraphConfig') -> list:
    """The ``ilrl sim`` arguments that run ``config`` (what differs from the defaults)."""
    argv = []
    for spec in _graph_fields('cli'):
        value = getattr(config, spec.name)
        if value == spec.default:
            continue
        if isinstance(spec.default, bool):
            argv.append(_flag(spec))
        elif spec.default == ():
            argv += [f'{_flag(spec)}={item}' for item in value]
        else:
            # --flag=value: a value that starts with '-' is not taken for a flag.
            argv.append(f'{_flag(spec)}={value}')
    missing = [spec.name for spec in fields(GraphConfig)
               if not spec.metadata['cli'] and getattr(config, spec.name) != spec.default]
    if missing:
        raise ValueError(f'`ilrl sim` has no flag for {", ".join(missing)}; it runs the '
                         f'default for them')
    return argv


def launch_arguments(names=None, **defaults) -> list:
    """(name, default text, description) of launch arguments, for DeclareLaunchArgument.

    ``names`` default to every field launch files offer; ``defaults`` replace a field's.
    """
    specs = {spec.name: spec for spec in _graph_fields('launch')}
    out = []
    for name in names or specs:
        spec = specs[name]
        default = defaults.get(name, spec.default)
        text = str(default).lower() if isinstance(default, bool) else str(default)
        out.append((name, text, spec.metadata['help']))
    return out


def config_from_launch(values: dict, **fixed) -> 'GraphConfig':
    """The GraphConfig of launch argument texts ``values``, with ``fixed`` fields set as given."""
    config = {}
    for spec in _graph_fields('launch'):
        if spec.name not in values:
            continue
        text = values[spec.name]
        kind = type(spec.default)
        try:
            value = truthy(text) if kind is bool else kind(text)
        except ValueError:
            raise LaunchArgumentError(f'launch argument {spec.name}:={text!r} is not a '
                                      f'{kind.__name__}') from None
        if spec.metadata['choices'] and value not in spec.metadata['choices']:
            raise LaunchArgumentError(
                f'launch argument {spec.name}:={text!r}; expected one of '
                f'{", ".join(spec.metadata["choices"])}')
        config[spec.name] = value
    config = GraphConfig(**{**config, **fixed})
    # A task that does not load fails the launch here, before any node starts: `ros2 launch`
    # prints this one sentence and exits 1, instead of every node dying with a traceback.
    try:
        load_spec(config.task)
    except (ValueError, OSError) as error:
        raise LaunchArgumentError(f'launch argument task:={config.task!r}: {error}') from None
    return config


class LaunchArgumentError(ValueError):
    """A launch argument has a value the graph cannot run with; the message says which."""


def recorded_topics(task: str) -> list:
    """The topics a demonstration recording of ``task`` holds."""
    spec = load_spec(task)
    return [s.topic for s in spec.sources.values()] + [spec.action.topic, *EXTRA_RECORDED]


def node_parameters(config: GraphConfig) -> dict:
    """Parameter overrides per node name, as plain values (shared with the launch file)."""
    sim_time = config.robot and config.clock == 'sim'
    common = {'task': config.task, 'use_sim_time': sim_time}
    out = {
        'policy': {**common, 'checkpoint': config.checkpoint, 'mode': config.policy_mode,
                   'exploration': config.exploration, 'teleop_topic': config.teleop_topic},
        'reward_monitor': dict(common),
        'episode_manager': {**common, 'max_episodes': config.max_episodes,
                            'reset_service': 'mock_robot/reset' if config.robot else '',
                            'reset_controller': config.reset_controller},
    }
    # One driver at a time: every commanding node has an input of the arbiter, which alone
    # publishes on the robot's command topic.
    out['policy']['command_topic'] = ARBITER_INPUTS['policy'] if config.arbiter else ''
    out['episode_manager']['command_topic'] = ARBITER_INPUTS['safety'] if config.arbiter \
        else ''
    if config.arbiter:
        lock_step = config.robot and config.robot_mode == 'lock_step'
        # A lock-step robot steps only on a command stamped with its observation: there a
        # person's commands reach it through the policy's relay (teleop_topic), stamped.
        teleop = config.teleop_topic if config.teleop_topic and not lock_step \
            else ARBITER_INPUTS['teleop']
        inputs = {**ARBITER_INPUTS, 'teleop': teleop}
        out['command_arbiter'] = {
            **common, 'source_names': list(inputs), 'source_topics': list(inputs.values()),
            # A lock-step robot steps on every command: a zero nobody asked for is a step.
            'zero_on_timeout': not lock_step}
    if config.robot:
        out['mock_robot'] = {'task': config.task, 'mode': config.robot_mode,
                             'clock': config.clock, 'seed': config.seed,
                             'real_time_factor': config.real_time_factor,
                             'action_delay_s': config.action_delay_s,
                             'observation_delay_s': config.observation_delay_s}
    if config.observation_node:
        out['observation'] = dict(common)
    if config.expert:
        out['expert'] = {**common, 'drive': config.expert_drive,
                         'expert': config.expert_source,
                         'command_topic': ARBITER_INPUTS['expert'] if config.arbiter else ''}
    if config.transitions:
        out['transition_publisher'] = dict(common)
    if config.record:
        topics = recorded_topics(config.task)
        if config.transitions:
            topics += ['episode/step', 'transitions']
        if config.teleop_topic:
            topics += [config.teleop_topic, 'policy/intervention']
        if config.arbiter:
            topics += ['command_arbiter/active']
        # Extra topics, e.g. a teleoperator's labels for DAgger.
        topics += [t for t in config.record_topics if t not in topics]
        out['demo_recorder'] = {'use_sim_time': sim_time, 'topics': topics,
                                'output_dir': config.bag_dir, 'bag_name': config.bag_name,
                                'autostart': config.record_autostart}
    # A node started on its own (a process per node) brings itself to this state; a Graph
    # and the launch files start them unconfigured and drive the transitions themselves.
    for name in LIFECYCLE_NODES:
        if name in out:
            out[name]['start_state'] = 'active' if config.activate else 'inactive'
    return out


def truthy(text: str) -> bool:
    """A launch argument's text as a boolean ('true', '1', 'yes', 'on')."""
    return str(text).strip().lower() in ('1', 'true', 'yes', 'on')


def robot_namespace(text: str) -> str:
    """``text`` as a robot's namespace without slashes ('' for none), or a clear error."""
    name = str(text).strip().strip('/')
    if name and not all(re.fullmatch('[A-Za-z_][A-Za-z0-9_]*', part)
                        for part in name.split('/')):
        raise ValueError(f'namespace {text!r} is not a ROS namespace: expected names of '
                         'letters, digits and underscores (not starting with a digit), '
                         'separated by /, e.g. robot_1 or fleet/robot_1')
    return name


def clock_remap(namespace: str) -> tuple:
    """The remap (from, to) that gives a namespaced robot's nodes its own sim clock.

    ``/clock`` is absolute (the mock robot publishes it, rclpy's time source subscribes to
    it): without this, robots of one domain would read each other's simulation time.
    """
    return ('/clock', f'/{namespace}/clock')


def namespace_arguments(namespace: str) -> dict:
    """Node keyword arguments that put a node in ``namespace`` with that robot's clock."""
    if not namespace:
        return {}
    source, target = clock_remap(namespace)
    return {'namespace': namespace, 'cli_args': ['--ros-args', '-r', f'{source}:={target}']}


def _node_class(name: str):
    if name == 'mock_robot':
        from ilrl_ros.nodes.mock_robot import MockRobot
        return MockRobot
    if name == 'observation':
        from ilrl_ros.nodes.observation import ObservationPublisher
        return ObservationPublisher
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
    if name == 'command_arbiter':
        from ilrl_ros.nodes.command_arbiter import CommandArbiter
        return CommandArbiter
    if name == 'transition_publisher':
        from ilrl_ros.nodes.transition_publisher import TransitionPublisher
        return TransitionPublisher
    if name == 'demo_recorder':
        from ilrl_ros.nodes.demo_recorder import DemoRecorder
        return DemoRecorder
    raise KeyError(name)


class Graph:
    """The nodes of a GraphConfig on one Context, each spun by its own executor thread."""

    def __init__(self, config: GraphConfig, context=None, namespace: str = ''):
        # rclpy and the nodes load here, not with the module: the graph's description above
        # serves `ilrl --help` and the launch files without them.
        import rclpy
        from rclpy.parameter import Parameter

        from ilrl_ros.nodes.common import Spinner
        if config.robots != 1:
            raise ValueError(f'a Graph runs one robot, got robots={config.robots}: run several '
                             'with ilrl_ros.fleet.Fleet (ilrl sim --robots N)')
        self.config = config
        # One robot's namespace: the argument (a fleet's robot), else the config's.
        self.namespace = robot_namespace(namespace or config.namespace)
        self._own_context = context is None
        self.context = context or rclpy.Context()
        if self._own_context:
            rclpy.init(context=self.context)
        self.nodes = {}
        self.spinner = None
        try:
            for name, values in node_parameters(config).items():
                if name in LIFECYCLE_NODES:
                    # Brought up below, as the launch files do: configure, then activate.
                    values = {**values, 'start_state': 'unconfigured'}
                overrides = [Parameter(k, value=v) for k, v in values.items()]
                self.nodes[name] = _node_class(name)(
                    context=self.context, parameter_overrides=overrides,
                    **namespace_arguments(self.namespace))
            # A configure that fails (a bad spec, checkpoint folder or topic) raises its
            # cause here, as a node's constructor would.
            for node in self.lifecycle_nodes():
                node.change_state('configure')
        except BaseException:
            self.close()
            raise
        self.spinner = Spinner(self.nodes.values(), context=self.context)

    def lifecycle_nodes(self) -> list:
        """The graph's managed nodes, in the order they are brought up."""
        return [self.nodes[name] for name in LIFECYCLE_NODES if name in self.nodes]

    def start(self) -> 'Graph':
        """Activate the lifecycle nodes (unless ``config.activate`` is false), then spin."""
        try:
            if self.config.activate:
                for node in self.lifecycle_nodes():
                    if not node.active:
                        node.change_state('activate')
        except BaseException:
            self.close()
            raise
        self.spinner.start()
        return self

    def add_node(self, node) -> None:
        """Spin one more node (a test's probe, an operator) with the graph."""
        self.spinner.add(node)

    def close(self) -> None:
        """Stop spinning, have every node command zero and close its files, then shut down.

        The context goes last: the zero commands and the recorder's bag need it.
        """
        import rclpy

        from ilrl_ros.nodes.common import stop_nodes
        stop_nodes(list(self.nodes.values()), self.spinner)
        self.spinner = None
        self.nodes = {}
        if self._own_context:
            rclpy.try_shutdown(context=self.context)

    def __enter__(self) -> 'Graph':
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
