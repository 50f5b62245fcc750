"""Tests of the learning core run with ROS blocked: the core must work where ROS 2 is absent.

While a test module of this folder is imported (pytest collects test/core/ before
test/ros/, so nothing has loaded ROS yet) and while its tests run, importing rclpy, a ROS 2
message package or ROS tooling raises ImportError naming the module. A test that needs ROS
belongs in test/ros/. test_import_layers.py checks the same of every core module's source.
"""

import importlib.abc
import sys

import pytest

ROS_MODULES = ('rclpy', 'rcl_interfaces', 'rosidl_runtime_py', 'rosbag2_py', 'launch',
               'launch_ros', 'std_msgs', 'sensor_msgs', 'geometry_msgs', 'nav_msgs',
               'builtin_interfaces', 'rosgraph_msgs', 'std_srvs')


class _RosBlocker(importlib.abc.MetaPathFinder):
    active = False

    def find_spec(self, name, path=None, target=None):
        if self.active and name.split('.')[0] in ROS_MODULES:
            raise ImportError(f'{name} imported from a core test: the learning core (and its '
                              f'tests) must run without ROS; move a ROS test to test/ros/')
        return None


_BLOCKER = _RosBlocker()
sys.meta_path.insert(0, _BLOCKER)


def pytest_collectstart(collector):
    if isinstance(collector, pytest.Module):
        _BLOCKER.active = True


def pytest_collectreport(report):
    _BLOCKER.active = False


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    _BLOCKER.active = True
    try:
        yield
    finally:
        _BLOCKER.active = False
