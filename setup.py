"""ament_python package set-up for ilrl_ros (colcon build, or pip install)."""

from glob import glob
import os
import sys

from setuptools import find_packages, setup

package_name = 'ilrl_ros'
# The same list as ilrl_ros/nodes/start.py NODES (a test checks).
nodes = ['mock_robot', 'observation', 'policy', 'reward_monitor', 'episode_manager',
         'demo_recorder', 'expert', 'transition_publisher', 'learner', 'command_arbiter',
         'teleop']

data_files = [
    ('share/ament_index/resource_index/packages', ['resource/' + package_name]),
    ('share/' + package_name, ['package.xml']),
    ('share/' + package_name + '/launch', glob('launch/*.launch.py')),
    ('share/' + package_name + '/config', glob('config/*.yaml')),
    ('share/' + package_name + '/config/tasks', glob('config/tasks/*.yaml')),
]

# colcon installs console scripts into lib/<package> (setup.cfg). A pip install puts them
# in bin/, so a wheel also carries small launchers in lib/<package>/, where `ros2 run`
# looks, that run the node with the Python of the same prefix.
if {'bdist_wheel', 'editable_wheel'} & set(sys.argv):
    launcher_dir = os.path.join('build', 'ros_launchers')
    os.makedirs(launcher_dir, exist_ok=True)
    launchers = []
    # Each node, and the `ilrl` command (`ros2 run ilrl_ros ilrl ...`, as after colcon).
    modules = {node: f'{package_name}.nodes.start {node}' for node in nodes}
    modules['ilrl'] = f'{package_name}.cli'
    for name, module in modules.items():
        path = os.path.join(launcher_dir, name)
        with open(path, 'w') as f:
            f.write('#!/bin/sh\n'
                    f"# `ros2 run {package_name} {name}` on a pip install: this prefix's "
                    'Python runs it.\n'
                    'prefix="$(cd "$(dirname "$(readlink -f "$0")")/../.." && pwd)"\n'
                    f'exec "$prefix/bin/python3" -m {module} "$@"\n')
        os.chmod(path, 0o755)
        launchers.append(path)
    data_files.append(('lib/' + package_name, launchers))

setup(
    name=package_name,
    version='0.1.0',
    packages=find_packages(exclude=['test', 'bench']),
    data_files=data_files,
    install_requires=['setuptools'],
    zip_safe=True,
    maintainer='ilrl_ros developers',
    maintainer_email='ilrl-ros@example.org',
    description='Imitation and reinforcement learning in a real ROS 2 control loop.',
    license='Apache-2.0',
    tests_require=['pytest'],
    entry_points={
        # Through nodes/start.py, which catches stop signals while the node's module loads.
        'console_scripts': [f'{node} = {package_name}.nodes.start:{node}' for node in nodes]
        + [f'ilrl = {package_name}.cli:main'],
    },
)
