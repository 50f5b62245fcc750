"""Launch and parameter files refer only to executables, files and parameters that exist."""

import argparse
import ast
import functools
import importlib
import importlib.util
from pathlib import Path
import re

from hypothesis import given, strategies as st
import pytest
from rclpy.parameter import Parameter
import yaml

from ilrl_ros.graph import (_node_class, add_graph_flags, config_from_flags, config_from_launch,
                            GraphConfig, launch_arguments, LaunchArgumentError,
                            node_parameters, sim_argv)
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
                                              'dagger.launch.py', 'learn.launch.py'}


def _literal(path, name: str):
    """A module-level literal of a launch file (read without importing launch)."""
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], 'id', '') == name:
            return ast.literal_eval(node.value)
    raise AssertionError(f'{path.name} has no {name}')


def _dagger_launch_arguments() -> dict:
    """dagger.launch.py's ARGUMENTS (but params_file) as {name: (default, description)}."""
    path = REPO / 'launch' / 'dagger.launch.py'
    entries = launch_arguments(_literal(path, 'GRAPH_ARGUMENTS')) + \
        _literal(path, 'DRIVER_ARGUMENTS')
    return {name: (default, text) for name, default, text in entries}


def test_launch_arguments_and_ilrl_sim_flags_derive_from_graph_config():
    names = {name for name, _, _ in launch_arguments()}
    assert names == {'task', 'checkpoint', 'robot_mode', 'clock', 'real_time_factor',
                     'policy_mode', 'expert_drive', 'expert_source', 'record',
                     'record_autostart', 'activate', 'bag_dir',
                     'seed', 'max_episodes', 'transitions', 'exploration', 'teleop_topic',
                     'arbiter',
                     'reset_controller', 'action_delay_s', 'observation_delay_s',
                     'namespace', 'robots', 'fleet_recorder'}
    for path in LAUNCH_FILES:
        assert 'launch_arguments(' in path.read_text(), path.name
    parser = argparse.ArgumentParser()
    add_graph_flags(parser)
    assert config_from_flags(parser.parse_args([])) == GraphConfig()
    config = config_from_launch({name: default for name, default, _ in launch_arguments()})
    assert config == GraphConfig()


def test_a_bad_launch_argument_fails_the_launch_in_one_sentence():
    """`task:=bogus` stops the launch before any node starts (ros2 launch prints it, exits 1)."""
    defaults = {name: default for name, default, _ in launch_arguments()}
    for name, text, words in [('task', 'bogus', ['task:=', 'bogus', 'bundled tasks']),
                              ('real_time_factor', 'fast', ['real_time_factor', 'float']),
                              ('clock', 'gps', ['clock', 'sim, wall']),
                              ('seed', '1.5', ['seed', 'int'])]:
        with pytest.raises(LaunchArgumentError) as raised:
            config_from_launch({**defaults, name: text})
        message = str(raised.value)
        assert '\n' not in message and all(w in message for w in words), message


@given(st.sampled_from([name for name, _, _ in launch_arguments()]),
       st.text(st.characters(blacklist_categories=('Cs',)), max_size=30))
def test_any_launch_argument_text_gives_a_graph_or_one_clear_error(name, text):
    defaults = {n: default for n, default, _ in launch_arguments()}
    try:
        config = config_from_launch({**defaults, name: text})
    except LaunchArgumentError as error:
        assert name in str(error) or 'task:=' in str(error)
    else:
        assert isinstance(config, GraphConfig)


