"""Launch and parameter files refer only to executables, files and parameters that exist."""

import ast
import importlib
import importlib.util
from pathlib import Path
import re

import pytest
from rclpy.parameter import Parameter
import yaml

from ilrl_ros.graph import _node_class, GraphConfig, node_parameters
from ilrl_testing import REPO, ros_context

LAUNCH_FILES = sorted((REPO / 'launch').glob('*.launch.py'))
PARAM_FILES = sorted((REPO / 'config').glob('*.yaml'))


def _console_scripts() -> set:
    tree = ast.parse((REPO / 'setup.py').read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'nodes':
            return set(ast.literal_eval(node.value))
    raise AssertionError('setup.py has no `nodes = [...]` list')


def test_there_are_launch_files_for_sim_and_robot():
    assert {p.name for p in LAUNCH_FILES} >= {'sim.launch.py', 'robot.launch.py',
                                              'dagger.launch.py'}


def _launch_arguments(path) -> dict:
    """The launch file's ARGUMENTS as {name: (default or None, description)}."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == 'ARGUMENTS':
            out = {}
            for entry in node.value.elts:
                name, default, description = entry.elts
                out[ast.literal_eval(name)] = (
                    ast.literal_eval(default) if isinstance(default, ast.Constant) else None,
                    ast.literal_eval(description))
            return out
    raise AssertionError(f'{path.name} has no ARGUMENTS list')


def test_dagger_launch_runs_the_sim_graph_and_a_driver_command_ilrl_accepts():
    """Without launch_ros: the arguments' defaults build a graph and an `ilrl dagger` line."""
    from ilrl_ros.cli import build_parser, cmd_dagger
    from ilrl_ros.dagger_live import launch_plan

    arguments = _launch_arguments(REPO / 'launch' / 'dagger.launch.py')
    assert all(text.strip() for _, text in arguments.values()), 'every argument is described'
    values = {name: default for name, (default, _) in arguments.items() if default is not None}
    config, command = launch_plan(values)
    nodes = node_parameters(config)
    assert set(nodes) == {'mock_robot', 'observation', 'policy', 'reward_monitor',
                          'episode_manager', 'expert', 'demo_recorder'}
    assert set(nodes) <= _console_scripts()
    assert nodes['expert']['drive'] is False
    assert nodes['demo_recorder']['autostart'] is False
    bag_dir = Path(nodes['demo_recorder']['output_dir'])
    assert bag_dir.is_absolute() and bag_dir.parts[-2:] == ('dagger_out', 'bags')
    assert command[1:4] == ['-m', 'ilrl_ros.cli', 'dagger']
    args = build_parser().parse_args(command[3:])
    assert args.func is cmd_dagger and not args.graph and not args.sim
    assert (args.task, args.rounds, args.episodes_per_round, args.label_topic) == \
        ('track_follow', 4, 3, 'expert/action')
    assert Path(args.out) == bag_dir.parent

    # A teleoperator's label topic is recorded too, and passed on with its tolerance.
    config, command = launch_plan({**values, 'label_topic': 'teleop/cmd_vel',
                                   'label_tolerance_s': '0.2', 'dart_noise_std': '0.05,0.5'})
    assert 'teleop/cmd_vel' in node_parameters(config)['demo_recorder']['topics']
    args = build_parser().parse_args(command[3:])
    assert (args.label_topic, args.label_tolerance, args.dart_noise) == \
        ('teleop/cmd_vel', 0.2, (0.05, 0.5))
    assert launch_plan({**values, 'run_driver': 'false'})[1] is None


@pytest.mark.parametrize('config', [
    GraphConfig(record=True), GraphConfig(robot=False, expert=False, record=True)])
def test_every_node_the_launch_files_start_is_an_installed_executable(config):
    scripts = _console_scripts()
    for name in node_parameters(config):
        assert name in scripts, f'{name} is launched but setup.py installs no such executable'
        module = importlib.import_module(f'ilrl_ros.nodes.{name}')
        assert callable(module.main)


@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_files_name_existing_parameter_files(path):
    text = path.read_text()
    for name in re.findall(r"'config',\s*'([^']+)'", text):
        assert (REPO / 'config' / name).is_file(), f'{path.name} refers to config/{name}'
    assert 'def generate_launch_description' in text


@pytest.mark.parametrize('path', PARAM_FILES, ids=lambda p: p.name)
def test_parameter_files_set_only_parameters_the_nodes_declare(path, tmp_path):
    """Build each node with the file's values: a typo or unknown node fails here."""
    data = yaml.safe_load(path.read_text())
    common = data.get('/**', {}).get('ros__parameters', {})
    context = ros_context()
    # Keys under /** go to every node, and each node uses those it declares: every such key
    # must be declared by at least one node.
    unused_common = set(common)
    try:
        for name, section in data.items():
            if name == '/**':
                continue
            own = section['ros__parameters']
            values = {**common, **own}
            if name == 'demo_recorder':
                values['topics'] = ['scan']
                values['output_dir'] = str(tmp_path)
            node_class = _node_class(name)
            overrides = [Parameter(k, value=v) for k, v in values.items()]
            node = node_class(context=context, parameter_overrides=overrides)
            try:
                for key in own:
                    assert node.has_parameter(key), f'{path.name}: {name} has no parameter {key}'
                unused_common -= {key for key in common if node.has_parameter(key)}
            finally:
                for member in getattr(node, 'executor_nodes', (node,)):
                    member.destroy_node()
    finally:
        context.try_shutdown()
    assert not unused_common, f'{path.name}: no node declares {sorted(unused_common)}'


@pytest.mark.skipif(importlib.util.find_spec('launch_ros') is None,
                    reason='launch_ros is not installed (no ROS 2 install on this machine)')
@pytest.mark.parametrize('path', LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_descriptions_expand_to_known_nodes(path):
    from launch import LaunchContext
    from launch.actions import OpaqueFunction

    spec = importlib.util.spec_from_file_location(path.stem.replace('.', '_'), path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    context = LaunchContext()
    nodes = []
    for entity in description.entities:
        entity.visit(context)
        if isinstance(entity, OpaqueFunction):
            nodes += entity.execute(context) or []
    from launch_ros.actions import Node
    scripts = _console_scripts()
    # dagger.launch.py also runs the `ilrl dagger` driver, a process that is not a node.
    nodes = [node for node in nodes if isinstance(node, Node)]
    assert nodes
    for node in nodes:
        assert node.node_executable in scripts
