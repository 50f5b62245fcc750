"""Shared test set-up: every test run talks ROS 2 on loopback only, on a domain of its own."""

import os

import pytest
from hypothesis import HealthCheck, settings

# Fuzz tests: no per-example deadline (the suite shares two cores with ROS processes), no
# example database in the checkout; on CI the examples are drawn from a fixed seed so a
# red run can be repeated exactly, while local runs keep exploring new inputs.
settings.register_profile(
    'ilrl', deadline=None, database=None, print_blob=True,
    derandomize=bool(os.environ.get('CI')),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
settings.load_profile('ilrl')

# Set before rclpy is imported anywhere, so that every context and every child process
# started by a test inherits the isolation.
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('ROS_DOMAIN_ID', str(1 + os.getpid() % 100))
os.environ.setdefault('RCUTILS_LOGGING_BUFFERED_STREAM', '1')


@pytest.fixture
def ros_context():
    """An initialised rclpy Context of the test's own, shut down afterwards."""
    import rclpy

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run every test with one torch thread.

    Small networks train fastest so, and the suite shares two cores with the ROS processes
    it starts.
    """
    from ilrl_ros.core.rl.torch_settings import torch_settings
    with torch_settings(1):
        yield