configs = st.builds(
    GraphConfig, task=st.sampled_from(['track_follow', 'pendulum', '/tmp/spec with space.yaml']),
    checkpoint=st.text(st.characters(blacklist_categories=('Cs', 'Cc')), max_size=20),
    robot=st.booleans(), robot_mode=st.sampled_from(['lock_step', 'free_run']),
    clock=st.sampled_from(['sim', 'wall']),
    real_time_factor=st.floats(0.01, 100.0), policy_mode=st.sampled_from(['event', 'timer']),
    expert_drive=st.booleans(),
    expert_source=st.sampled_from(['scripted', 'checkpoint:/tmp/a b', 'checkpoint:-x']),
    record=st.booleans(), record_autostart=st.booleans(), activate=st.booleans(),
    bag_dir=st.text(st.characters(blacklist_categories=('Cs', 'Cc')), min_size=1,
                    max_size=20),
    seed=st.integers(0, 2**31 - 1), max_episodes=st.integers(0, 1000),
    record_topics=st.lists(st.sampled_from(['teleop/cmd_vel', 'a/b']), max_size=2).map(tuple),
    expert=st.booleans(), observation_node=st.booleans(), transitions=st.booleans(),
    exploration=st.sampled_from(['none', 'sample', 'noise']),
    teleop_topic=st.sampled_from(['', 'teleop/command']),
    reset_controller=st.sampled_from(['', 'expert', 'pendulum_rest', 'checkpoint:/tmp/a b']),
    action_delay_s=st.floats(0.0, 10.0), observation_delay_s=st.floats(0.0, 10.0),
    namespace=st.sampled_from(['', 'tb3', 'lab/tb3']), robots=st.integers(1, 5),
    fleet_recorder=st.sampled_from(['per_robot', 'shared']))


@functools.cache
def _sim_parser():
    # Built once: building the whole `ilrl` parser takes a quarter of a second, and parsing
    # leaves it unchanged.
    from ilrl_ros.cli import build_parser
    return build_parser()


@given(configs)
def test_ilrl_sim_argv_round_trips_every_graph_config(config):
    """What demo and DAgger pass to `ilrl sim` is exactly the graph they described."""
    args = _sim_parser().parse_args(['sim', *sim_argv(config)])
    assert config_from_flags(args) == config


def test_learn_launch_runs_the_actor_graph_and_a_learner_with_its_arguments():
    """Without launch_ros: learn.launch.py's defaults give the online graph and the learner."""
    from ilrl_ros.nodes.learner import PARAMETERS
    from ilrl_ros.online_run import learner_parameters, learning_graph_from_launch
    path = REPO / 'launch' / 'learn.launch.py'
    entries = launch_arguments(_literal(path, 'GRAPH_ARGUMENTS'), exploration='sample') + \
        _literal(path, 'LEARNER_ARGUMENTS')
    values = {name: default for name, default, _ in entries}
    assert all(text.strip() for _, _, text in entries), 'every argument is described'
    config = learning_graph_from_launch(values)
    nodes = node_parameters(config)
    assert set(nodes) == {'mock_robot', 'policy', 'reward_monitor', 'episode_manager',
                          'transition_publisher', 'command_arbiter'}
    assert set(nodes) | {'learner'} <= _console_scripts()
    assert nodes['mock_robot']['mode'] == 'free_run' and nodes['policy']['mode'] == 'event'
    assert nodes['policy']['exploration'] == 'sample'
    learner = learner_parameters({**values, 'algorithm': 'td3', 'swap_every': '250'})
    assert set(learner) <= {p.name for p in PARAMETERS} | {'task', 'use_sim_time'}
    assert (learner['algorithm'], learner['swap_every'], learner['use_sim_time']) == \
        ('td3', 250, True)
    real = learning_graph_from_launch({**values, 'robot': 'false', 'record': 'true'})
    assert 'mock_robot' not in node_parameters(real)
    assert 'transitions' in node_parameters(real)['demo_recorder']['topics']


def test_dagger_launch_runs_the_sim_graph_and_a_driver_command_ilrl_accepts():
    """Without launch_ros: the arguments' defaults build a graph and an `ilrl dagger` line."""
    from ilrl_ros.cli import build_parser
    from ilrl_ros.cli.dagger import cmd_dagger
    from ilrl_ros.dagger_live import launch_plan

    arguments = _dagger_launch_arguments()
    assert all(text.strip() for _, text in arguments.values()), 'every argument is described'
    values = {name: default for name, (default, _) in arguments.items() if default is not None}
    config, command = launch_plan(values)
    nodes = node_parameters(config)
    assert set(nodes) == {'mock_robot', 'observation', 'policy', 'reward_monitor',
                          'episode_manager', 'expert', 'demo_recorder', 'command_arbiter'}
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


def _launch_importable() -> bool:
    """Whether launch and launch_ros import (a ROS 2 install, not just their sources)."""
    try:
        importlib.import_module('launch')
        importlib.import_module('launch_ros.actions')
    except ImportError:
        return False
    return True


@pytest.mark.skipif(not _launch_importable(),
                    reason='launch / launch_ros do not import (no ROS 2 install on this machine)')
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
