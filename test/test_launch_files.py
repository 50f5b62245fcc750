"""Launch and parameter files refer only to executables, files and parameters that exist."""

import ast
import importlib
import importlib.util
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
    assert {p.name for p in LAUNCH_FILES} >= {'sim.launch.py', 'robot.launch.py'}


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
    scripts = _console_scripts()
    assert nodes
    for node in nodes:
        assert node.node_executable in scripts
